#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer for FUZZ_SECONDS each (default 60), then stops.
# Needs the nightly toolchain (cargo-fuzz's sanitizers need it); cargo-fuzz itself is
# installed from crates.io when missing. Findings land in fuzz/artifacts/<target>/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is missing: rustup toolchain install nightly" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cd "$root/fuzz"
targets=$(cargo +nightly fuzz list)
mkdir -p target
for target in $targets; do
  echo "fuzz: $target for ${seconds}s"
  mkdir -p "corpus/$target"
  log=target/$target.log
  if ! cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $target failed; inputs that crash it are in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | sed "s/^/  /"
done
echo "fuzz: no crash in ${seconds}s per target ($(echo $targets | wc -w) targets)"
