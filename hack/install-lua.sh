#!/usr/bin/env bash
# Installs Debian's lua5.1 package when it is missing: the Argo CD health check in
# docs/gitops/argocd-health.lua is tested with a real Lua 5.1 interpreter, the dialect of the
# Lua VM Argo CD runs health checks in.
exec "$(dirname "$0")/install-packages.sh" lua5.1 lua5.1
