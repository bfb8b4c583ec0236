#!/usr/bin/env bash
# `make run`: the operator in the foreground. With KUBECONFIG unset it first starts the local
# control plane (.cluster/) with its Gateway and pod server, and prints the Gateway's port;
# either way it installs the CRDs from crds/ before starting.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KUBECONFIG:-}" ]; then
  "$root/hack/cluster-up.sh"
  export KUBECONFIG=$root/.cluster/kubeconfig
  export PATH=$root/.cluster/bin:$PATH
  gateway_port=$(sed -n 's/^GATEWAY_PORT=//p' "$root/.cluster/ports.env")
  [ -z "$gateway_port" ] || echo "[run] GATEWAY_PORT=$gateway_port: Gateway weir-local (namespace weir-system) answers on http://127.0.0.1:$gateway_port" >&2
fi
kubectl apply --server-side --force-conflicts --field-manager=weir-install -f "$root/crds/" >&2
exec "$root/target/debug/weir" run --metrics-addr "${WEIR_METRICS_ADDR:-127.0.0.1:8080}" "$@"
