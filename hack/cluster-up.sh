#!/usr/bin/env bash
# Starts a real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok, with fake Nodes in three zones whose pods become Running and Ready.
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
  exit 0
fi

"$root/hack/cluster-down.sh" >/dev/null 2>&1 || true
mkdir -p "$dir"/{bin,logs,pki,pids,kwok}
mkdir -m 700 "$dir/etcd"

"$root/hack/build-tools.sh"
for tool in \
  "kubernetes-$KUBERNETES_VERSION/kube-apiserver" "kubernetes-$KUBERNETES_VERSION/kube-controller-manager" \
  "kubernetes-$KUBERNETES_VERSION/kube-scheduler" "kubernetes-$KUBERNETES_VERSION/kubectl" \
  "etcd-$ETCD_VERSION/etcd" "kwok-$KWOK_VERSION/kwok" "helm-$HELM_VERSION/helm"; do
  ln -sf "$cache/$tool" "$dir/bin/"
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); etcd_peer_port=$(free_port); api_port=$(free_port); kwok_port=$(free_port)
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
  --max-requests-inflight 1000 --max-mutating-requests-inflight 500
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

# --- kwok with its fast stages from the module, plus ours for pods told to stay unready.
stages=$dir/kwok/stages.yaml
: > "$stages"
for stage in "$cache/kwok-$KWOK_VERSION"/stages/*.yaml; do
  case $(basename "$stage") in kustomization.yaml) continue ;; esac
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
{ echo "---"; cat "$root/hack/kwok/pod-running-unready.yaml"; } >> "$stages"
start kwok "$dir/bin/kwok" --kubeconfig "$dir/kubeconfig" --config "$stages" \
  --manage-nodes-with-label-selector type=kwok --cidr 10.128.0.0/12 --node-ip 10.96.0.1 \
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
touch "$dir/ready"
log "ready: export KUBECONFIG=$dir/kubeconfig"
