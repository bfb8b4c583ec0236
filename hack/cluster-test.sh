#!/usr/bin/env bash
# Runs the cluster tests against a control plane of their own (.cluster-test/), started here
# and stopped on exit whatever happens, so `make test` never depends on a cluster left up.
#
# Traffic tests need the data plane (DATA_PLANE=1 in ports.env: pod IPs made local, which
# takes NET_ADMIN). Under CI=true its absence fails the run before any test; elsewhere the
# tests run, each traffic test that could not run is recorded (tests/support/dataplane.rs),
# and the summary at the end names them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export WEIR_CLUSTER_DIR=$root/.cluster-test
trap '"$root/hack/cluster-down.sh"' EXIT

"$root/hack/install-prometheus.sh"
"$root/hack/install-lua.sh"
"$root/hack/install-browser.sh"
"$root/hack/build-kstatus.sh" >/dev/null
"$root/hack/cluster-up.sh"
export KUBECONFIG=$WEIR_CLUSTER_DIR/kubeconfig
export PATH=$WEIR_CLUSTER_DIR/bin:$PATH

data_plane=$(sed -n 's/^DATA_PLANE=//p' "$WEIR_CLUSTER_DIR/ports.env")
no_data_plane=$(cat "$WEIR_CLUSTER_DIR/no-data-plane" 2>/dev/null || true)
if [ "$data_plane" != 1 ] && [ "${CI:-}" = true ]; then
  echo "[cluster-test] error: CI runs every traffic test, and this machine has no data plane: $no_data_plane" >&2
  exit 1
fi
export WEIR_TRAFFIC_NOT_RUN=$WEIR_CLUSTER_DIR/traffic-tests-not-run
: > "$WEIR_TRAFFIC_NOT_RUN"

cd "$root"
status=0
# The tests wait on the API server, not the CPU: run more of them at once than there are cores.
cargo test --locked --no-fail-fast --test cluster -- --test-threads "${WEIR_TEST_THREADS:-8}" || status=$?

if [ "$data_plane" != 1 ]; then
  not_run=$(sort -u "$WEIR_TRAFFIC_NOT_RUN" | paste -sd ' ' -)
  echo "[cluster-test] no data plane ($no_data_plane); traffic tests not run: ${not_run:-none}" >&2
fi
exit "$status"
