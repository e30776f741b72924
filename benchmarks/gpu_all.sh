#!/usr/bin/env bash
# Every speed benchmark of the repo on one device, in one short call; a markdown report.
#
# Usage: bash benchmarks/gpu_all.sh [--device cuda|cpu] [--out FILE] [--budget SECONDS]
#   (defaults: cuda, gpu_all_<device>.md in the current directory, 295 s in all)
# Each benchmark runs with reduced repeats under its own `timeout`, so the whole run stays under
# five minutes; the report starts with a table (benchmark, command, exit status, wall seconds)
# followed by each benchmark's own output. A benchmark that fails (for example one that does not
# take --device yet, or PCX not installed) is listed with its exit status and error, and the
# others still run. Exit status: 0 if every benchmark succeeded, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
OUT=""
BUDGET=295
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-gpu_all_${DEVICE}.md}"
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MPLBACKEND=Agg

# name | per-benchmark timeout (s) | command (the device flag is added for every one)
BENCHES=(
  "core_speed|90|benchmarks/core_speed.py --threads 1 --rounds 3 --repeats 6"
  "pcx_compare|100|benchmarks/pcx_compare.py --rounds 3 --repeats 6"
  "filter_bench|80|benchmarks/filter_bench.py --quick --threads 1"
  "runtime_latency|40|benchmarks/runtime_latency.py --steps 2000 --threads 1 --skip-aoti"
  "planner_latency|30|benchmarks/planner_latency.py --repeats 10"
  "agent_planning_latency|70|benchmarks/agent_planning_latency.py --env Pendulum-v1 InvertedPendulum-v5 --steps 60 --threads 1"
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start_all=$(date +%s)
failed=0
{
  echo "# pcctrl speed benchmarks on \`$DEVICE\`"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $("$PY" -c 'import torch; print("torch", torch.__version__, "| cuda", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1)"
  echo
} > "$tmp/head.md"
echo "| benchmark | command | exit | wall s |" > "$tmp/table.md"
echo "|---|---|---|---|" >> "$tmp/table.md"
: > "$tmp/body.md"
for entry in "${BENCHES[@]}"; do
  IFS="|" read -r name limit cmd <<< "$entry"
  left=$(( BUDGET - ($(date +%s) - start_all) ))
  full="$PY $cmd --device $DEVICE"
  if [ "$left" -le 5 ]; then
    echo "| $name | \`$full\` | skipped (budget spent) | 0 |" >> "$tmp/table.md"
    failed=1
    continue
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo ">> $name ($full, at most ${limit}s)" >&2
  begin=$(date +%s.%N)
  # shellcheck disable=SC2086
  timeout "$limit" $PY $cmd --device "$DEVICE" > "$tmp/$name.out" 2>&1
  status=$?
  wall=$(awk -v a="$begin" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  label="$status"
  [ "$status" -eq 124 ] && label="124 (timeout ${limit}s)"
  [ "$status" -ne 0 ] && failed=1
  echo "| $name | \`$full\` | $label | $wall |" >> "$tmp/table.md"
  {
    echo "## $name"
    echo
    echo "\`$full\` — exit $label, ${wall} s"
    echo
    echo '```'
    grep -v "^WARNING: Location" "$tmp/$name.out" | tail -n 80
    echo '```'
    echo
  } >> "$tmp/body.md"
done
total=$(( $(date +%s) - start_all ))
{
  cat "$tmp/head.md" "$tmp/table.md"
  echo
  echo "Total wall time: ${total} s."
  echo
  cat "$tmp/body.md"
} > "$OUT"
echo "wrote $OUT (${total} s)" >&2
exit "$failed"
