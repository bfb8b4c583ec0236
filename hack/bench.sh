#!/usr/bin/env bash
# `make bench`: how close Weir gets to the floor of this cluster, what it costs, and how fast
# and lean its releases are. docs/development.md ("Benchmarks") explains every figure.
#
# On a private control plane (.cluster-bench/, removed on exit), each selected part runs
# against its own, freshly started operator (target/release/weir), so memory and requests are
# that part's alone:
#   core     N Deployments + Services applied directly (the floor) against N Microservices,
#            BENCH_RUNS times; API writes per Microservice; an idle window that should write
#            nothing; operator RSS.
#   release  a 10-step canary through Gateway API (setWeight 20..100, each followed by a 1 s
#            pause): overhead per step beyond the pauses.
#   abort    background analysis (a webhook, every 1 s) starts failing: time from the first
#            failing answer to the route verified back at weight 0 for the candidate.
#   scale    N Microservices, RELEASING of them release at once: time, operator requests per
#            release from the audit log, peak and settled RSS.
#   soak     SOAK_N Microservices release in a loop for SOAK_MINUTES; RSS every 10 s; fails
#            when memory keeps growing.
# The release parts run against the upstream Gateway API CRDs that cluster-up installs, and a
# fake gateway that accepts every route at once (hack/bench/gateway.py). The cluster starts
# without Traefik and the pod server (WEIR_DATA_PLANE=0 unless set), so the figures keep the
# conditions they were measured in. Each part writes target/bench/<part>.json and prints a table; its
# raw records and the operator's log are in target/bench/<part>/.
#
# Settings (environment): BENCH (core,release,abort,scale; soak is added when SOAK_MINUTES is
# set), N (100), BENCH_RUNS (3), BENCH_REPLICAS (1), BENCH_IDLE_SECONDS (60), RELEASING (50),
# BENCH_SETTLE_SECONDS (30), SOAK_MINUTES (30), SOAK_N (100), BENCH_BUILD (1; 0 uses
# target/release/weir as it is).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and printf must use a decimal point

root=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-100}
runs=${BENCH_RUNS:-3}
replicas=${BENCH_REPLICAS:-1}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
releasing=${RELEASING:-50}
settle_seconds=${BENCH_SETTLE_SECONDS:-30}
build=${BENCH_BUILD:-1}
soak_minutes=${SOAK_MINUTES:-30}
soak_n=${SOAK_N:-100}
if [ -n "${BENCH:-}" ]; then
  selected=$BENCH
elif [ -n "${SOAK_MINUTES:-}" ]; then
  selected=core,release,abort,scale,soak
else
  selected=core,release,abort,scale
fi
out=$root/target/bench
export WEIR_CLUSTER_DIR=$root/.cluster-bench
dir=$WEIR_CLUSTER_DIR
# Every wait gets the same deadline: generous, and growing with N so N=1000 fits.
deadline=$(( n > 300 ? n : 300 ))

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for setting in "N=$n" "BENCH_RUNS=$runs" "BENCH_REPLICAS=$replicas" "BENCH_IDLE_SECONDS=$idle_seconds" \
  "RELEASING=$releasing" "BENCH_SETTLE_SECONDS=$settle_seconds" "SOAK_MINUTES=$soak_minutes" "SOAK_N=$soak_n"; do
  [[ ${setting#*=} =~ ^[1-9][0-9]*$ ]] || die "$setting: expected a positive whole number"
done
# Parts run in this order whatever the order in BENCH: core before the HTTPRoute CRD exists.
all_parts=(core release abort scale soak)
for part in ${selected//,/ }; do
  [[ " ${all_parts[*]} " == *" $part "* ]] || die "BENCH=$selected: unknown part '$part' (parts: ${all_parts[*]})"
done
parts=()
for part in "${all_parts[@]}"; do
  if [[ ",$selected," == *",$part,"* ]]; then parts+=("$part"); fi
done
[ "${#parts[@]}" -gt 0 ] || die "BENCH is empty"
[[ $build =~ ^[01]$ ]] || die "BENCH_BUILD=$build: expected 1 (build the operator) or 0 (use target/release/weir as it is)"
selected_part() { [[ " ${parts[*]} " == *" $1 "* ]]; }
if selected_part scale && (( releasing > n )); then
  die "RELEASING=$releasing: cannot release more Microservices than N=$n"
fi

weir_pid='' sampler_pid='' gateway_pid=''

stop_operator() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
  sampler_pid=''
  if [ -n "$weir_pid" ] && kill -0 "$weir_pid" 2>/dev/null; then
    kill -TERM "$weir_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$weir_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$weir_pid" 2>/dev/null || true
  fi
  if [ -n "$weir_pid" ]; then wait "$weir_pid" 2>/dev/null || true; fi
  weir_pid=''
  rm -f "$dir/pids/weir"
}

# Stops what this script started and removes the cluster, on any exit: success, failure or
# Ctrl-C. The operator's logs are already under target/bench/<part>/.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_operator
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null || true; fi
  "$root/hack/cluster-down.sh" || true
  [ "$status" -eq 0 ] || log "failed (exit $status); the operators' logs are in $out/<part>/weir.log"
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
      die "the operator exited while waiting for $what; end of its log: $(tail -n 5 "$part_dir/weir.log")"
    fi
    sleep 0.5
  done
}

# A fresh operator for a part: its log goes to target/bench/<part>/weir.log and its RSS is
# sampled into target/bench/<part>/rss.tsv. Restarting per part keeps each part's memory and
# requests its own; the old operator releases its Lease on SIGTERM, so the new one leads at once.
start_operator() { # extra flags...
  local port
  port=$(free_port)
  "$root/target/release/weir" run --metrics-addr "127.0.0.1:$port" "$@" > "$part_dir/weir.log" 2>&1 &
  weir_pid=$!
  echo "$weir_pid" > "$dir/pids/weir" # hack/cluster-down.sh stops it too, should this script be killed
  sample_rss "$weir_pid" "$part_dir/rss.tsv" &
  sampler_pid=$!
  wait_until 120 "the operator's /readyz to answer 200" curl -sf "http://127.0.0.1:$port/readyz"
  log "operator ready (pid $weir_pid, metrics on 127.0.0.1:$port)"
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

# Ends a part: its operator stops (its log and RSS samples are complete), and its namespaces
# are deleted unless it is the last part (the cluster goes then anyway).
end_part() { # namespaces...
  stop_operator
  if [ "$part" != "${parts[-1]}" ] && [ "$#" -gt 0 ]; then delete_namespaces "$@"; fi
}

# --- core ---------------------------------------------------------------------------------

# One timed phase: fresh namespace, apply, wait; appends measure.py's JSON to the events.
phase() { # floor|weir run
  local kind=$1 run=$2 ns="bench-$1-$2"
  fresh_namespace "$ns"
  python3 "$root/hack/bench/measure.py" "$kind" --namespace "$ns" --file "$part_dir/$kind.yaml" \
    --n "$n" --replicas "$replicas" --deadline "$deadline" --operator-pid "$weir_pid" --run "$run" --pids-dir "$dir/pids" \
    >> "$part_dir/events.jsonl"
}

part_core() {
  start_operator
  python3 "$root/hack/bench/gen.py" floor "$n" "$replicas" > "$part_dir/floor.yaml"
  python3 "$root/hack/bench/gen.py" weir "$n" "$replicas" > "$part_dir/weir.yaml"
  local run order kind
  for run in $(seq 1 "$runs"); do
    # Alternate which side goes first, so warm-up (the API server's caches, the operator's
    # informers filling, lazy allocations) does not always favour the same one.
    if (( run % 2 == 1 )); then order="floor weir"; else order="weir floor"; fi
    log "core run $run/$runs ($order), N=$n, replicas=$replicas"
    for kind in $order; do phase "$kind" "$run"; done
    # The operator's writes for this run are counted up to here, settling writes included.
    printf '{"kind": "run-end", "run": %s, "time": %s}\n' "$run" "$EPOCHREALTIME" >> "$part_dir/events.jsonl"
    if (( run < runs )); then
      delete_namespaces "bench-floor-$run" "bench-weir-$run"
    else
      delete_namespaces "bench-floor-$run" # the last Microservices stay for the idle window
    fi
  done

  # Idle: N Ready Microservices and nothing changing; a level-triggered operator that has
  # converged should not write. Its RSS at the end is the "settled" figure.
  log "idle window: ${idle_seconds}s with $n Ready Microservices"
  local idle_start idle_end settled hwm
  idle_start=$EPOCHREALTIME
  sleep "$idle_seconds"
  idle_end=$EPOCHREALTIME
  settled=$(proc_kib "$weir_pid" VmRSS)
  hwm=$(proc_kib "$weir_pid" VmHWM) # the kernel's own peak, a check on the sampled one
  [ -n "$settled" ] || die "the operator exited during the idle window; see $part_dir/weir.log"
  printf '{"kind": "idle", "start": %s, "end": %s, "settled_rss_kib": %s, "hwm_rss_kib": %s}\n' \
    "$idle_start" "$idle_end" "$settled" "$hwm" >> "$part_dir/events.jsonl"

  python3 "$root/hack/bench/report.py" --events "$part_dir/events.jsonl" --audit "$dir/logs/audit.log" \
    --rss "$part_dir/rss.tsv" --out "$out/core.json" \
    --n "$n" --replicas "$replicas" --runs "$runs" --idle-seconds "$idle_seconds"
  end_part "bench-weir-$runs"
}

# --- release parts ------------------------------------------------------------------------

# Starts the fake gateway, once, before the first release part (core creates no routes; the
# CRDs are there for it too, as cluster-up installs them).
gateway_up() {
  [ -z "$gateway_pid" ] || return 0
  wait_until 60 "the HTTPRoute CRD to be established" \
    kubectl wait --for=condition=Established crd/httproutes.gateway.networking.k8s.io --timeout=5s
  rm -f "$out/gateway.jsonl"
  python3 "$root/hack/bench/gateway.py" --log "$out/gateway.jsonl" 2> "$out/gateway.log" &
  gateway_pid=$!
  wait_until 60 "the fake gateway to watch HTTPRoutes" grep -q '"kind": "ready"' "$out/gateway.jsonl"
}

release_driver() { # part args...
  local part=$1
  shift
  python3 "$root/hack/bench/release.py" "$part" --out "$out/$part.json" --raw "$part_dir" \
    --operator-pid "$weir_pid" --gateway-log "$out/gateway.jsonl" --deadline "$deadline" \
    --replicas "$replicas" "$@"
}

part_release() {
  gateway_up
  fresh_namespace bench-release
  start_operator
  release_driver release --namespace bench-release --runs "$runs"
  end_part bench-release
}

part_abort() {
  gateway_up
  fresh_namespace bench-abort
  # The webhook listens on loopback, which analysis may only reach when allowed.
  start_operator --analysis-allowed-hosts 127.0.0.1
  release_driver abort --namespace bench-abort --runs "$runs"
  end_part bench-abort
}

part_scale() {
  gateway_up
  fresh_namespace bench-scale
  start_operator
  release_driver scale --namespace bench-scale --runs "$runs" --n "$n" --releasing "$releasing" \
    --settle-seconds "$settle_seconds" --audit "$dir/logs/audit.log" --rss "$part_dir/rss.tsv"
  end_part bench-scale
}

# The soak's verdict (a non-zero exit of its driver) does not stop the script at once: the
# summary is still printed, then bench.sh fails.
part_soak() {
  gateway_up
  fresh_namespace bench-soak
  start_operator
  # Its waits grow with SOAK_N as the others' grow with N (release_driver passes both; the last wins).
  release_driver soak --namespace bench-soak --n "$soak_n" --minutes "$soak_minutes" \
    --deadline "$(( soak_n > 300 ? soak_n : 300 ))" || soak_status=$?
  end_part bench-soak
}

# --- main ---------------------------------------------------------------------------------

mkdir -p "$out"
rm -f "$out"/{events.jsonl,rss.tsv,weir.log,floor.yaml,weir.yaml} # the layout before parts
for part in "${parts[@]}"; do rm -rf "${out:?}/$part" "$out/$part.json"; mkdir -p "$out/$part"; done

# Built before the cluster starts, so compiling does not compete with it for the 2 cores.
if [ "$build" = 1 ]; then
  log "building the operator (release); parts: ${parts[*]}"
  (cd "$root" && cargo build --release --locked --bin weir)
else
  [ -x "$root/target/release/weir" ] || die "BENCH_BUILD=0 but there is no target/release/weir"
  log "using target/release/weir as it is (BENCH_BUILD=0); parts: ${parts[*]}"
fi

# A fresh cluster every time: a left-over one would carry objects and an old audit log.
"$root/hack/cluster-down.sh" >/dev/null 2>&1 || true
WEIR_DATA_PLANE=${WEIR_DATA_PLANE:-0} "$root/hack/cluster-up.sh"
export KUBECONFIG=$dir/kubeconfig
export PATH=$dir/bin:$PATH
kubectl apply --server-side --field-manager=weir-install -f "$root/crds/" >/dev/null
wait_until 60 "the Microservice CRD to be established" \
  kubectl wait --for=condition=Established crd/microservices.weir.dev --timeout=5s

soak_status=0
for part in "${parts[@]}"; do
  part_dir=$out/$part
  log "=== $part ==="
  "part_$part"
  [ -f "$out/$part.json" ] || die "$part wrote no $out/$part.json"
  log "wrote $out/$part.json"
done

python3 "$root/hack/bench/summary.py" --dir "$out" "${parts[@]}"
[ "$soak_status" -eq 0 ] || die "soak: the operator's memory kept growing, or no release finished (see $out/soak.json)"
