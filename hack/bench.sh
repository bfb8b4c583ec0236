#!/usr/bin/env bash
# `make bench`: how close Weir gets to the floor of this cluster, what it costs, and how fast
# and lean its releases are. docs/development.md ("Benchmarks") explains every figure.
#
# This script only builds, and keeps the private control plane (.cluster-bench/, removed on
# exit) alive around the benchmark driver, benches/weir/ (`cargo bench --bench weir`), which
# runs the selected parts (core, release, abort, scale, soak; traffic and peers when named),
# each against its own, freshly started operator, and writes target/bench/<part>.json, a
# table per part and a summary. The cluster starts without Traefik and the pod server
# (WEIR_DATA_PLANE=0 unless set), so the figures keep the conditions they were measured in;
# the API server's audit log (Metadata level, hack/cluster-up.sh) is where the driver counts
# the operator's requests.
#
# Settings (environment, read by the driver): BENCH (core,release,abort,scale; soak is added
# when SOAK_MINUTES is set), N (100), BENCH_RUNS (3), BENCH_REPLICAS (1), BENCH_IDLE_SECONDS
# (60), RELEASING (50), BENCH_SETTLE_SECONDS (30), SOAK_MINUTES (30), SOAK_N (100); and here,
# BENCH_BUILD (1; 0 runs target/release/weir as it is).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-1}
out=${WEIR_BENCH_OUT:-$root/target/bench}
# WEIR_BENCH_CLUSTER_DIR lets two benchmarks run side by side, each on its own control plane.
export WEIR_CLUSTER_DIR=${WEIR_BENCH_CLUSTER_DIR:-$root/.cluster-bench}
dir=$WEIR_CLUSTER_DIR

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $build =~ ^[01]$ ]] || die "BENCH_BUILD=$build: expected 1 (build the operator) or 0 (use target/release/weir as it is)"

# The driver and the operator are built before the cluster starts, so compiling does not
# compete with it for the cores. `cargo bench` builds the operator binary beside the driver.
mkdir -p "$out"
if [ "$build" = 1 ]; then
  log "building the operator and the benchmark driver (release)"
  (cd "$root" && cargo bench --locked --bench weir --no-run)
  operator=$root/target/release/weir
else
  [ -x "$root/target/release/weir" ] || die "BENCH_BUILD=0 but there is no target/release/weir"
  # Kept aside: building the driver may rebuild target/release/weir.
  operator=$out/weir-operator
  cp "$root/target/release/weir" "$operator"
  log "using target/release/weir as it is (BENCH_BUILD=0)"
fi
driver() { (cd "$root" && cargo bench --locked --bench weir -- "$@"); }
export WEIR_BENCH_OPERATOR=$operator WEIR_BENCH_OUT=$out

# The settings are checked before a cluster starts.
parts=$(driver --check)
log "parts: $parts"

# `peers` compares Weir with Flagger and Argo Rollouts, built from the Go module proxy and
# cached by version like the cluster's tools (hack/versions.env); the driver restarts the
# cluster below for each controller it measures, so each runs alone on a fresh one.
if [[ " $parts " == *" peers "* ]]; then
  log "building the peers (Flagger, Argo Rollouts), once per version"
  "$root/hack/build-tools.sh" flagger argo-rollouts
fi

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  "$root/hack/cluster-down.sh" || true # stops the operator too (pids/weir)
  [ "$status" -eq 0 ] || log "failed (exit $status); the operators' logs are in $out/<part>/weir.log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh cluster every time: a left-over one would carry objects and an old audit log.
"$root/hack/cluster-down.sh" >/dev/null 2>&1 || true
# Without the data plane unless the traffic part runs: the other parts' figures were measured
# without Traefik and the pod server, and keep those conditions.
data_plane=0
[[ ",${parts// /,}," != *,traffic,* ]] || data_plane=1
WEIR_DATA_PLANE=${WEIR_DATA_PLANE:-$data_plane} "$root/hack/cluster-up.sh"
export KUBECONFIG=$dir/kubeconfig
export PATH=$dir/bin:$PATH
kubectl apply --server-side --field-manager=weir-install -f "$root/crds/" >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/microservices.weir.dev crd/httproutes.gateway.networking.k8s.io >/dev/null

driver
