#!/usr/bin/env bash
# Runs the cluster tests against a control plane of their own (.cluster-test/), started here
# and stopped on exit whatever happens, so `make test` never depends on a cluster left up.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export WEIR_CLUSTER_DIR=$root/.cluster-test
trap '"$root/hack/cluster-down.sh"' EXIT

"$root/hack/install-prometheus.sh"
"$root/hack/install-lua.sh"
"$root/hack/build-kstatus.sh" >/dev/null
"$root/hack/cluster-up.sh"
export KUBECONFIG=$WEIR_CLUSTER_DIR/kubeconfig
export PATH=$WEIR_CLUSTER_DIR/bin:$PATH
cd "$root"
# The tests wait on the API server, not the CPU: run more of them at once than there are cores.
cargo test --locked --test cluster -- --test-threads "${WEIR_TEST_THREADS:-8}"
