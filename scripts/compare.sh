#!/usr/bin/env bash
# Single vs joint vs TAPT side by side, then the comparison report. Defaults: the embedded sample, Gemma-3 270M, CPU.
#
#   bash scripts/compare.sh                                   # main grid into runs/compare, report.md there too
#   bash scripts/compare.sh --grid all data.dev_limit=300     # + the ablations; key=value overrides reach every run
#   bash scripts/compare.sh --root runs/cmp --out benchmarks/compare train.max_steps=96 model.backbone=/models/x
#
# train.max_steps is the budget: the joint run's steps; per-task runs get half (mtl/experiments.py says why).
# Other flags (--grid, --only, --config, --fold, --seeds, --lock, --dry-run) go to `mtl compare`. Running the same
# command again continues an interrupted grid (complete runs are skipped) and rewrites the report.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # as scripts/train_mtl.sh: see benchmarks/results/omp-wait-cpu.md

invoked="bash scripts/compare.sh $*"
root=runs/compare
out=()
args=()
while (( $# )); do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --out) out=(--out "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

python -m mtl compare --root "$root" --invoked-as "$invoked" "${args[@]}"
status=$?
if (( status == 2 || status == 130 )) || [[ " ${args[*]-} " == *" --dry-run "* ]]; then
  exit "$status"  # refused before running, interrupted, or only a plan: nothing new to report
fi
python -m mtl report "$root" "${out[@]}" || exit $?
exit "$status"
