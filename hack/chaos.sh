#!/usr/bin/env bash
# Runs the fault-injection tests (the `chaos::` module of the cluster test binary,
# tests/cluster/chaos.rs) in their long form (WEIR_CHAOS=long) against a control plane of
# their own (.cluster-chaos/), started here and stopped on exit whatever happens: the tests
# SIGKILL and restart its kube-apiserver and etcd.
#
# Arguments go to the test binary. Test names among them choose the tests instead of
# `chaos::`, for example `hack/chaos.sh chaos::a_frozen`; flags alone keep `chaos::`
# (`hack/chaos.sh --nocapture`; give a flag's value as `--flag=value`). Also
# `WEIR_CHAOS_SEED=42 hack/chaos.sh`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export WEIR_CLUSTER_DIR=$root/.cluster-chaos
trap '"$root/hack/cluster-down.sh"' EXIT

"$root/hack/install-prometheus.sh"
"$root/hack/cluster-up.sh"
export KUBECONFIG=$WEIR_CLUSTER_DIR/kubeconfig
export PATH=$WEIR_CLUSTER_DIR/bin:$PATH
export WEIR_CHAOS=long
cd "$root"
filter=(chaos::)
for arg in "$@"; do
  [[ $arg == -* ]] || filter=()
done
cargo test --locked --test cluster -- --test-threads "${WEIR_TEST_THREADS:-4}" ${filter[@]+"${filter[@]}"} "$@"
