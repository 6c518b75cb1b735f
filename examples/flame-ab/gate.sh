#!/usr/bin/env bash
# Flame-graph A/B gate, ready to paste into a CI job.
#
#   examples/flame-ab/gate.sh [OUTDIR]
#
# Records a baseline and a candidate CPU profile of the same workload with
# gmp's sampler and fails (exit 1) when any frame's self share grew by more
# than FAIL_ABOVE percentage points.  In a real pipeline the baseline comes
# from the main branch and the candidate from the change; here the candidate
# is the same code, with GMP_FLAME_AB_INJECT=1 adding a hot spot when INJECT=1.
# Line numbers are ignored so that unrelated edits do not move frames.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-flame-ab-out}"
mkdir -p "$out"
rate="${RATE:-500}"
export GMP_FLAME_AB_SECONDS="${SECONDS_PER_RUN:-6}"

GMP_FLAME_AB_INJECT=0 gmp profile --rate "$rate" -o "$out/base.txt" -- "$here/workload.py"
GMP_FLAME_AB_INJECT="${INJECT:-0}" gmp profile --rate "$rate" -o "$out/cand.txt" -- "$here/workload.py"
gmp flame diff "$out/base.txt" "$out/cand.txt" --ignore-lines \
    --fail-above "${FAIL_ABOVE:-2}" --min-samples 2000 --svg "$out/diff.svg"
