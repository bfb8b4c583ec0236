#!/usr/bin/env python3
"""Release benchmarks: drives canary releases through Gateway API and measures them.

    release.py release --namespace NS --runs R ...   overhead per canary step
    release.py abort   --namespace NS --runs R ...   failed measurement -> traffic back on stable
    release.py scale   --namespace NS --n N --releasing K ...   K of N Microservices release at once
    release.py soak    --namespace NS --n N --minutes M ...     releases in a loop; memory trend

Every part runs against the operator hack/bench.sh started for it (its pid is given, to fail
fast when it dies) and the fake gateway (gateway.py), whose log says when each route
generation was accepted and with which weights. Microservices are watched, not polled: the
time a status change is seen is within milliseconds of its write. Each part writes its JSON
(--out) and prints a table; the raw records go to --raw (a directory).

All parts use canaries through Gateway API, `scaleDownDelaySeconds: 0` (the old slot's
Deployment goes at promotion, so a release's whole cost falls inside what is measured) and an
image tag that is new for every release (a tag seen before would be a return to a warm slot,
which skips the steps).
"""
import argparse
import collections
import http.server
import json
import os
import statistics
import sys
import threading
import time

import audit
from kube import Api, condition, proc_kib

IMAGE = "registry.example/bench"
STEP_PAUSE_SECONDS = 1


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rnd(value, digits=3):
    return None if value is None else round(value, digits)


def fmt(value, digits=2, unit=""):
    return "-" if value is None else f"{value:.{digits}f}{unit}"


# --- Microservices ------------------------------------------------------------------------

def microservice(name, tag, replicas, steps, analysis=None):
    rollout = {
        "strategy": "Canary",
        "traffic": {"gatewayAPI": {"parentRefs": [{"name": "bench"}]}},
        "canary": {"steps": steps, "scaleDownDelaySeconds": 0},
    }
    if analysis:
        rollout["analysis"] = analysis
    return {
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": name},
        "spec": {
            "image": f"{IMAGE}:{tag}", "replicas": replicas,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "rollout": rollout,
        },
    }


def ms_path(ns, name=None):
    path = f"/apis/weir.dev/v1alpha1/namespaces/{ns}/microservices"
    return f"{path}/{name}" if name else path


def status(ms):
    return ms.get("status") or {}


def current(ms):
    """The status describes the spec as it is now."""
    return status(ms).get("observedGeneration") == ms["metadata"].get("generation")


def healthy(ms):
    """Healthy, Ready, no release running, at the current generation."""
    s = status(ms)
    return (current(ms) and s.get("phase") == "Healthy" and "release" not in s
            and condition(ms, "Ready") == "True")


def released(ms, old_stable, settled=False):
    """Healthy on a revision other than `old_stable`; with `settled`, the old slot is gone too."""
    s = status(ms)
    return (healthy(ms) and s.get("stableRevision") not in (None, old_stable)
            and (not settled or "scaleDownAt" not in s))


def describe(ms):
    s = status(ms)
    release = s.get("release") or {}
    return (f"{ms['metadata']['name']}: phase={s.get('phase')} generation={ms['metadata'].get('generation')} "
            f"observed={s.get('observedGeneration')} step={release.get('stepIndex')}/{release.get('stepCount')} "
            f"weight={release.get('weight')} verified={release.get('weightVerified')} "
            f"message={s.get('message')!r}")


class Watcher:
    """The latest copy of every Microservice in a namespace, from a watch, and for each one the
    history of its release state: (received, phase, stepIndex, weight, weightVerified,
    promoting), one entry per change."""

    def __init__(self, ns, operator_pid):
        self.ns = ns
        self.operator_pid = operator_pid
        self.cond = threading.Condition()
        self.objects = {}
        self.received = {}
        self.history = collections.defaultdict(list)
        self.failed_measurements = {}  # name -> first measurement with passed false
        self.stopping = threading.Event()
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.synced.wait(60):
            sys.exit("[bench] error: the Microservice watch did not start within 60 s")

    def _run(self):
        api = Api()
        for kind, ms, received in api.watch(ms_path(self.ns), stop=self.stopping.is_set):
            with self.cond:
                if kind == "SYNCED":
                    self.synced.set()
                    continue
                name = ms["metadata"]["name"]
                if kind == "DELETED":
                    self.objects.pop(name, None)
                else:
                    self.objects[name] = ms
                    self.received[name] = received
                    s = status(ms)
                    release = s.get("release") or {}
                    state = (s.get("phase"), release.get("stepIndex"), release.get("weight"),
                             release.get("weightVerified"), release.get("promoting"),
                             ms["metadata"].get("generation"), s.get("observedGeneration"))
                    history = self.history[name]
                    if not history or history[-1][1:] != state:
                        history.append((received,) + state)
                    for m in (release.get("analysis") or {}).get("last") or []:
                        if m.get("passed") is False and name not in self.failed_measurements:
                            self.failed_measurements[name] = dict(m, seen=received)
                self.cond.notify_all()

    def stop(self):
        self.stopping.set()

    def wait(self, what, predicate, deadline):
        """Waits until predicate(objects) is true; returns the time of the event that made it
        so. Exits with a description when `deadline` (epoch seconds) passes."""
        with self.cond:
            while True:
                if predicate(self.objects):
                    return max(self.received.values(), default=time.time())
                if not os.path.exists(f"/proc/{self.operator_pid}/status"):
                    sys.exit(f"[bench] error: the operator (pid {self.operator_pid}) exited while waiting for {what}")
                if time.time() >= deadline:
                    waiting = [describe(m) for m in self.objects.values()][:5]
                    sys.exit(f"[bench] error: {what} did not happen before the deadline; e.g.:\n  "
                             + "\n  ".join(waiting or ["(no Microservices listed)"]))
                self.cond.wait(0.5)

    def wait_one(self, name, what, predicate, deadline):
        """Like wait, for one Microservice; returns when the event that satisfied it arrived."""
        self.wait(what, lambda objects: name in objects and predicate(objects[name]), deadline)
        with self.cond:
            return self.received[name]


def dump_history(watcher, path):
    """Every status change seen, one JSON line each, for looking into a figure afterwards."""
    keys = ("phase", "stepIndex", "weight", "weightVerified", "promoting", "generation", "observedGeneration")
    with watcher.cond, open(path, "w") as f:
        for name, history in sorted(watcher.history.items()):
            for h in history:
                f.write(json.dumps({"name": name, "time": round(h[0], 3), **dict(zip(keys, h[1:]))}) + "\n")


def create_all(api, ns, objects):
    for obj in objects:
        api.apply(ms_path(ns, obj["metadata"]["name"]), obj)


def set_image(api, ns, name, tag):
    """Merge-patches the image; returns the time just before the request went out."""
    start = time.time()
    api.merge_patch(ms_path(ns, name), {"spec": {"image": f"{IMAGE}:{tag}"}})
    return start


def gateway_accepts(path, ns, name=None, since=0.0):
    """The fake gateway's writes for routes in `ns` (one route when `name`), from `since` on."""
    found = []
    with open(path) as f:
        for line in f:
            entry = json.loads(line)
            if entry.get("namespace") == ns and (name is None or entry["name"] == name) \
                    and entry["accepted"] >= since:
                found.append(entry)
    return found


def write(path, result):
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


def table(title, rows):
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"\n{title}\n{'metric':<{width}}  {'median':<{value_width}}  per run / notes")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 20}")
    for name, value, notes in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {notes}".rstrip())
    sys.stdout.flush()


def verdict(ok):
    return "-" if ok is None else ("met" if ok else "NOT MET")


# --- release: overhead per step -----------------------------------------------------------

# Ten steps: five weights, each followed by a pause of 1 s.
RELEASE_STEPS = [s for w in (20, 40, 60, 80, 100)
                 for s in ({"setWeight": w}, {"pause": {"duration": f"{STEP_PAUSE_SECONDS}s"}})]
OVERHEAD_TARGET_MS = 250


def part_release(args):
    api = Api()
    watcher = Watcher(args.namespace, args.operator_pid)
    steps = len(RELEASE_STEPS)
    pauses = sum(STEP_PAUSE_SECONDS for s in RELEASE_STEPS if "pause" in s)
    runs = []
    for run in range(1, args.runs + 1):
        name = f"release-{run}"
        create_all(api, args.namespace, [microservice(name, "1", args.replicas, RELEASE_STEPS)])
        watcher.wait_one(name, f"{name} to be Healthy", healthy, time.time() + args.deadline)
        # Let the first deploy's trailing events (route acceptance, status) pass first.
        time.sleep(1)
        old_stable = status(watcher.objects[name]).get("stableRevision")
        start = set_image(api, args.namespace, name, "2")
        done = watcher.wait_one(name, f"{name} to be Healthy on the new revision",
                                lambda ms: released(ms, old_stable), start + args.deadline)
        seconds = done - start
        accepts = gateway_accepts(args.gateway_log, args.namespace, name, start)
        history = [h for h in watcher.history[name] if h[0] >= start]
        step_seconds = step_durations(history, start, done, steps)
        weight_steps = [d for i, d in enumerate(step_seconds) if d is not None and i > 0 and "setWeight" in RELEASE_STEPS[i]]
        # The last step's time runs to Healthy: it holds the promotion, reported apart.
        pause_overrun = [d - STEP_PAUSE_SECONDS for i, d in enumerate(step_seconds[:-1])
                         if d is not None and "pause" in RELEASE_STEPS[i]]
        last = step_seconds[-1] if step_seconds else None
        if last is not None and "pause" in RELEASE_STEPS[-1]:
            last -= STEP_PAUSE_SECONDS
        result = {
            "run": run, "name": name, "seconds": rnd(seconds),
            "overhead_per_step_ms": rnd((seconds - pauses) / steps * 1000, 1),
            "first_step_seconds": rnd(step_seconds[0]) if step_seconds else None,
            "step_seconds": [rnd(d) for d in step_seconds],
            "median_weight_step_ms": rnd(median(weight_steps) * 1000, 1) if weight_steps else None,
            "median_pause_overrun_ms": rnd(median(pause_overrun) * 1000, 1) if pause_overrun else None,
            "last_pause_and_promotion_overrun_ms": rnd(last * 1000, 1) if last is not None else None,
            "route_generations_accepted": len(accepts),
            "route_timeline": [{"seconds": rnd(a["accepted"] - start), "weights": a["weights"]} for a in accepts],
            "status_timeline": [{"seconds": rnd(h[0] - start), "phase": h[1], "stepIndex": h[2], "weight": h[3],
                                 "weightVerified": h[4], "promoting": h[5]} for h in history],
        }
        runs.append(result)
        log(f"run {run}: Healthy on the new revision after {seconds:.2f}s: "
            f"{result['overhead_per_step_ms']:.0f} ms overhead per step")
    dump_history(watcher, os.path.join(args.raw, "history.jsonl"))
    watcher.stop()
    overhead = median([r["overhead_per_step_ms"] for r in runs])
    out = {
        "steps": steps, "step_kinds": "setWeight 20,40,60,80,100, each followed by pause 1s",
        "pause_seconds_total": pauses, "replicas": args.replicas, "runs": args.runs,
        "median_seconds": rnd(median([r["seconds"] for r in runs])),
        "overhead_per_step_ms": overhead,
        "target_overhead_per_step_ms": OVERHEAD_TARGET_MS,
        "target_met": overhead < OVERHEAD_TARGET_MS,
        "median_first_step_seconds": rnd(median([r["first_step_seconds"] for r in runs])),
        "median_weight_step_ms": rnd(median([r["median_weight_step_ms"] for r in runs]), 1),
        "median_pause_overrun_ms": rnd(median([r["median_pause_overrun_ms"] for r in runs]), 1),
        "median_last_pause_and_promotion_overrun_ms": rnd(median([r["last_pause_and_promotion_overrun_ms"] for r in runs]), 1),
        "per_run": runs,
    }
    write(args.out, out)
    per_run = lambda key, digits=2: " ".join(fmt(r[key], digits) for r in runs)
    table(f"release: a {steps}-step canary ({out['step_kinds']}), {args.runs} runs", [
        ("image change -> Healthy on the new revision", fmt(out["median_seconds"], 2, " s"), per_run("seconds")),
        (f"overhead per step (minus {pauses} s of pauses, / {steps})", fmt(overhead, 0, " ms"),
         f"{per_run('overhead_per_step_ms', 0)}; target < {OVERHEAD_TARGET_MS} ms: {verdict(out['target_met'])}"),
        ("  first step (the candidate's pod starts)", fmt(out["median_first_step_seconds"], 2, " s"), per_run("first_step_seconds")),
        ("  a later setWeight step", fmt(out["median_weight_step_ms"], 0, " ms"), per_run("median_weight_step_ms", 0)),
        ("  a 1 s pause, beyond its second", fmt(out["median_pause_overrun_ms"], 0, " ms"), per_run("median_pause_overrun_ms", 0)),
        ("  the last pause and the promotion, beyond 1 s", fmt(out["median_last_pause_and_promotion_overrun_ms"], 0, " ms"),
         per_run("last_pause_and_promotion_overrun_ms", 0)),
    ])


def step_durations(history, start, done, steps):
    """Seconds each step lasted, from the status changes seen: step i runs from the first
    status showing stepIndex i (step 0: from the image change) to the first showing a later
    one (the last: to Healthy). None for a step no status showed on its own (two steps done
    in one reconcile)."""
    began = {0: start}
    for h in history:
        index = h[2]
        if index is not None and index not in began:
            began[index] = h[0]
    ends = sorted(began.items())
    durations = []
    for i in range(steps):
        if i not in began:
            durations.append(None)
            continue
        later = [t for j, t in ends if j > i]
        durations.append((later[0] if later else done) - began[i])
    return durations


# --- abort: a failing measurement -> traffic back on the stable version ---------------------

ABORT_TARGET_SECONDS = 1.0


class Webhook:
    """An analysis webhook on loopback: answers 200, or 500 for the Microservices told to fail
    (the last path segment of the URL names one). Every answer is recorded, with its time."""

    def __init__(self, record_path):
        self.failing = set()
        self.lock = threading.Lock()
        self.answers = []
        self.record = open(record_path, "a", buffering=1)
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                name = self.path.rstrip("/").rsplit("/", 1)[-1]
                with webhook.lock:
                    code = 500 if name in webhook.failing else 200
                payload = b'{"ok": false}' if code == 500 else b'{"ok": true}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                answered = time.time()
                entry = {"time": answered, "name": name, "code": code,
                         "candidateSlot": body.get("candidateSlot"), "weight": body.get("weight")}
                with webhook.lock:
                    webhook.answers.append(entry)
                    webhook.record.write(json.dumps(entry) + "\n")

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/analysis/{name}"

    def fail(self, name):
        with self.lock:
            self.failing.add(name)

    def first(self, name, code, since=0.0):
        with self.lock:
            return next((a for a in self.answers if a["name"] == name and a["code"] == code
                         and a["time"] >= since), None)

    def stop(self):
        self.server.shutdown()


def part_abort(args):
    api = Api()
    webhook = Webhook(os.path.join(args.raw, "webhook.jsonl"))
    watcher = Watcher(args.namespace, args.operator_pid)
    steps = [{"setWeight": 50}, {"pause": {}}]
    runs = []
    for run in range(1, args.runs + 1):
        name = f"abort-{run}"
        analysis = {"interval": "1s", "metrics": [{"name": "smoke", "webhook": {"url": webhook.url(name)}}]}
        create_all(api, args.namespace, [microservice(name, "1", args.replicas, steps, analysis)])
        watcher.wait_one(name, f"{name} to be Healthy", healthy, time.time() + args.deadline)
        start = set_image(api, args.namespace, name, "2")

        def analysing(ms):
            # At the pause, weight 50 verified, and a passed round behind it.
            release = status(ms).get("release") or {}
            last = (release.get("analysis") or {}).get("last") or []
            return (current(ms) and release.get("weight") == 50 and release.get("weightVerified")
                    and release.get("stepIndex") == 1 and any(m.get("passed") for m in last))
        watcher.wait_one(name, f"{name} at weight 50 with a passed analysis round", analysing,
                         start + args.deadline)
        flipped = time.time()
        webhook.fail(name)
        # Degraded with no release left: traffic verified on stable, the candidate scaled down.
        # (Degraded shows earlier, while traffic is still returning.)
        degraded = watcher.wait_one(name, f"{name} to be Degraded with its release ended",
                                    lambda ms: status(ms).get("phase") == "Degraded" and "release" not in status(ms),
                                    flipped + args.deadline)
        failed = webhook.first(name, 500, flipped)
        if failed is None:
            sys.exit(f"[bench] error: {name} became Degraded, but the webhook never answered it 500")
        # Let the gateway log catch up (it is written right after each acceptance).
        time.sleep(0.5)
        candidate = f"{name}-{failed['candidateSlot']}"
        accepts = gateway_accepts(args.gateway_log, args.namespace, name, flipped)
        back = next((a for a in accepts if a["accepted"] >= failed["time"]
                     and a["weights"].get(candidate, 0) == 0), None)
        measurement = watcher.failed_measurements.get(name)

        def after_failure(moment):
            return rnd(moment - failed["time"]) if moment is not None else None
        result = {
            "run": run, "name": name, "candidate_backend": candidate,
            "first_500_after_flip_seconds": rnd(failed["time"] - flipped),
            "reaction_seconds": after_failure(back and back["accepted"]),
            "route_written_seconds": after_failure(back and back.get("seen")),
            "failed_measurement_seen_seconds": after_failure(measurement and measurement["seen"]),
            "degraded_seconds": after_failure(degraded),
            "reason": condition_reason(watcher.objects[name], "Degraded"),
            "message": status(watcher.objects[name]).get("message"),
            "failed_measurement": measurement and {k: measurement[k] for k in ("metric", "outcome", "at", "message")
                                                   if k in measurement},
            "route_timeline": [{"seconds": rnd(a["accepted"] - flipped), "weights": a["weights"]} for a in accepts],
        }
        if result["reaction_seconds"] is None:
            log(f"warning: run {run}: no route acceptance with weight 0 for {candidate} found after the failing answer")
        runs.append(result)
        log(f"run {run}: first 500 {fmt(result['first_500_after_flip_seconds'])}s after the flip; route back on "
            f"stable {fmt(result['reaction_seconds'], 3)}s after it; Degraded after {fmt(result['degraded_seconds'], 3)}s")
    dump_history(watcher, os.path.join(args.raw, "history.jsonl"))
    watcher.stop()
    webhook.stop()
    reaction = median([r["reaction_seconds"] for r in runs])
    out = {
        "analysis": "webhook metric, interval 1s, failureLimit 0; canary setWeight 50, pause {}",
        "replicas": args.replicas, "runs": args.runs,
        "reaction_seconds": rnd(reaction),
        "target_reaction_seconds": ABORT_TARGET_SECONDS,
        "target_met": None if reaction is None else reaction < ABORT_TARGET_SECONDS,
        "route_written_seconds": rnd(median([r["route_written_seconds"] for r in runs])),
        "degraded_seconds": rnd(median([r["degraded_seconds"] for r in runs])),
        "failed_measurement_seen_seconds": rnd(median([r["failed_measurement_seen_seconds"] for r in runs])),
        "first_500_after_flip_seconds": rnd(median([r["first_500_after_flip_seconds"] for r in runs])),
        "per_run": runs,
    }
    write(args.out, out)
    per_run = lambda key, digits=3: " ".join(fmt(r[key], digits) for r in runs)
    table(f"abort: webhook analysis every 1 s turns to 500, {args.runs} runs", [
        ("first 500 -> route at weight 0 accepted", fmt(reaction, 3, " s"),
         f"{per_run('reaction_seconds')}; target < {ABORT_TARGET_SECONDS:g} s: {verdict(out['target_met'])}"),
        ("  first 500 -> route written (seen by the gateway)", fmt(out["route_written_seconds"], 3, " s"), per_run("route_written_seconds")),
        ("  first 500 -> failed measurement in status", fmt(out["failed_measurement_seen_seconds"], 3, " s"), per_run("failed_measurement_seen_seconds")),
        ("  first 500 -> Degraded, release ended (candidate scaled down)", fmt(out["degraded_seconds"], 3, " s"),
         per_run("degraded_seconds")),
        ("flip -> first 500 (waiting for the next round)", fmt(out["first_500_after_flip_seconds"], 3, " s"), "not Weir's reaction: about the 1 s interval"),
    ])


def condition_reason(ms, kind):
    for c in status(ms).get("conditions", []):
        if c.get("type") == kind:
            return c.get("reason")
    return None


# --- scale: K of N Microservices release at once ------------------------------------------

SHORT_STEPS = [{"setWeight": 50}, {"pause": {"duration": f"{STEP_PAUSE_SECONDS}s"}}]


def names(prefix, n):
    return [f"{prefix}-{i:04d}" for i in range(n)]


def wait_all_healthy(watcher, all_names, deadline, what):
    wanted = set(all_names)
    started = time.time()
    next_progress = started + 10

    def done(objects):
        nonlocal next_progress
        ready = sum(1 for n in wanted if n in objects and healthy(objects[n]))
        if time.time() >= next_progress:
            log(f"{what}: {ready}/{len(wanted)} Healthy after {time.time() - started:.0f}s")
            next_progress = time.time() + 10
        return ready == len(wanted)
    watcher.wait(what, done, deadline)


def rss_between(rss_path, start, end):
    samples = []
    with open(rss_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and start <= float(parts[0]) <= end:
                samples.append(int(parts[1]))
    return samples


def part_scale(args):
    api = Api()
    watcher = Watcher(args.namespace, args.operator_pid)
    everyone = names("scale", args.n)
    # Spread over the whole set, so the releasing ones are not all the first created.
    stride = args.n / args.releasing
    releasing = [everyone[int(i * stride)] for i in range(args.releasing)]
    log(f"creating {args.n} Microservices")
    created = time.time()
    create_all(api, args.namespace, [microservice(n, "1", args.replicas, SHORT_STEPS) for n in everyone])
    wait_all_healthy(watcher, everyone, created + args.deadline, f"{args.n} Microservices Healthy")
    ready = time.time()
    log(f"{args.n} Microservices Healthy after {ready - created:.1f}s")
    time.sleep(2)
    runs = []
    for run in range(1, args.runs + 1):
        tag = str(run + 1)
        old = {n: status(watcher.objects[n]).get("stableRevision") for n in releasing}
        started = {}
        window_start = time.time()
        for n in releasing:
            started[n] = set_image(api, args.namespace, n, tag)
        patched = time.time()
        finished = {}  # Healthy on the new revision
        settled = {}  # and the old slot's Deployment gone (status.scaleDownAt cleared)

        def all_done(objects):
            for n in releasing:
                if n not in objects:
                    continue
                if n not in finished and released(objects[n], old[n]):
                    finished[n] = watcher.received[n]
                if n not in settled and released(objects[n], old[n], settled=True):
                    settled[n] = watcher.received[n]
                    finished.setdefault(n, settled[n])
            return len(settled) == len(releasing)
        watcher.wait(f"run {run}: {args.releasing} releases to finish", all_done, window_start + args.deadline)
        last = max(finished.values())
        # The window for counting requests runs until every old slot is gone, plus a short
        # grace for the requests of the last reconciles (the final status write).
        time.sleep(2)
        window_end = max(settled.values()) + 2
        requests = audit.operator_requests(args.audit, window_start, window_end)
        counted = [r for r in requests if not r[4]]
        durations = [finished[n] - started[n] for n in releasing]
        rss = rss_between(args.rss, window_start, window_end)
        result = {
            "run": run, "tag": tag,
            "patch_seconds": rnd(patched - window_start),
            "all_finished_seconds": rnd(last - window_start),
            "all_settled_seconds": rnd(max(settled.values()) - window_start),
            "window_seconds": rnd(window_end - window_start),
            "median_release_seconds": rnd(median(durations)),
            "max_release_seconds": rnd(max(durations)),
            "requests": len(counted),
            "requests_per_release": rnd(len(counted) / args.releasing, 2),
            "writes_per_release": rnd(sum(1 for r in counted if r[1] in WRITE_VERBS) / args.releasing, 2),
            "lease_requests": len(requests) - len(counted),
            "requests_by_verb_resource": dict(collections.Counter(f"{r[1]} {r[2]}" for r in counted).most_common()),
            "peak_rss_mib": rnd(max(rss) / 1024, 1) if rss else None,
        }
        runs.append(result)
        log(f"run {run}: {args.releasing} releases finished {result['all_finished_seconds']:.1f}s after the first "
            f"image change; {result['requests_per_release']:.1f} operator requests per release")
        time.sleep(1)
    log(f"settling for {args.settle_seconds}s")
    time.sleep(args.settle_seconds)
    settled = proc_kib(args.operator_pid)
    hwm = proc_kib(args.operator_pid, "VmHWM")
    if settled is None:
        sys.exit("[bench] error: the operator exited while settling")
    dump_history(watcher, os.path.join(args.raw, "history.jsonl"))
    watcher.stop()
    all_rss = rss_between(args.rss, 0, time.time())
    out = {
        "n": args.n, "releasing": args.releasing, "replicas": args.replicas, "runs": args.runs,
        "steps": "setWeight 50, pause 1s",
        "create_seconds": rnd(ready - created),
        "all_finished_seconds": rnd(median([r["all_finished_seconds"] for r in runs])),
        "median_release_seconds": rnd(median([r["median_release_seconds"] for r in runs])),
        "max_release_seconds": rnd(median([r["max_release_seconds"] for r in runs])),
        "requests_per_release": rnd(median([r["requests_per_release"] for r in runs]), 2),
        "writes_per_release": rnd(median([r["writes_per_release"] for r in runs]), 2),
        "peak_rss_mib": rnd(max(all_rss) / 1024, 1) if all_rss else None,
        "peak_rss_releasing_mib": rnd(max(r["peak_rss_mib"] or 0 for r in runs), 1),
        "peak_rss_hwm_mib": rnd(hwm / 1024, 1) if hwm else None,
        "settled_rss_mib": rnd(settled / 1024, 1),
        "settle_seconds": args.settle_seconds,
        "per_run": runs,
    }
    write(args.out, out)
    per_run = lambda key, digits=2: " ".join(fmt(r[key], digits) for r in runs)
    table(f"scale: {args.releasing} of {args.n} Microservices release at once (setWeight 50, pause 1s), {args.runs} runs", [
        (f"create {args.n}, until all Healthy", fmt(out["create_seconds"], 1, " s"), "once, before the runs"),
        ("first image change -> all released", fmt(out["all_finished_seconds"], 2, " s"), per_run("all_finished_seconds")),
        ("  one release (median / slowest)", f"{fmt(out['median_release_seconds'])} / {fmt(out['max_release_seconds'])} s",
         per_run("median_release_seconds")),
        ("API requests per release", fmt(out["requests_per_release"], 1), per_run("requests_per_release", 1)),
        ("  of which writes", fmt(out["writes_per_release"], 1), per_run("writes_per_release", 1)),
        ("operator RSS peak", fmt(out["peak_rss_mib"], 1, " MiB"),
         f"whole part; during the releases {fmt(out['peak_rss_releasing_mib'], 1, ' MiB')}; VmHWM {fmt(out['peak_rss_hwm_mib'], 1, ' MiB')}"),
        ("operator RSS settled", fmt(out["settled_rss_mib"], 1, " MiB"), f"{args.settle_seconds} s after the last run"),
    ])
    last = runs[-1]["requests_by_verb_resource"]
    print(f"\noperator requests in run {runs[-1]['run']}: " + ", ".join(f"{k}: {v}" for k, v in last.items()))


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


# --- soak: releases in a loop; does memory keep growing? -----------------------------------

SOAK_SAMPLE_SECONDS = 10
SOAK_START_SECONDS = 60  # RSS "at start" is taken after the first minute
SOAK_WARMUP_SECONDS = 300  # the trend is fitted after the first 5 minutes
SOAK_SLOPE_LIMIT = 0.01  # of the start RSS per 10 minutes
SOAK_MIN_FIT_SECONDS = 300  # a trend over less than 5 minutes is reported, not judged


def slope_per_minute(samples):
    """Least-squares slope (KiB per minute) of [(seconds, KiB)]."""
    if len(samples) < 2:
        return None
    xs = [t / 60 for t, _ in samples]
    ys = [v for _, v in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else None


def judge(samples, seconds):
    """The memory verdict over RSS samples [(seconds since the loop started, KiB)]."""
    start = next((v for t, v in samples if t >= SOAK_START_SECONDS), None)
    # The fit starts after 5 minutes; a soak shorter than 10 minutes fits its second half.
    warmup = min(SOAK_WARMUP_SECONDS, seconds / 2)
    fitted = [(t, v) for t, v in samples if t >= warmup]
    slope = slope_per_minute(fitted)
    limit = start * SOAK_SLOPE_LIMIT / 10 if start else None
    fit_seconds = fitted[-1][0] - fitted[0][0] if len(fitted) >= 2 else 0
    judged = slope is not None and limit is not None and fit_seconds >= SOAK_MIN_FIT_SECONDS - SOAK_SAMPLE_SECONDS
    return {
        "start_rss_kib": start,
        "end_rss_kib": samples[-1][1] if samples else None,
        "fit_from_seconds": warmup,
        "fit_seconds": fit_seconds,
        "fit_samples": len(fitted),
        "slope_kib_per_minute": rnd(slope, 2),
        "slope_limit_kib_per_minute": rnd(limit, 2),
        "judged": judged,
        "growing": (slope > limit) if judged else None,
    }


def part_soak(args):
    api = Api()
    watcher = Watcher(args.namespace, args.operator_pid)
    everyone = names("soak", args.n)
    created = time.time()
    create_all(api, args.namespace, [microservice(n, "1", args.replicas, SHORT_STEPS) for n in everyone])
    wait_all_healthy(watcher, everyone, created + args.deadline, f"{args.n} Microservices Healthy")
    log(f"{args.n} Microservices Healthy after {time.time() - created:.1f}s; releasing in a loop for {args.minutes:g} min")

    tag = {n: 1 for n in everyone}
    old = {}  # name -> stable revision before its running release
    began = {}  # name -> when its running release began
    releases = []  # (name, began, ended, outcome)
    samples = []
    start = time.time()
    end = start + args.minutes * 60
    next_sample = start
    next_progress = start + 60
    with open(args.rss_out, "w") as rss_file:
        while True:
            now = time.time()
            if now >= next_sample:
                rss = proc_kib(args.operator_pid)
                if rss is None:
                    sys.exit(f"[bench] error: the operator (pid {args.operator_pid}) exited during the soak")
                samples.append((now - start, rss))
                rss_file.write(f"{now:.3f} {rss}\n")
                rss_file.flush()
                next_sample += SOAK_SAMPLE_SECONDS
            if now >= next_progress:
                log(f"soak: {len(releases)} releases in {(now - start) / 60:.0f} min, RSS {samples[-1][1] / 1024:.1f} MiB")
                next_progress += 60
            if now >= end:
                break
            # Everything Healthy on its new revision (or failed) gets the next image.
            due = []
            with watcher.cond:
                for n in everyone:
                    ms = watcher.objects.get(n)
                    if ms is None:
                        continue
                    if n not in began:
                        due.append((n, None))
                    elif released(ms, old[n]):
                        due.append((n, "released"))
                    elif current(ms) and status(ms).get("phase") == "Degraded":
                        due.append((n, "degraded"))
                for n, outcome in due:
                    if outcome:
                        releases.append((n, began[n], watcher.received[n], outcome))
                    old[n] = status(watcher.objects[n]).get("stableRevision")
                if not due:
                    watcher.cond.wait(min(0.5, max(0.0, next_sample - time.time())))
            for n, _ in due:
                tag[n] += 1
                began[n] = set_image(api, args.namespace, n, str(tag[n]))
    dump_history(watcher, os.path.join(args.raw, "history.jsonl"))
    with open(os.path.join(args.raw, "releases.jsonl"), "w") as f:
        for n, t0, t1, outcome in releases:
            f.write(json.dumps({"name": n, "began": round(t0, 3), "ended": round(t1, 3), "outcome": outcome}) + "\n")
    watcher.stop()
    seconds = time.time() - start
    done = [r for r in releases if r[3] == "released"]
    memory = judge(samples, seconds)
    # A loop that stopped releasing is a failure too, whatever the memory did.
    stuck = not done
    out = {
        "n": args.n, "minutes": args.minutes, "replicas": args.replicas,
        "steps": "setWeight 50, pause 1s",
        "releases": len(done),
        "releases_per_minute": rnd(len(done) / (seconds / 60), 1),
        "degraded": sum(1 for r in releases if r[3] == "degraded"),
        "median_release_seconds": rnd(median([r[2] - r[1] for r in done])),
        "rss_samples": len(samples),
        "start_rss_mib": rnd(memory["start_rss_kib"] / 1024, 1) if memory["start_rss_kib"] else None,
        "end_rss_mib": rnd(memory["end_rss_kib"] / 1024, 1) if memory["end_rss_kib"] else None,
        "peak_rss_mib": rnd(max(v for _, v in samples) / 1024, 1) if samples else None,
        **memory,
        "failed": bool(memory["growing"]) or stuck,
    }
    write(args.out, out)
    if memory["judged"]:
        judgement = "GROWING: fails" if memory["growing"] else "flat: passes"
    else:
        judgement = f"not judged: the fit covers {memory['fit_seconds']:.0f} s, under {SOAK_MIN_FIT_SECONDS} s"
    table(f"soak: {args.n} Microservices releasing in a loop for {args.minutes:g} min (setWeight 50, pause 1s)", [
        ("releases finished", str(out["releases"]), f"{fmt(out['releases_per_minute'], 1)} per minute; {out['degraded']} Degraded"),
        ("one release", fmt(out["median_release_seconds"], 2, " s"), "median"),
        ("operator RSS at start / end", f"{fmt(out['start_rss_mib'], 1)} / {fmt(out['end_rss_mib'], 1)} MiB",
         f"start: after {SOAK_START_SECONDS} s; peak {fmt(out['peak_rss_mib'], 1)} MiB; a sample every {SOAK_SAMPLE_SECONDS} s"),
        ("RSS trend (least squares)", fmt(memory["slope_kib_per_minute"], 1, " KiB/min"),
         f"over {memory['fit_samples']} samples from {memory['fit_from_seconds']:.0f} s; limit "
         f"{fmt(memory['slope_limit_kib_per_minute'], 1)} KiB/min (1% of the start RSS per 10 min): {judgement}"),
    ])
    if stuck:
        log("error: no release finished during the soak")
    if out["failed"]:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["release", "abort", "scale", "soak"])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--out", required=True, help="the part's JSON result")
    parser.add_argument("--raw", required=True, help="directory for raw records")
    parser.add_argument("--operator-pid", type=int, required=True)
    parser.add_argument("--gateway-log", required=True)
    parser.add_argument("--deadline", type=float, required=True, help="seconds any one wait may take")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--releasing", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=1)
    parser.add_argument("--settle-seconds", type=int, default=30)
    parser.add_argument("--audit", help="the API server's audit log (scale)")
    parser.add_argument("--rss", help="the operator's RSS samples, '<epoch> <KiB>' lines (scale)")
    args = parser.parse_args()
    args.rss_out = os.path.join(args.raw, "soak-rss.tsv")
    {"release": part_release, "abort": part_abort, "scale": part_scale, "soak": part_soak}[args.part](args)


if __name__ == "__main__":
    main()
