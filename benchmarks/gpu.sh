#!/usr/bin/env bash
# One-shot GPU benchmark (issue #19): training and serving throughput of random-weight Gemma-3 1B and 12B stacks per
# batching, on the device tool's H200 within 5 minutes, each result written to $OUT as soon as it is measured, so a
# retry fits in a session's 15 minutes of device time. What it measures: benchmarks/gpu_bench.py's docstring.
#
#   bash benchmarks/gpu.sh --fetch-wheels   # here, once (needs PyPI): the pinned pure-Python wheels into wheels/
#   bash benchmarks/gpu.sh                  # on the GPU machine, with wheels/ carried; results in $OUT
#   bash benchmarks/gpu.sh --dry-run        # same code, tiny model, a few steps (a CPU here), a temporary folder
#
# Other arguments go to `python benchmarks/gpu_bench.py run` (--batchings, --shapes, --steps, key=value overrides).
# GPU_BENCH_BUDGET (seconds, default 300) bounds the whole script, the wheels' install included.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
budget=${GPU_BENCH_BUDGET:-300}
python=${PYTHON:-python3}

if [ "${1:-}" = "--fetch-wheels" ]; then
    # transformers and peft at setup.cfg's pins, for the device's Python 3.12; the device's own accelerate,
    # huggingface-hub, tokenizers and safetensors satisfy transformers' requirements. regex is there too, but
    # transformers checks regex>=2025.10.22 when imported and the device's version is not on record, so it travels.
    pin() { sed -n "s/^ *$1==\([^ #]*\).*/\1/p" setup.cfg; }
    rm -rf wheels && mkdir wheels
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d wheels "transformers==$(pin transformers)" "peft==$(pin peft)" "regex==2026.5.9"
    du -sh wheels && ls wheels
    exit 0
fi

dry_run=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry_run=1; done
if [ $dry_run = 1 ]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bench-dry-run.XXXXXX")
else
    out=${OUT:-benchmarks/results}
fi
mkdir -p "$out"

site=""
if [ $dry_run = 0 ] && compgen -G "wheels/*.whl" >/dev/null; then
    site=/tmp/mtl-gpu-site
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" wheels/*.whl
fi
export PYTHONPATH="${site:+$site:}$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1

left=$((budget - (SECONDS - start)))
# The benchmark stops starting phases 25 s before the end (a phase in flight, the last matmul peak and freeing a 12B
# model need them); timeout is the backstop, and whatever was written under $out stays.
set +e
timeout -k 10 "$left" "$python" benchmarks/gpu_bench.py run --budget $((left - 25)) --output-dir "$out" "$@" 2>&1 \
    | tee "$out/gpu-bench.log"
status=${PIPESTATUS[0]}
echo "results in $out ($((SECONDS - start)) s)"
exit "$status"
