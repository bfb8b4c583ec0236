# Pod IPs of the local clusters (sourced by hack/cluster-up.sh and hack/cluster-down.sh).
#
# kwok gives pods IPs from POD_RANGE. For those IPs to answer, the range is made local on this
# machine (`ip route add local POD_RANGE dev lo`, which needs NET_ADMIN), and the pod server
# listens on each pod's IP. Several clusters may run at once on one machine (.cluster/ and
# .cluster-test/ of several worktrees), so each claims its own /16 of the range and gives it
# to kwok: two pod servers never need the same address. The route is shared by all of them:
# the first cluster up adds it and the last one down removes it (only if a cluster added it),
# so stopping one cluster never cuts the traffic of another.
#
# Claims are files in POD_RANGE_CLAIMS named by the /16's index, holding the owning cluster
# directory; a claim whose directory no longer exists is free. Both steps hold a lock.

POD_RANGE=10.128.0.0/12
POD_RANGE_CLAIMS=${WEIR_POD_RANGE_CLAIMS:-/tmp/weir-pod-ranges}

# Prints the /16 claimed for cluster directory $1 (reusing its earlier claim if any).
claim_pod_cidr() {
  local owner=$1 i claim
  mkdir -p "$POD_RANGE_CLAIMS"
  (
    flock 9
    for i in $(seq 0 15); do
      claim=$POD_RANGE_CLAIMS/$i
      if [ -f "$claim" ] && [ "$(cat "$claim")" = "$owner" ]; then echo "10.$((128 + i)).0.0/16"; exit 0; fi
    done
    for i in $(seq 0 15); do
      claim=$POD_RANGE_CLAIMS/$i
      if [ ! -f "$claim" ] || [ ! -d "$(cat "$claim")" ]; then
        printf '%s' "$owner" > "$claim"
        echo "10.$((128 + i)).0.0/16"
        exit 0
      fi
    done
    exit 1
  ) 9> "$POD_RANGE_CLAIMS/.lock"
}

# Names what on this machine already uses addresses of POD_RANGE (an interface or a route),
# which a local route would cut off; prints nothing when the range is free.
pod_range_conflict() {
  { ip -4 -o addr show | awk '{print $4 " (address of " $2 ")"}'
    ip -4 route show table main | awk '$1 != "default" {print $1 " (route via " $0 ")"}'
  } | python3 -c '
import ipaddress, sys
pods = ipaddress.ip_network(sys.argv[1])
for line in sys.stdin:
    net, _, what = line.strip().partition(" ")
    try:
        if ipaddress.ip_network(net, strict=False).overlaps(pods):
            print(net, what)
    except ValueError:
        pass
' "$POD_RANGE"
}

pod_route_present() {
  ip -4 route show table local type local 2>/dev/null | grep -q "^local $POD_RANGE "
}

# Makes POD_RANGE local; fails (with ip's message on stderr) without NET_ADMIN.
add_pod_route() {
  mkdir -p "$POD_RANGE_CLAIMS"
  (
    flock 9
    pod_route_present && exit 0
    ip route add local "$POD_RANGE" dev lo table local || exit 1
    touch "$POD_RANGE_CLAIMS/route-added"
  ) 9> "$POD_RANGE_CLAIMS/.lock"
}

# Frees the claim of cluster directory $1; the last cluster removes the route it added.
release_pod_cidr() {
  local owner=$1 claim
  [ -d "$POD_RANGE_CLAIMS" ] || return 0
  (
    flock 9
    for claim in "$POD_RANGE_CLAIMS"/[0-9]*; do
      [ -f "$claim" ] && [ "$(cat "$claim")" = "$owner" ] && rm -f "$claim"
    done
    for claim in "$POD_RANGE_CLAIMS"/[0-9]*; do
      [ -f "$claim" ] && [ -d "$(cat "$claim")" ] && exit 0
    done
    if [ -f "$POD_RANGE_CLAIMS/route-added" ] && pod_route_present; then
      ip route del local "$POD_RANGE" dev lo table local 2>/dev/null && rm -f "$POD_RANGE_CLAIMS/route-added"
    fi
    exit 0
  ) 9> "$POD_RANGE_CLAIMS/.lock"
}
