#!/usr/bin/env bash
# Builds the local control-plane tools from the Go module proxy and caches them by version.
#
# Each tool lands in "$WEIR_TOOLS_CACHE/<tool>-<version>/" (default ~/.cache/weir/tools),
# outside the repository, so a fresh clone (CI) reuses what an earlier run built. A tool is
# rebuilt only when its version in hack/versions.env changes or its directory is missing.
# Usage: hack/build-tools.sh [kubernetes|etcd|kwok|helm|traefik|kube-state-metrics|flagger|
# argo-rollouts ...] (default: all but the two peers, which only the peers benchmark needs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${WEIR_TOOLS_CACHE:-$HOME/.cache/weir/tools}
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)

log() { printf '[build-tools] %s\n' "$*" >&2; }

# Runs "$2..." in a scratch module dir; on success moves its bin/ into the cache as "$1".
with_scratch_module() {
  local dest=$1; shift
  if [ -f "$dest/.complete" ]; then log "cached: $dest"; return 0; fi
  local work
  work=$(mktemp -d)
  (cd "$work" && "$@")
  rm -rf "$dest"; mkdir -p "$(dirname "$dest")"
  mv "$work/bin" "$dest"
  touch "$dest/.complete"
  rm -rf "$work"
}

# The k8s.io/kubernetes go.mod points its staging modules at ./staging; a consumer module
# must replace each with the published v0.X.Y. The list is read from the downloaded go.mod.
build_kubernetes_in_cwd() {
  local v=$KUBERNETES_VERSION staging=v0${KUBERNETES_VERSION#v1}
  go mod init weir.dev/tools/kubernetes >/dev/null 2>&1
  local info gomod origin_hash
  info=$(go mod download -json "k8s.io/kubernetes@$v")
  gomod=$(printf '%s' "$info" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  origin_hash=$(printf '%s' "$info" | sed -n 's/.*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n1)
  grep -E '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" \
    | awk -v ver="$staging" '{print "replace " $1 " => " $1 " " ver}' >> go.mod
  log "kubernetes: $(grep -c '^replace' go.mod) staging replaces generated from $gomod"
  go mod edit -require="k8s.io/kubernetes@$v"
  local minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitCommit=${origin_hash:-unknown} -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  cat > tools.go <<EOF
//go:build tools
package tools
import (
$(for c in "${cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done)
)
EOF
  go mod tidy
  mkdir -p bin
  go build -trimpath -ldflags "$ld" -o bin/ $(for c in "${cmds[@]}"; do echo "k8s.io/kubernetes/cmd/$c"; done)
}

# etcd's own main lives in a module with replace directives; the server module exposes
# etcdmain.Main, so a three-line main builds the same server from published modules.
build_etcd_in_cwd() {
  go mod init weir.dev/tools/etcd >/dev/null 2>&1
  cat > main.go <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  mkdir -p bin
  local sha
  sha=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -c 12)
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${sha:-$ETCD_VERSION}" -o bin/etcd .
}

build_kwok_in_cwd() {
  go mod init weir.dev/tools/kwok >/dev/null 2>&1
  go get "sigs.k8s.io/kwok@$KWOK_VERSION"
  cat > tools.go <<'EOF'
//go:build tools
package tools
import _ "sigs.k8s.io/kwok/cmd/kwok"
EOF
  go mod tidy
  mkdir -p bin
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}" \
    -o bin/kwok sigs.k8s.io/kwok/cmd/kwok
  # The stages ship inside the module; keep the fast ones beside the binary.
  local src
  src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  mkdir -p bin/stages
  cp "$src"/kustomize/stage/node/fast/node-*.yaml "$src"/kustomize/stage/pod/fast/pod-*.yaml bin/stages/
  chmod -R u+w bin/stages
}

build_helm_in_cwd() {
  go mod init weir.dev/tools/helm >/dev/null 2>&1
  go get "helm.sh/helm/v3@$HELM_VERSION"
  cat > tools.go <<'EOF'
//go:build tools
package tools
import _ "helm.sh/helm/v3/cmd/helm"
EOF
  go mod tidy
  mkdir -p bin
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    -o bin/helm helm.sh/helm/v3/cmd/helm
}

# kube-state-metrics' module lists no versions on the proxy, so `go install mod@v` (which
# asks for the list) fails: the exact version is required from a consumer module instead.
build_kube_state_metrics_in_cwd() {
  local mod=k8s.io/kube-state-metrics/v2
  go mod init weir.dev/tools/kube-state-metrics >/dev/null 2>&1
  go mod edit -require="$mod@$KUBE_STATE_METRICS_VERSION"
  printf '//go:build tools\npackage tools\nimport _ "%s"\n' "$mod" > tools.go
  go mod tidy
  mkdir -p bin
  go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$KUBE_STATE_METRICS_VERSION" \
    -o bin/kube-state-metrics "$mod"
}

# Traefik's main module carries replace and exclude directives that a consumer module does
# not inherit: they are copied from its go.mod, and a replace to a path inside Traefik's own
# tree (./pkg/...) is pointed at the module cache copy. The Gateway API standard-channel CRDs
# of the version Traefik is built against are kept beside the binary for cluster-up.
build_traefik_in_cwd() {
  local v=$TRAEFIK_VERSION mod=github.com/traefik/traefik/v3
  go mod init weir.dev/tools/traefik >/dev/null 2>&1
  local info gomod dir
  info=$(go mod download -json "$mod@$v")
  gomod=$(printf '%s' "$info" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  dir=$(printf '%s' "$info" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  awk -v dir="$dir" '
    function emit(line,   n, f, i, out) {
      sub(/^[ \t]+/, "", line); sub(/[ \t]*\/\/.*$/, "", line)
      n = split(line, f, /[ \t]+/)
      for (i = 1; i <= n; i++) if (f[i] ~ /^\.\.?\//) { sub(/^\.\//, "", f[i]); f[i] = dir "/" f[i] }
      out = f[1]; for (i = 2; i <= n; i++) out = out " " f[i]
      print kind " " out
    }
    /^(replace|exclude) \($/ { kind = $1; inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock && NF && $1 !~ /^\/\// { emit($0); next }
    /^(replace|exclude) / { kind = $1; sub(/^(replace|exclude) /, ""); emit($0) }
  ' "$gomod" >> go.mod
  log "traefik: $(grep -c '^replace' go.mod) replaces, $(grep -c '^exclude' go.mod) excludes copied from $gomod"
  go mod edit -require="$mod@$v"
  printf '//go:build tools\npackage tools\nimport _ "%s/cmd/traefik"\n' "$mod" > tools.go
  go mod tidy
  mkdir -p bin
  go build -trimpath -ldflags "-s -w -X $mod/pkg/version.Version=$v -X $mod/pkg/version.BuildDate=$build_date" \
    -o bin/traefik "$mod/cmd/traefik"
  local crds
  crds=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p bin/gateway-api-crds
  cp "$crds"/config/crd/standard/*.yaml bin/gateway-api-crds/
  chmod -R u+w bin/gateway-api-crds
}

# Flagger, as its own `go install` builds it; its CRDs are kept beside the binary.
build_flagger_in_cwd() {
  local mod=github.com/fluxcd/flagger
  go mod init weir.dev/tools/flagger >/dev/null 2>&1
  go mod edit -require="$mod@$FLAGGER_VERSION"
  printf '//go:build tools\npackage tools\nimport _ "%s/cmd/flagger"\n' "$mod" > tools.go
  go mod tidy
  mkdir -p bin/crds
  go build -trimpath -ldflags "-s -w -X $mod/pkg/version.VERSION=${FLAGGER_VERSION#v}" -o bin/flagger "$mod/cmd/flagger"
  cp "$(go list -m -f '{{.Dir}}' "$mod")"/artifacts/flagger/crd.yaml bin/crds/
  chmod -R u+w bin/crds
}

# The Argo Rollouts controller. Its go.mod carries replace directives a consumer module does
# not inherit, so they are copied, and it needs a newer Go than the local one (fetched by
# GOTOOLCHAIN from the proxy). Its CRDs are kept beside the binary.
build_argo_rollouts_in_cwd() {
  local mod=github.com/argoproj/argo-rollouts
  export GOTOOLCHAIN=$ARGO_ROLLOUTS_GOTOOLCHAIN
  go mod init weir.dev/tools/argo-rollouts >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "$mod@$ARGO_ROLLOUTS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '
    /^replace \($/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock && NF && $1 !~ /^\/\// { sub(/^[ \t]+/, ""); print "replace " $0; next }
    /^replace / { print }
  ' "$gomod" >> go.mod
  log "argo-rollouts: $(grep -c '^replace' go.mod) replaces copied from $gomod"
  go mod edit -require="$mod@$ARGO_ROLLOUTS_VERSION"
  printf '//go:build tools\npackage tools\nimport _ "%s/cmd/rollouts-controller"\n' "$mod" > tools.go
  go mod tidy
  mkdir -p bin/crds
  go build -trimpath -ldflags "-s -w" -o bin/rollouts-controller "$mod/cmd/rollouts-controller"
  cp "$(go list -m -f '{{.Dir}}' "$mod")"/manifests/crds/*-crd.yaml bin/crds/
  chmod -R u+w bin/crds
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(etcd kwok kubernetes helm traefik kube-state-metrics)
for tool in "${tools[@]}"; do
  start=$(date +%s)
  case $tool in
    kubernetes) with_scratch_module "$cache/kubernetes-$KUBERNETES_VERSION" build_kubernetes_in_cwd ;;
    etcd) with_scratch_module "$cache/etcd-$ETCD_VERSION" build_etcd_in_cwd ;;
    kwok) with_scratch_module "$cache/kwok-$KWOK_VERSION" build_kwok_in_cwd ;;
    helm) with_scratch_module "$cache/helm-$HELM_VERSION" build_helm_in_cwd ;;
    traefik) with_scratch_module "$cache/traefik-$TRAEFIK_VERSION" build_traefik_in_cwd ;;
    kube-state-metrics)
      with_scratch_module "$cache/kube-state-metrics-$KUBE_STATE_METRICS_VERSION" build_kube_state_metrics_in_cwd ;;
    flagger) with_scratch_module "$cache/flagger-$FLAGGER_VERSION" build_flagger_in_cwd ;;
    argo-rollouts)
      with_scratch_module "$cache/argo-rollouts-$ARGO_ROLLOUTS_VERSION" build_argo_rollouts_in_cwd ;;
    *) log "unknown tool: $tool"; exit 2 ;;
  esac
  log "$tool ready in $(( $(date +%s) - start ))s"
done
