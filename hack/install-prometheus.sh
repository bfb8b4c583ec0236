#!/usr/bin/env bash
# Installs Debian's prometheus package when it is missing: canary analysis is tested against a
# real Prometheus server, which the test support starts on loopback per test.
exec "$(dirname "$0")/install-packages.sh" prometheus prometheus
