#!/usr/bin/env bash
# Installs Debian's lua5.1 package when it is missing: the Argo CD health check in
# docs/gitops/argocd-health.lua is tested with a real Lua 5.1 interpreter, the dialect of the
# Lua VM Argo CD runs health checks in.
set -euo pipefail
if command -v lua5.1 >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "lua5.1 is not installed; run: sudo apt-get install lua5.1" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends lua5.1 >/dev/null
command -v lua5.1 >/dev/null
