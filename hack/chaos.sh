#!/usr/bin/env bash
# Runs the fault-injection tests (tests/chaos.rs) in their long form (WEIR_CHAOS=long)
# against a control plane of their own (.cluster-chaos/), started here and stopped on exit
# whatever happens: the tests SIGKILL and restart its kube-apiserver and etcd.
#
# Arguments go to the test binary, for example `hack/chaos.sh frozen` or
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
cargo test --locked --test chaos -- --test-threads "${WEIR_TEST_THREADS:-4}" "$@"
