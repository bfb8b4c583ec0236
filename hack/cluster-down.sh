#!/usr/bin/env bash
# Stops every process hack/cluster-up.sh started (by the pids it recorded) and removes the
# cluster state. Safe to run when nothing is up. The route that makes pod IPs local is shared
# by every local cluster on the machine: it goes only with the last of them (hack/pod-range.sh).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${WEIR_CLUSTER_DIR:-$root/.cluster}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd) # as cluster-up recorded it

# Stop in reverse start order so clients go before the servers they talk to.
for name in weir pod-server traefik kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile=$dir/pids/$name
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
# shellcheck source=pod-range.sh
source "$root/hack/pod-range.sh"
release_pod_cidr "$dir"
rm -rf "$dir"
echo "[cluster-down] stopped and removed $dir" >&2
