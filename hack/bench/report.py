#!/usr/bin/env python3
"""Turns one benchmark's raw records into target/bench/core.json and a table on stdout.

    report.py --events events.jsonl --audit audit.log --rss rss.tsv --out core.json \
        --n N --replicas R --runs RUNS --idle-seconds S

events.jsonl holds one line per measured phase (measure.py's output), one for the end of
each run ({"kind": "run-end", "run", "time"}) and one for the idle window
({"kind": "idle", "start", "end", "settled_rss_kib", "hwm_rss_kib"}); rss.tsv holds
"<epoch seconds> <VmRSS KiB>" samples of the operator.

Operator writes are audit entries whose userAgent starts with "weir/", whose verb is
create, update, patch or delete, at stage ResponseComplete, each auditID counted once.
Lease writes (leader election, coordination.k8s.io) are counted apart and left out of
"writes per Microservice" and "idle writes", which are about the work Microservices cause.
"""
import argparse
import collections
import datetime
import json
import statistics
import sys

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def timestamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def operator_writes(audit_path):
    """(time, namespace, resource, verb, is_lease) of each write the operator made."""
    seen = set()
    writes = []
    with open(audit_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "weir/" not in line:  # cheap filter: the audit log also holds every other client
                continue
            entry = json.loads(line)
            if not entry.get("userAgent", "").startswith("weir/"):
                continue
            if entry.get("stage") != "ResponseComplete" or entry.get("verb") not in WRITE_VERBS:
                continue
            if entry["auditID"] in seen:
                continue
            seen.add(entry["auditID"])
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            is_lease = ref.get("resource") == "leases" and ref.get("apiGroup") == "coordination.k8s.io"
            writes.append((timestamp(entry["stageTimestamp"]), ref.get("namespace", ""), resource,
                           entry["verb"], is_lease))
    return writes


def writers_in(audit_path, namespace):
    """Write counts per userAgent product in a namespace: a diagnostic for when the operator's
    writes cannot be found (a userAgent that does not start with weir/)."""
    counts = collections.Counter()
    with open(audit_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if namespace not in line:
                continue
            entry = json.loads(line)
            if ((entry.get("objectRef") or {}).get("namespace") == namespace
                    and entry.get("stage") == "ResponseComplete" and entry.get("verb") in WRITE_VERBS):
                counts[entry.get("userAgent", "").split(" ")[0]] += 1
    return dict(counts.most_common(8))


def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=2, unit=""):
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def main():
    parser = argparse.ArgumentParser()
    for name in ("events", "audit", "rss", "out"):
        parser.add_argument(f"--{name}", required=True)
    for name in ("n", "replicas", "runs"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--idle-seconds", type=float, required=True)
    args = parser.parse_args()

    with open(args.events) as f:
        events = [json.loads(line) for line in f if line.strip()]
    phases = {(e["run"], e["kind"]): e for e in events if e["kind"] in ("floor", "weir")}
    ends = {e["run"]: e["time"] for e in events if e["kind"] == "run-end"}
    idle = next(e for e in events if e["kind"] == "idle")
    writes = operator_writes(args.audit)
    with open(args.rss) as f:
        rss_kib = [int(line.split()[1]) for line in f if len(line.split()) == 2]

    runs = []
    for run in range(1, args.runs + 1):
        floor, weir = phases[(run, "floor")], phases[(run, "weir")]
        # Writes that brought this run's Microservices to Ready and settled them: in their
        # namespace, from the start of the apply to the end of the run (before its namespaces
        # are deleted; for the last run, the start of the idle window).
        counted = [w for w in writes if not w[4] and w[1] == weir["namespace"]
                   and weir["start"] <= w[0] <= ends[run]]
        before_ready = sum(1 for w in counted if w[0] <= weir["ready"])
        runs.append({
            "run": run,
            "order": "floor,weir" if floor["start"] < weir["start"] else "weir,floor",
            "floor_seconds": round(floor["seconds"], 3),
            "floor_apply_seconds": round(floor["apply_seconds"], 3),
            "weir_seconds": round(weir["seconds"], 3),
            "weir_apply_seconds": round(weir["apply_seconds"], 3),
            "weir_writes": len(counted),
            "weir_writes_until_ready": before_ready,
            "writes_per_microservice": round(len(counted) / args.n, 3),
            "weir_writes_by_resource": dict(collections.Counter(f"{w[3]} {w[2]}" for w in counted).most_common()),
            "floor_cpu_seconds": floor.get("cpu_seconds", {}),
            "weir_cpu_seconds": weir.get("cpu_seconds", {}),
        })

    floor_median = median([r["floor_seconds"] for r in runs])
    weir_median = median([r["weir_seconds"] for r in runs])
    idle_writes = [w for w in writes if not w[4] and idle["start"] <= w[0] <= idle["end"]]
    lease_writes = [w for w in writes if w[4]]
    result = {
        "n": args.n,
        "replicas": args.replicas,
        "runs": args.runs,
        "per_run": runs,
        "median_floor_seconds": round(floor_median, 3),
        "median_weir_seconds": round(weir_median, 3),
        "ratio": round(weir_median / floor_median, 3),
        "peak_rss_mib": round(max(rss_kib) / 1024, 1) if rss_kib else None,
        "peak_rss_hwm_mib": round(idle["hwm_rss_kib"] / 1024, 1),
        "settled_rss_mib": round(idle["settled_rss_kib"] / 1024, 1),
        "rss_samples": len(rss_kib),
        "writes_per_microservice": median([r["writes_per_microservice"] for r in runs]),
        "operator_writes_total": sum(1 for w in writes if not w[4]),
        "lease_writes": len(lease_writes),
        "lease_writes_idle": sum(1 for w in lease_writes if idle["start"] <= w[0] <= idle["end"]),
        "idle_writes": len(idle_writes),
        "idle_writes_by_resource": dict(collections.Counter(f"{w[3]} {w[2]}" for w in idle_writes).most_common()),
        "idle_seconds": args.idle_seconds,
    }
    if not writes:
        # Ready Microservices with no write from "weir/" means the userAgent is not what we count.
        result["writers_in_last_weir_namespace"] = writers_in(args.audit, phases[(args.runs, "weir")]["namespace"])
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print_table(result)


def print_table(r):
    runs = r["per_run"]
    per_run = lambda key, digits=2: " ".join(fmt(x[key], digits) for x in runs)
    rows = [
        ("Microservices x replicas, runs", f"{r['n']} x {r['replicas']}, {r['runs']} runs", ""),
        ("floor: Deployments+Services ready", fmt(r["median_floor_seconds"], 2, " s"), per_run("floor_seconds")),
        ("  of which kubectl apply", fmt(median([x["floor_apply_seconds"] for x in runs]), 2, " s"), per_run("floor_apply_seconds")),
        ("weir: Microservices Ready", fmt(r["median_weir_seconds"], 2, " s"), per_run("weir_seconds")),
        ("  of which kubectl apply", fmt(median([x["weir_apply_seconds"] for x in runs]), 2, " s"), per_run("weir_apply_seconds")),
        ("ratio weir / floor", fmt(r["ratio"], 2), ""),
        ("API writes per Microservice", fmt(r["writes_per_microservice"], 2), per_run("writes_per_microservice")),
        ("  of which until all Ready", fmt(median([x["weir_writes_until_ready"] / r["n"] for x in runs]), 2),
         " ".join(fmt(x["weir_writes_until_ready"] / r["n"]) for x in runs)),
        ("operator RSS peak", fmt(r["peak_rss_mib"], 1, " MiB"),
         f"{r['rss_samples']} samples; kernel's VmHWM {fmt(r['peak_rss_hwm_mib'], 1, ' MiB')}"),
        ("operator RSS settled", fmt(r["settled_rss_mib"], 1, " MiB"), "at the end of the idle window"),
        (f"idle writes ({r['idle_seconds']:g} s)", str(r["idle_writes"]),
         ", ".join(f"{k}: {v}" for k, v in r["idle_writes_by_resource"].items())),
        ("lease writes (all / idle)", f"{r['lease_writes']} / {r['lease_writes_idle']}", "not counted above"),
    ]
    components = sorted(set(runs[0]["floor_cpu_seconds"]) | set(runs[0]["weir_cpu_seconds"]))
    for component in components:
        floor_cpu = median([x["floor_cpu_seconds"].get(component, 0.0) for x in runs])
        weir_cpu = median([x["weir_cpu_seconds"].get(component, 0.0) for x in runs])
        rows.append((f"CPU s, {component} (floor / weir)", f"{fmt(floor_cpu, 1)} / {fmt(weir_cpu, 1)}", "median over runs"))
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print(f"\n{'metric':<{width}}  {'median':<{value_width}}  per run / notes")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 20}")
    for name, value, notes in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {notes}".rstrip())
    last = runs[-1]["weir_writes_by_resource"]
    if last:
        print(f"\noperator writes in run {runs[-1]['run']}: " + ", ".join(f"{k}: {v}" for k, v in last.items()))
    if "writers_in_last_weir_namespace" in r:
        print("\nwarning: no audit entry has a userAgent starting with weir/; writers in the last "
              f"Weir namespace were: {r['writers_in_last_weir_namespace']}", file=sys.stderr)


if __name__ == "__main__":
    main()
