#!/usr/bin/env bash
# `make run`: the operator in the foreground. With KUBECONFIG unset it first starts the local
# control plane (.cluster/); either way it installs the CRDs from crds/ before starting.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KUBECONFIG:-}" ]; then
  "$root/hack/cluster-up.sh"
  export KUBECONFIG=$root/.cluster/kubeconfig
  export PATH=$root/.cluster/bin:$PATH
fi
kubectl apply --server-side --force-conflicts --field-manager=weir-install -f "$root/crds/" >&2
exec "$root/target/debug/weir" run --metrics-addr "${WEIR_METRICS_ADDR:-127.0.0.1:8080}" "$@"
