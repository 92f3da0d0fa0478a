#!/usr/bin/env bash
# Main entry: train the joint QC+QI model. With no arguments: the embedded sample, Gemma-3 270M, CPU, ~10 minutes.
#
#   bash scripts/train_mtl.sh                                   # defaults (configs/mtl.yaml)
#   bash scripts/train_mtl.sh --mode single --task qc           # any `mtl train` flags and key=value overrides
#   bash scripts/train_mtl.sh --config configs/gemma3_12b.yaml model.backbone=/models/gemma-3-12b-it
#
# With more than one visible GPU it launches one process per GPU through torchrun (DDP, or DeepSpeed when
# train.deepspeed is set); NPROC overrides the count. Runs land in runs/ (tensorboard --logdir runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenMP threads that spin while waiting stall a step many times over when another process wants the cores; a
# passive wait costs a little when the machine is idle (benchmarks/results/omp-wait-cpu.md). It must be set before
# torch loads, hence here; a policy the caller set wins.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# configs/mtl.yaml first: a --config given later on the line wins (argparse keeps the last); --resume takes none.
args=("$@")
if [[ ! " ${args[*]-} " =~ " --resume" ]]; then
  args=(--config configs/mtl.yaml "$@")
fi

gpus=${NPROC:-$(python -c "import torch; print(torch.cuda.device_count())")}
if (( gpus > 1 )); then
  exec torchrun --standalone --nproc_per_node "$gpus" -m mtl train "${args[@]}"
fi
exec python -m mtl train "${args[@]}"
