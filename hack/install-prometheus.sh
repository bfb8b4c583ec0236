#!/usr/bin/env bash
# Installs Debian's prometheus package when it is missing: canary analysis is tested against a
# real Prometheus server, which the test support starts on loopback per test.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "prometheus is not installed; run: sudo apt-get install prometheus" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null
