#!/usr/bin/env python3
"""Applies one benchmark phase and times it until every object is ready.

    measure.py floor|weir --namespace NS --file YAML --n N --replicas R --deadline S \
        [--operator-pid PID] [--run RUN]

The clock starts just before `kubectl apply --server-side` and stops when a list of the
namespace shows all N objects ready:
  floor: every Deployment has Available=True and readyReplicas == spec.replicas
         (Available alone is already true while pods are still starting);
  weir:  every Microservice has condition Ready=True and
         status.observedGeneration == metadata.generation.
The lists go straight to the API server over one kept-alive TLS connection, not through a
kubectl process per poll, so polling every 0.5 s costs the 2-core machine little.

Prints one JSON object on stdout; progress and failures go to stderr. Exits non-zero, with
a sample of what is not ready, when the deadline passes or the operator process dies.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from kube import Api

POLL_SECONDS = 0.5
PROGRESS_SECONDS = 10


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def deployment_ready(d):
    """Available=True and as many ready pods as asked for."""
    want = d.get("spec", {}).get("replicas", 1)
    status = d.get("status", {})
    available = any(
        c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return available and status.get("readyReplicas", 0) == want


def microservice_ready(m):
    """Ready=True, written for the generation the spec is at."""
    status = m.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return ready and status.get("observedGeneration") == m["metadata"].get("generation")


def describe(obj):
    """One line on why an object is not ready yet, for failure messages."""
    status = obj.get("status") or {}
    conditions = ", ".join(
        f"{c.get('type')}={c.get('status')}" + (f" ({c.get('reason')})" if c.get("reason") else "")
        for c in status.get("conditions", [])
    ) or "no conditions"
    extra = f"readyReplicas={status.get('readyReplicas', 0)}"
    if "observedGeneration" in status or obj.get("kind") == "Microservice":
        extra += f" observedGeneration={status.get('observedGeneration')} generation={obj['metadata'].get('generation')}"
    return f"{obj['metadata']['name']}: {conditions}; {extra}"


def cpu_seconds(pids_dir):
    """User+system CPU seconds used so far by each process recorded in `pids_dir`: where the
    two cores went during a phase (the API server, etcd, the controllers, the operator)."""
    if not pids_dir or not os.path.isdir(pids_dir):
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name in os.listdir(pids_dir):
        try:
            with open(os.path.join(pids_dir, name)) as f:
                pid = f.read().strip()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, ValueError, IndexError):
            continue
    return used


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["floor", "weir"])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--replicas", type=int, required=True)
    parser.add_argument("--deadline", type=float, required=True, help="seconds from the start of apply")
    parser.add_argument("--operator-pid", type=int)
    parser.add_argument("--run", type=int, default=0)
    parser.add_argument("--pids-dir", help="cluster-up's pids/: CPU time per component is recorded")
    args = parser.parse_args()

    api = Api()
    ns = args.namespace
    if args.kind == "floor":
        path, ready = f"/apis/apps/v1/namespaces/{ns}/deployments", deployment_ready
        what = "Deployments Available with all replicas ready"
    else:
        path, ready = f"/apis/weir.dev/v1alpha1/namespaces/{ns}/microservices", microservice_ready
        what = "Microservices Ready at their generation"

    cpu_before = cpu_seconds(args.pids_dir)
    start = time.time()
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--field-manager=weir-bench", "-n", ns, "-f", args.file],
        check=True, stdout=subprocess.DEVNULL,
    )
    applied = time.time()
    log(f"run {args.run} {args.kind}: applied in {applied - start:.1f}s, waiting for {args.n} {what}")

    deadline = start + args.deadline
    next_progress = applied + PROGRESS_SECONDS
    while True:
        polled = time.time()
        items = api.get(path)["items"]
        done = sum(1 for item in items if ready(item))
        now = time.time()
        if len(items) == args.n and done == args.n:
            break
        if args.operator_pid and not os.path.exists(f"/proc/{args.operator_pid}/status"):
            sys.exit(f"[bench] error: the operator (pid {args.operator_pid}) exited; see its log")
        if now >= deadline:
            waiting = [describe(item) for item in items if not ready(item)][:5]
            sys.exit(
                f"[bench] error: run {args.run} {args.kind}: only {done}/{args.n} {what} in {ns} "
                f"after {now - start:.0f}s (deadline {args.deadline:.0f}s; {len(items)} objects listed). "
                f"Not ready, e.g.:\n  " + "\n  ".join(waiting or ["(none listed)"])
            )
        if now >= next_progress:
            log(f"run {args.run} {args.kind}: {done}/{args.n} ready after {now - start:.0f}s")
            next_progress = now + PROGRESS_SECONDS
        time.sleep(max(0.0, POLL_SECONDS - (now - polled)))

    cpu_after = cpu_seconds(args.pids_dir)
    result = {
        "run": args.run, "kind": args.kind, "namespace": ns, "n": args.n,
        "start": start, "applied": applied, "ready": now,
        "seconds": now - start, "apply_seconds": applied - start,
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after if k in cpu_before},
    }
    if args.kind == "weir":
        # Ready must mean what the floor measures: check the children's pods really are ready.
        deployments = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]
        services = api.get(f"/api/v1/namespaces/{ns}/services")["items"]
        result["child_deployments"] = len(deployments)
        result["child_services"] = len(services)
        result["child_ready_pods"] = sum((d.get("status") or {}).get("readyReplicas", 0) for d in deployments)
        if result["child_ready_pods"] < args.n * args.replicas or len(services) < args.n:
            log(f"warning: run {args.run}: Microservices are Ready but {ns} has only "
                f"{result['child_ready_pods']}/{args.n * args.replicas} ready pods and "
                f"{len(services)}/{args.n} Services")
    log(f"run {args.run} {args.kind}: all {args.n} ready in {result['seconds']:.2f}s")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
