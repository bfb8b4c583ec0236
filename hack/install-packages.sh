#!/usr/bin/env bash
# Installs Debian packages when a command they provide is missing:
#   hack/install-packages.sh "COMMAND..." PACKAGE...
# Does nothing when every COMMAND is on PATH; as root, installs the PACKAGEs with apt-get;
# otherwise prints the command to run and fails.
set -euo pipefail
commands=$1
shift
missing=0
for command in $commands; do
  command -v "$command" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "$commands: not installed; run: sudo apt-get install $*" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
for command in $commands; do
  command -v "$command" >/dev/null
done
