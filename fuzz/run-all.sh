#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints one line per target: executions, seconds,
# corpus size. A crash does not stop the other targets; its input is saved under fuzz/artifacts/<target>/ and the
# script exits 1 at the end. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept the nightly-only sanitizer flags libFuzzer needs.
#
#   fuzz/run-all.sh          # 60 s per target
#   fuzz/run-all.sh 10       # CI
#   fuzz/run-all.sh 600 -s none   # extra cargo-fuzz flags after SECONDS (here: no AddressSanitizer, faster)
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

cargo fuzz build "$@"
mkdir -p logs
failed=()
summary=()
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  # Hand-written seeds are read, never written: new finds go to corpus/<target>.
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  opts=(-max_total_time="$secs" -timeout=10 -print_final_stats=1)
  [ -f "dicts/$t.dict" ] && opts+=(-dict="dicts/$t.dict")
  echo "== fuzz $t (${secs} s)"
  if cargo fuzz run "$@" "$t" "${dirs[@]}" -- "${opts[@]}" >"logs/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "logs/$t.log" | head -20 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "logs/$t.log" | tail -1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  summary+=("$(printf '%-18s %-6s execs=%-10s secs=%-5s corpus=%s' "$t" "$status" "${execs:-?}" "${took:-$secs}" "$corpus")")
done
echo "== summary (logs in fuzz/logs/)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
