#!/usr/bin/env bash
# `make bench`: how close Weir gets to the floor of this cluster, and what it costs.
#
# On a private control plane (.cluster-bench/), each run applies N Deployments + N Services
# directly (the floor: no operator can be faster than the cluster itself) and N Microservices
# that the operator turns into the same, and times each until everything is ready. Meanwhile
# the operator's RSS is sampled, and its API writes are counted from the audit log. After the
# last run the operator sits on N Ready Microservices for an idle window, whose writes should
# be none. Results: a table on stdout and target/bench/core.json.
#
# Settings (environment): N (100), BENCH_RUNS (3), BENCH_REPLICAS (1), BENCH_IDLE_SECONDS (60).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and printf must use a decimal point

root=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-100}
runs=${BENCH_RUNS:-3}
replicas=${BENCH_REPLICAS:-1}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
out=$root/target/bench
export WEIR_CLUSTER_DIR=$root/.cluster-bench
dir=$WEIR_CLUSTER_DIR
# Every wait gets the same deadline: generous, and growing with N so N=1000 fits.
deadline=$(( n > 300 ? n : 300 ))

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for setting in "N=$n" "BENCH_RUNS=$runs" "BENCH_REPLICAS=$replicas" "BENCH_IDLE_SECONDS=$idle_seconds"; do
  [[ ${setting#*=} =~ ^[1-9][0-9]*$ ]] || die "$setting: expected a positive whole number"
done

weir_pid='' sampler_pid=''

# Stops what this script started, keeps the operator's log, and removes the cluster, on any
# exit: success, failure or Ctrl-C.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
  if [ -n "$weir_pid" ] && kill -0 "$weir_pid" 2>/dev/null; then
    kill -TERM "$weir_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$weir_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$weir_pid" 2>/dev/null || true
  fi
  if [ -f "$dir/logs/weir.log" ]; then cp "$dir/logs/weir.log" "$out/weir.log"; fi
  "$root/hack/cluster-down.sh" || true
  [ "$status" -eq 0 ] || log "failed (exit $status); the operator's log is in $out/weir.log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kubectl() { "$dir/bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Reads a field (KiB) of /proc/<pid>/status, e.g. VmRSS; prints nothing once the process is
# gone. awk reads the file front to back in one go: bash's `read` seeks back after each line,
# and /proc renders the file anew on each read, so a number that changed length in between
# misaligns the lines and the field goes missing.
proc_kib() { # pid field
  awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# Appends "<epoch> <VmRSS KiB>" every 0.2 s while the process lives: the peak of a short
# burst is what this is for, so it must sample faster than a reconcile wave lasts. A missed
# sample is skipped, never the end of sampling.
sample_rss() { # pid file
  set +e
  local rss
  while [ -e "/proc/$1" ]; do
    rss=$(proc_kib "$1" VmRSS)
    if [ -n "$rss" ]; then printf '%s %s\n' "$EPOCHREALTIME" "$rss" >> "$2"; fi
    sleep 0.2
  done
}

# Polls a command until it succeeds; dies with the message when the deadline passes.
wait_until() { # seconds description command...
  local seconds=$1 what=$2 end=$(( SECONDS + $1 ))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "$what did not happen within ${seconds}s"
    if [ -n "$weir_pid" ] && ! kill -0 "$weir_pid" 2>/dev/null; then
      die "the operator exited while waiting for $what; end of its log: $(tail -n 5 "$dir/logs/weir.log")"
    fi
    sleep 0.5
  done
}

# A namespace ready for pods: its default ServiceAccount must exist first, or the ReplicaSet
# controller's pod creations fail and back off, which would be timed as if it were work.
fresh_namespace() { # name
  kubectl create namespace "$1" >/dev/null
  wait_until 60 "ServiceAccount default in $1" kubectl -n "$1" get serviceaccount default
}

# Waits until namespaces are gone, so one run's garbage collection does not slow the next.
delete_namespaces() { # names...
  kubectl delete namespace "$@" --wait=false >/dev/null
  local ns
  for ns in "$@"; do
    kubectl wait --for=delete "namespace/$ns" --timeout="${deadline}s" >/dev/null 2>&1 \
      || die "namespace $ns is still terminating after ${deadline}s: $(kubectl get namespace "$ns" -o jsonpath='{.status.conditions}' 2>&1)"
  done
}

# One timed phase: fresh namespace, apply, wait; appends measure.py's JSON to the events.
phase() { # floor|weir run
  local kind=$1 run=$2 ns="bench-$1-$2"
  fresh_namespace "$ns"
  python3 "$root/hack/bench/measure.py" "$kind" --namespace "$ns" --file "$out/$kind.yaml" \
    --n "$n" --replicas "$replicas" --deadline "$deadline" --operator-pid "$weir_pid" --run "$run" --pids-dir "$dir/pids" \
    >> "$out/events.jsonl"
}

mkdir -p "$out"
rm -f "$out"/{events.jsonl,rss.tsv,core.json,weir.log}

# Built before the cluster starts, so compiling does not compete with it for the 2 cores.
log "building the operator (release)"
(cd "$root" && cargo build --release --locked --bin weir)

# A fresh cluster every time: a left-over one would carry objects and an old audit log.
"$root/hack/cluster-down.sh" >/dev/null 2>&1 || true
"$root/hack/cluster-up.sh"
export KUBECONFIG=$dir/kubeconfig
export PATH=$dir/bin:$PATH
kubectl apply --server-side --field-manager=weir-install -f "$root/crds/" >/dev/null
wait_until 60 "the Microservice CRD to be established" \
  kubectl wait --for=condition=Established crd/microservices.weir.dev --timeout=5s

port=$(free_port)
"$root/target/release/weir" run --metrics-addr "127.0.0.1:$port" > "$dir/logs/weir.log" 2>&1 &
weir_pid=$!
echo "$weir_pid" > "$dir/pids/weir" # hack/cluster-down.sh stops it too, should this script be killed
sample_rss "$weir_pid" "$out/rss.tsv" &
sampler_pid=$!
wait_until 120 "the operator's /readyz to answer 200" curl -sf "http://127.0.0.1:$port/readyz"
log "operator ready (pid $weir_pid, metrics on 127.0.0.1:$port)"

python3 "$root/hack/bench/gen.py" floor "$n" "$replicas" > "$out/floor.yaml"
python3 "$root/hack/bench/gen.py" weir "$n" "$replicas" > "$out/weir.yaml"

for run in $(seq 1 "$runs"); do
  # Alternate which side goes first, so warm-up (the API server's caches, the operator's
  # informers filling, lazy allocations) does not always favour the same one.
  if (( run % 2 == 1 )); then order="floor weir"; else order="weir floor"; fi
  log "run $run/$runs ($order), N=$n, replicas=$replicas"
  for kind in $order; do phase "$kind" "$run"; done
  # The operator's writes for this run are counted up to here, settling writes included.
  printf '{"kind": "run-end", "run": %s, "time": %s}\n' "$run" "$EPOCHREALTIME" >> "$out/events.jsonl"
  if (( run < runs )); then
    delete_namespaces "bench-floor-$run" "bench-weir-$run"
  else
    delete_namespaces "bench-floor-$run" # the last Microservices stay for the idle window
  fi
done

# Idle: N Ready Microservices and nothing changing; a level-triggered operator that has
# converged should not write. Its RSS at the end is the "settled" figure.
log "idle window: ${idle_seconds}s with $n Ready Microservices"
idle_start=$EPOCHREALTIME
sleep "$idle_seconds"
idle_end=$EPOCHREALTIME
settled=$(proc_kib "$weir_pid" VmRSS)
hwm=$(proc_kib "$weir_pid" VmHWM) # the kernel's own peak, a check on the sampled one
[ -n "$settled" ] || die "the operator exited during the idle window; see $out/weir.log"
printf '{"kind": "idle", "start": %s, "end": %s, "settled_rss_kib": %s, "hwm_rss_kib": %s}\n' \
  "$idle_start" "$idle_end" "$settled" "$hwm" >> "$out/events.jsonl"
# The last run's Microservices go with the cluster, which cleanup removes.

python3 "$root/hack/bench/report.py" --events "$out/events.jsonl" --audit "$dir/logs/audit.log" \
  --rss "$out/rss.tsv" --out "$out/core.json" \
  --n "$n" --replicas "$replicas" --runs "$runs" --idle-seconds "$idle_seconds"
log "wrote $out/core.json"
