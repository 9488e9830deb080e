#!/usr/bin/env bash
# GPU checks of issue 11, for a host with NVIDIA GPUs (CI never needs one). Run from a checkout
# after `make install` and `.venv/bin/pip install -e '.[vllm]' deepspeed`; figures go to $OUT.
#   1. cua's tiny model served by each engine answers an eval: `cua loop` (collect, SFT on the GPU,
#      then serve and evaluate the untrained and the trained student) with eval_model.serve.engine.
#   2. The 7B SFT recipe's code path (accelerate + DeepSpeed ZeRO-3, one process) on the tiny model
#      for $STEPS steps, its tokens/s next to a stock TRL SFTTrainer on the same dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cua-gpu-check}
STEPS=${STEPS:-20}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpus.txt"

for engine in transformers vllm; do
  .venv/bin/cua loop --set "out=$OUT/loop-$engine" --set "eval_model.serve.engine=$engine" \
    --set 'sft_set=["use_cpu=false"]' --json | tee "$OUT/loop-$engine.json"
done

loop=$(ls -d "$OUT"/loop-transformers/*/ | head -n 1)
.venv/bin/accelerate launch --config_file recipes/accelerate/zero3-8gpu.yaml --num_processes 1 \
  -m cua sft --recipe recipes/sft-uitars15-7b.yaml --set "model=${loop}student" \
  --set "dataset=${loop}sft/dataset" --set run=null --set "output_dir=$OUT/sft-zero3" \
  --set "max_steps=$STEPS" --set save_steps=100000 --json | tee "$OUT/sft-zero3.json"
.venv/bin/python scripts/stock_trl_sft.py "${loop}sft/dataset" "${loop}student" \
  "$OUT/sft-stock" "$STEPS" | tee "$OUT/sft-stock.json"
