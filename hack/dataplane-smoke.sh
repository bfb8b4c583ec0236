#!/usr/bin/env bash
# Proves the local data plane end to end, by hand: on a cluster from hack/cluster-up.sh
# ($WEIR_CLUSTER_DIR, default .cluster/), a Deployment of 2 pods with container port 8080, a
# Service and an HTTPRoute to Gateway weir-local; then Traefik's own Accepted and
# ResolvedRefs on the route, and requests to 127.0.0.1:$GATEWAY_PORT answered by the pod
# server from both pods. Everything lives in a namespace of its own, deleted on exit.
# Usage: hack/dataplane-smoke.sh [requests]   (default 40)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${WEIR_CLUSTER_DIR:-$root/.cluster}
requests=${1:-40}
ns=dataplane-smoke-$$
# A hostname of its own: a route left by an earlier run (its namespace still terminating)
# does not answer for this one.
host=$ns.local

log() { printf '[smoke] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
kubectl() { "$dir/bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }

[ -f "$dir/ready" ] || die "no cluster in $dir: run hack/cluster-up.sh"
# shellcheck source=/dev/null
source "$dir/ports.env"
[ "${DATA_PLANE:-0}" = 1 ] || die "the cluster has no data plane: $(cat "$dir/no-data-plane" 2>/dev/null)"

trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: smoke}}
  template:
    metadata: {labels: {app: smoke, weir.dev/slot: blue}}
    spec:
      containers:
      - name: app
        image: smoke/app:1
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: smoke}
spec:
  selector: {app: smoke}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: smoke}
spec:
  parentRefs: [{name: weir-local, namespace: weir-system}]
  hostnames: [$host]
  rules: [{backendRefs: [{name: smoke, port: 80}]}]
EOF

kubectl -n "$ns" wait --for=condition=Available deployment/smoke --timeout=60s >/dev/null
log "pods: $(kubectl -n "$ns" get pods -l app=smoke -o jsonpath='{range .items[*]}{.metadata.name}={.status.podIP} {end}')"

# Traefik's conditions on the route, for the Gateway weir-local parent.
route_conditions() {
  kubectl -n "$ns" get httproute smoke -o json | python3 -c '
import json, sys
route = json.load(sys.stdin)
for parent in (route.get("status") or {}).get("parents") or []:
    if parent["controllerName"] == "traefik.io/gateway-controller":
        for c in parent["conditions"]:
            if c["observedGeneration"] == route["metadata"]["generation"]:
                print(c["type"] + "=" + c["status"])'
}
deadline=$(( $(date +%s) + 60 ))
until conditions=$(route_conditions | sort | paste -sd ' ' -) \
  && [[ " $conditions " == *" Accepted=True "* && " $conditions " == *" ResolvedRefs=True "* ]]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "route not Accepted and ResolvedRefs by Traefik within 60 s: ${conditions:-no status}"
  sleep 0.5
done
log "HTTPRoute status from traefik.io/gateway-controller: $conditions"

# Traefik applies a route within its reload throttle; the first answers may still be 404.
url=http://127.0.0.1:$GATEWAY_PORT/
deadline=$(( $(date +%s) + 30 ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "$url")" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "$url did not answer 200 within 30 s"
  sleep 0.2
done
log "one answer: $(curl -s -H "Host: $host" "$url")"

answers=$(for _ in $(seq 1 "$requests"); do
  curl -s -o /dev/null -w '%{http_code} %header{x-pod}\n' -H "Host: $host" "$url"
done | sort | uniq -c)
log "$requests requests through $url with Host: $host (count, status, x-pod):"
echo "$answers" >&2
pods=$(echo "$answers" | awk '$2 == 200 {print $3}' | sort -u | wc -l)
failed=$(echo "$answers" | awk '$2 != 200 {n += $1} END {print n + 0}')
[ "$failed" = 0 ] || die "$failed of $requests requests did not answer 200"
[ "$pods" = 2 ] || die "answers came from $pods pod(s), expected both"
log "OK: every request answered 200, by both pods"
