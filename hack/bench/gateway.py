#!/usr/bin/env python3
"""A fake Gateway API controller: accepts every HTTPRoute at once, the way a real one reports it.

    gateway.py --log gateway.jsonl

Watches HTTPRoutes in every namespace. A route whose status lacks, for one of its
spec.parentRefs, a parent entry of ours with Accepted=True at the route's current
metadata.generation gets status.parents written (a merge patch of the status subresource):
for each parentRef, controllerName bench.weir.dev/gateway and Accepted=True at that
generation. This is what tests/support/gateway.rs does for the cluster tests; Weir counts a
weight as applied only once every parent has accepted the generation carrying it.

Each write appends one JSON line to the log: route namespace and name, the generation
accepted, the weights of the weighted rule (backend Service -> weight), when the change was
seen (`seen`) and when the write returned (`accepted`), both epoch seconds. The first line,
{"kind": "ready"}, says the initial list is done. A failed write is retried within a second.
"""
import argparse
import json
import queue
import signal
import sys
import threading
import time

from kube import Api, ApiError

CONTROLLER_NAME = "bench.weir.dev/gateway"
ROUTES = "/apis/gateway.networking.k8s.io/v1/httproutes"


def log(msg):
    print(f"[gateway] {msg}", file=sys.stderr, flush=True)


def key(route):
    return route["metadata"].get("namespace", ""), route["metadata"]["name"]


def is_accepted(route):
    """Every parent in the spec has our Accepted=True at the route's current generation."""
    generation = route["metadata"].get("generation")
    parents = (route.get("status") or {}).get("parents") or []
    for wanted in route["spec"].get("parentRefs") or []:
        if not any(
            p.get("controllerName") == CONTROLLER_NAME and p.get("parentRef") == wanted
            and any(c.get("type") == "Accepted" and c.get("status") == "True"
                    and c.get("observedGeneration") == generation for c in p.get("conditions") or [])
            for p in parents
        ):
            return False
    return True


def weights(route):
    """Backend -> weight of the weighted rule: the last rule without header matches."""
    for rule in reversed(route["spec"].get("rules") or []):
        if any(m.get("headers") for m in rule.get("matches") or []):
            continue
        return {b["name"]: b.get("weight", 1) for b in rule.get("backendRefs") or []}
    return {}


def status_patch(route):
    generation = route["metadata"].get("generation")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {"parents": [
        {
            "parentRef": parent,
            "controllerName": CONTROLLER_NAME,
            "conditions": [{
                "type": "Accepted", "status": "True", "reason": "Accepted", "message": "accepted",
                "observedGeneration": generation, "lastTransitionTime": now,
            }],
        }
        for parent in route["spec"].get("parentRefs") or []
    ]}}


def watch(events, stop):
    api = Api(agent="weir-bench-gateway")
    try:
        for event in api.watch(ROUTES, stop=stop.is_set):
            events.put(event)
    except Exception as e:  # noqa: BLE001 - reported, then the gateway stops
        log(f"error: the HTTPRoute watch failed: {e}")
        raise
    finally:
        events.put(None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    events = queue.Queue()
    thread = threading.Thread(target=watch, args=(events, stop), daemon=True)
    thread.start()
    api = Api(agent="weir-bench-gateway")
    routes = {}  # (namespace, name) -> latest copy seen
    written = {}  # (namespace, name) -> resourceVersion our last write returned
    seen_at = {}  # (namespace, name) -> when the latest copy arrived

    ready = False
    with open(args.log, "a", buffering=1) as out:
        while not stop.is_set():
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                candidates = [k for k, r in routes.items() if not is_accepted(r)]
            else:
                if event is None:
                    break
                kind, route, received = event
                if kind == "SYNCED":
                    if not ready:
                        ready = True
                        out.write(json.dumps({"kind": "ready", "time": time.time()}) + "\n")
                        log("watching HTTPRoutes")
                    continue
                k = key(route)
                if kind == "DELETED":
                    routes.pop(k, None)
                    written.pop(k, None)
                    continue
                routes[k] = route
                seen_at[k] = received
                candidates = [k]
            for k in candidates:
                route = routes.get(k)
                if route is None or is_accepted(route):
                    continue
                # A cached copy older than our own last write has been handled already.
                if int(route["metadata"]["resourceVersion"]) < written.get(k, 0):
                    continue
                path = f"/apis/gateway.networking.k8s.io/v1/namespaces/{k[0]}/httproutes/{k[1]}/status"
                try:
                    done = api.merge_patch(path, status_patch(route))
                except (ApiError, OSError) as e:
                    if getattr(e, "status", None) == 404:
                        routes.pop(k, None)  # deleted meanwhile
                    else:
                        log(f"accepting {k[0]}/{k[1]} failed, retrying: {e}")
                    continue
                accepted = time.time()
                written[k] = int(done["metadata"]["resourceVersion"])
                out.write(json.dumps({
                    "namespace": k[0], "name": k[1], "generation": route["metadata"].get("generation"),
                    "weights": weights(route), "seen": seen_at.get(k), "accepted": accepted,
                }) + "\n")
    log("stopped")


if __name__ == "__main__":
    main()
