#!/usr/bin/env bash
# Watch a release the way its users see it: requests to HOST through the local Gateway, and
# every second the share of each version that answered (the pods of the local cluster answer
# with their image) and the requests that failed.
#   hack/traffic.sh hello.local [requests-per-second]
# The Gateway's port comes from GATEWAY_PORT, else from .cluster/ports.env (`make run`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
host=${1:?usage: hack/traffic.sh HOST [requests-per-second]}
rate=${2:-20}
port=${GATEWAY_PORT:-$(sed -n 's/^GATEWAY_PORT=//p' "$root/.cluster/ports.env" 2>/dev/null || true)}
[ -n "$port" ] || { echo "no GATEWAY_PORT: start the local cluster with 'make run' first" >&2; exit 1; }
[[ $rate =~ ^[1-9][0-9]*$ ]] || { echo "requests-per-second: a positive whole number" >&2; exit 2; }

# One request: the image that answered, or the failure (status or connection error).
one() {
  local out
  out=$(curl -s -m 2 -H "host: $host" -w '\n%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null) || { echo "error"; return; }
  local code=${out##*$'\n'}
  local image
  image=$(grep -o '"image":"[^"]*"' <<<"$out" | cut -d'"' -f4 || true)
  if [ "$code" = 200 ] && [ -n "$image" ]; then echo "$image"; else echo "HTTP $code"; fi
}
export -f one
export host port

echo "requests to $host through http://127.0.0.1:$port, $rate a second (Ctrl-C stops)"
while true; do
  start=$(date +%s.%N)
  mix=$(seq "$rate" | xargs -P "$rate" -I{} bash -c one | sort | uniq -c \
    | awk -v n="$rate" '{c=$1; $1=""; sub(/^ /,""); printf "  %s %d%%", $0, 100*c/n}')
  printf '%s%s\n' "$(date +%T)" "$mix"
  sleep "$(awk -v s="$start" -v now="$(date +%s.%N)" 'BEGIN{d=1-(now-s); print (d>0?d:0)}')"
done
