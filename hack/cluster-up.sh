#!/usr/bin/env bash
# Starts a real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok, with fake Nodes in three zones whose pods become Running and Ready;
# then its Gateway API data plane: the Gateway API CRDs, Traefik as the gateway of Gateway
# `weir-local` (namespace weir-system), and the pod server that answers HTTP on the pods' IPs.
# Without NET_ADMIN (the pod IPs cannot be made local) it starts without the pod server and
# records DATA_PLANE=0 in ports.env.
#
# Idempotent: when the cluster in $WEIR_CLUSTER_DIR (default .cluster/) answers /readyz it
# returns at once. Otherwise it clears stale state, builds or reuses the tools, and starts
# every component in the background on free loopback ports, recording each pid so
# hack/cluster-down.sh stops exactly what was started here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${WEIR_CLUSTER_DIR:-$root/.cluster}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"
cache=${WEIR_TOOLS_CACHE:-$HOME/.cache/weir/tools}
nodes=${WEIR_NODES:-3}

log() { printf '[cluster-up] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubectl() { "$dir/bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }

all_running() {
  local pidfile count=0
  for pidfile in "$dir"/pids/*; do
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
    count=$((count + 1))
  done
  [ "$count" -ge 5 ]
}
if [ -f "$dir/ready" ] && all_running && kubectl get --raw /readyz >/dev/null 2>&1; then
  log "already running ($dir/kubeconfig)"
  [ ! -f "$dir/no-data-plane" ] || log "no data plane: $(cat "$dir/no-data-plane"); traffic tests cannot run"
  exit 0
fi

"$root/hack/cluster-down.sh" >/dev/null 2>&1 || true
mkdir -p "$dir"/{bin,logs,pki,pids,kwok}
mkdir -m 700 "$dir/etcd"

"$root/hack/build-tools.sh"
for tool in \
  "kubernetes-$KUBERNETES_VERSION/kube-apiserver" "kubernetes-$KUBERNETES_VERSION/kube-controller-manager" \
  "kubernetes-$KUBERNETES_VERSION/kube-scheduler" "kubernetes-$KUBERNETES_VERSION/kubectl" \
  "etcd-$ETCD_VERSION/etcd" "kwok-$KWOK_VERSION/kwok" "helm-$HELM_VERSION/helm" \
  "traefik-$TRAEFIK_VERSION/traefik" "kube-state-metrics-$KUBE_STATE_METRICS_VERSION/kube-state-metrics"; do
  ln -sf "$cache/$tool" "$dir/bin/"
done

# --- pod IPs: this cluster's own /16 of the shared range, made local when NET_ADMIN allows.
# shellcheck source=pod-range.sh
source "$root/hack/pod-range.sh"
pod_cidr=$(claim_pod_cidr "$dir") || die "all 16 pod ranges of $POD_RANGE are claimed (see $POD_RANGE_CLAIMS)"
data_plane=1 no_data_plane=""
if [ "${WEIR_DATA_PLANE:-1}" = 0 ]; then
  data_plane=0 no_data_plane="WEIR_DATA_PLANE=0 was set (no gateway, no pod server)"
elif conflict=$(pod_range_conflict) && [ -n "$conflict" ]; then
  data_plane=0 no_data_plane="$POD_RANGE is in use on this machine ($(echo "$conflict" | head -n1))"
elif ! route_error=$(add_pod_route 2>&1); then
  data_plane=0 no_data_plane="cannot make $POD_RANGE local (${route_error:-ip route failed}); run as root with NET_ADMIN (in a container: --cap-add NET_ADMIN)"
fi
# The pod server is built before the cluster starts, so compiling does not compete with it.
if [ "$data_plane" = 1 ]; then
  (cd "$root" && cargo build --locked --quiet --example pod-server)
  cp "${CARGO_TARGET_DIR:-$root/target}/debug/examples/pod-server" "$dir/bin/pod-server"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); etcd_peer_port=$(free_port); api_port=$(free_port); kwok_port=$(free_port)
gateway_port=$(free_port); gateway_metrics_port=$(free_port)
printf 'ETCD_PORT=%s\nAPI_PORT=%s\nKWOK_PORT=%s\n' "$etcd_port" "$api_port" "$kwok_port" > "$dir/ports.env"

# --- certificates: one CA, the API server's serving cert, an admin client in system:masters.
pki=$dir/pki
openssl_quiet() { openssl "$@" >/dev/null 2>&1; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=weir-local-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
cat > "$pki/apiserver.ext" <<EOF
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
printf 'extendedKeyUsage=clientAuth\n' > "$pki/client.ext"
issue_cert() { # name subject extfile
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr"
  openssl_quiet x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$3" -out "$pki/$1.crt"
}
issue_cert apiserver "/CN=kube-apiserver" "$pki/apiserver.ext"
issue_cert admin "/O=system:masters/CN=weir-admin" "$pki/client.ext"
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

server="https://127.0.0.1:$api_port"
cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: weir-local
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: weir-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: weir-local
  context: {cluster: weir-local, user: weir-admin}
current-context: weir-local
EOF

start() { # name args...: runs in the background, output to logs/<name>.log, pid to pids/<name>
  local name=$1; shift
  nohup "$@" > "$dir/logs/$name.log" 2>&1 &
  echo $! > "$dir/pids/$name"
}

wait_until() { # seconds description command...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what did not happen within the deadline; see $dir/logs/"
    for pidfile in "$dir"/pids/*; do
      kill -0 "$(cat "$pidfile")" 2>/dev/null \
        || die "$(basename "$pidfile") exited; the end of $dir/logs/$(basename "$pidfile").log: $(tail -n 3 "$dir/logs/$(basename "$pidfile").log")"
    done
    sleep 0.5
  done
}

# --- etcd. fsync is off: the cluster is disposable and its speed is what the tests measure.
start etcd "$dir/bin/etcd" --name weir --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "weir=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --quota-backend-bytes 8589934592 \
  --log-level warn
wait_until 60 "etcd health" curl -sf "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver with RBAC, service-account tokens and an audit log at Metadata level.
# Aggregated APIs (a test's external metrics adapter) are reached at their endpoints' IPs:
# there is no kube-proxy for Service IPs.
cat > "$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
start kube-apiserver "$dir/bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range 10.0.0.0/16 --endpoint-reconciler-type none \
  --authorization-mode Node,RBAC \
  --allow-privileged=true \
  --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/logs/audit.log" \
  --audit-log-format json --audit-log-mode blocking --audit-log-maxsize 0 \
  --max-requests-inflight 1000 --max-mutating-requests-inflight 500 \
  --enable-aggregator-routing=true
wait_until 120 "kube-apiserver /readyz" kubectl get --raw /readyz

# --- controllers and scheduler talk to the API server as admin; raised QPS for benchmarks.
start kube-controller-manager "$dir/bin/kube-controller-manager" \
  --kubeconfig "$dir/kubeconfig" --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=false --service-cluster-ip-range 10.0.0.0/16 \
  --controllers '*,-node-ipam-controller' \
  --kube-api-qps 500 --kube-api-burst 1000 \
  --concurrent-deployment-syncs 20 --concurrent-replicaset-syncs 20 \
  --concurrent-service-endpoint-syncs 20 --concurrent-gc-syncs 50
cat > "$dir/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: "$dir/kubeconfig", qps: 500, burst: 1000}
leaderElection: {leaderElect: false}
EOF
start kube-scheduler "$dir/bin/kube-scheduler" --config "$dir/scheduler.yaml" \
  --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0

# --- kwok with its fast stages from the module, plus ours for pods told to stay unready (or
# to fail in a named way, hack/kwok/pod-failing.yaml), and ours for deletion: a pod stays
# Terminating until its deletionTimestamp (the end of its grace period) instead of vanishing
# at once, so a grace period means something.
stages=$dir/kwok/stages.yaml
: > "$stages"
for stage in "$cache/kwok-$KWOK_VERSION"/stages/*.yaml; do
  case $(basename "$stage") in kustomization.yaml | pod-delete.yaml) continue ;; esac
  { echo "---"; cat "$stage"; } >> "$stages"
done
# kwok's pod-ready stage must skip pods annotated test.weir.dev/ready=false; our stage takes them.
awk '/^  name: /{ready = ($2 == "pod-ready")}
     {print}
     ready && /matchExpressions:/ {
       print "    - key: \x27.metadata.annotations[\"test.weir.dev/ready\"]\x27"
       print "      operator: NotIn"
       print "      values: [\x27false\x27]"
     }' "$stages" > "$stages.tmp" && mv "$stages.tmp" "$stages"
grep -q 'test.weir.dev/ready' "$stages" || die "could not patch kwok's pod-ready stage"
for stage in pod-running-unready pod-failing pod-delete-at-deadline; do
  { echo "---"; cat "$root/hack/kwok/$stage.yaml"; } >> "$stages"
done
# --cidr is where pod IPs come from (the nodes have no podCIDR: node IPAM is off).
start kwok "$dir/bin/kwok" --kubeconfig "$dir/kubeconfig" --config "$stages" \
  --manage-nodes-with-label-selector type=kwok --cidr "$pod_cidr" --node-ip 10.96.0.1 \
  --server-address "127.0.0.1:$kwok_port" --node-lease-duration-seconds 40

# --- fake nodes across three zones, sized for thousands of pods.
for i in $(seq 0 $(( nodes - 1 ))); do
  zone="zone-$(( i % 3 ))"
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: $zone
    topology.kubernetes.io/region: local
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "5000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "5000"}
EOF
done > "$dir/nodes.yaml"
wait_until 60 "default namespace" kubectl get namespace default
kubectl apply -f "$dir/nodes.yaml" >/dev/null
wait_until 120 "nodes Ready" kubectl wait --for=condition=Ready node --all --timeout=5s
wait_until 120 "default service account" kubectl -n default get serviceaccount default

# --- the Gateway API data plane.
# The standard-channel CRDs Traefik is built against, from the tool cache: always installed,
# so the tests and `make run` find the Gateway API the way a real cluster serves it.
crds=$cache/traefik-$TRAEFIK_VERSION/gateway-api-crds
kubectl apply --server-side --field-manager=weir-cluster-up -f "$crds/" >/dev/null
wait_until 60 "the Gateway API CRDs to be established" \
  kubectl wait --for=condition=Established -f "$crds/" --timeout=5s

# Traefik as the controller of Gateway weir-local, a local process like the others. It talks
# to the API server as ServiceAccount weir-system/traefik with the RBAC its Kubernetes Gateway
# provider documents (hack/gateway/rbac-and-gateway.yaml).
start_gateway() {
  sed -e "s/@GATEWAY_PORT@/$gateway_port/" "$root/hack/gateway/rbac-and-gateway.yaml" \
    | kubectl apply --server-side --field-manager=weir-cluster-up -f - >/dev/null
  mkdir -p -m 700 "$dir/traefik"
  local token
  token=$(kubectl -n weir-system create token traefik --duration 87600h)
  (umask 077 && cat > "$dir/traefik/traefik.yaml") <<EOF
# Written by hack/cluster-up.sh. The Gateway's listener port is the "web" entryPoint's port.
global: {checkNewVersion: false, sendAnonymousUsage: false}
log: {level: INFO, noColor: true}
entryPoints:
  web: {address: "127.0.0.1:$gateway_port"}
  metrics: {address: "127.0.0.1:$gateway_metrics_port"}
ping: {entryPoint: metrics}
metrics:
  prometheus: {entryPoint: metrics, addServicesLabels: true, addRoutersLabels: true}
providers:
  # The default 2 s between configuration reloads would hold a new weight back that long.
  providersThrottleDuration: 100ms
  kubernetesGateway:
    endpoint: "https://127.0.0.1:$api_port"
    token: "$token"
    certAuthFilePath: "$pki/ca.crt"
    statusAddress: {ip: 127.0.0.1}
EOF
  # The data plane runs at a higher priority than the rest: on a small machine, builds and
  # tests would otherwise starve it, and the traffic tests would measure that instead of the
  # release (a real gateway has CPU of its own).
  start traefik nice -n -10 "$dir/bin/traefik" --configFile "$dir/traefik/traefik.yaml"
  wait_until 60 "Traefik to answer /ping" curl -sf "http://127.0.0.1:$gateway_metrics_port/ping"
  wait_until 60 "Gateway weir-local to be Programmed" \
    kubectl -n weir-system wait --for=condition=Programmed gateway/weir-local --timeout=5s
  printf 'GATEWAY_PORT=%s\nGATEWAY_METRICS_PORT=%s\n' "$gateway_port" "$gateway_metrics_port" >> "$dir/ports.env"
}

start_pod_server() {
  start pod-server nice -n -10 env KUBECONFIG="$dir/kubeconfig" "$dir/bin/pod-server" --pod-cidr "$pod_cidr"
  wait_until 60 "the pod server to watch pods" grep -q 'ready: serving' "$dir/logs/pod-server.log"
}

echo "POD_CIDR=$pod_cidr" >> "$dir/ports.env"
# Without NET_ADMIN the Gateway still runs: routes get Traefik's status, but no pod answers.
[ "${WEIR_DATA_PLANE:-1}" = 0 ] || start_gateway
if [ "$data_plane" = 1 ]; then
  start_pod_server
else
  echo "$no_data_plane" > "$dir/no-data-plane"
  log "no data plane: $no_data_plane; traffic tests cannot run"
fi
echo "DATA_PLANE=$data_plane" >> "$dir/ports.env"
touch "$dir/ready"
log "ready: export KUBECONFIG=$dir/kubeconfig"
