"""A stock TRL SFTTrainer on a cua dataset, for scripts/gpu-check.sh: the yardstick `cua sft`'s
tokens/s is printed next to. Usage: stock_trl_sft.py DATASET MODEL OUTPUT STEPS (prints JSON)."""

import json
import sys
import time

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import SFTConfig, SFTTrainer

from cua.data.dataset import load_sft_dataset

dataset, model, output, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gpu = torch.cuda.is_available()  # the GPU check's; on a CPU it runs too, in float32
trainer = SFTTrainer(
    model=AutoModelForImageTextToText.from_pretrained(
        model, dtype=torch.bfloat16 if gpu else torch.float32),
    args=SFTConfig(output_dir=output, max_length=None, per_device_train_batch_size=1,
                   gradient_accumulation_steps=4, gradient_checkpointing=True, bf16=gpu,
                   use_cpu=not gpu, max_steps=steps, logging_steps=1, save_strategy="no",
                   report_to="none"),
    train_dataset=load_sft_dataset(dataset), processing_class=AutoProcessor.from_pretrained(model))
start = time.monotonic()
trainer.train()
seconds = time.monotonic() - start
tokens = int(next((e["num_tokens"] for e in reversed(trainer.state.log_history)
                   if "num_tokens" in e), 0))
print(json.dumps({"trainer": "stock TRL SFTTrainer", "steps": steps, "tokens": tokens,
                  "seconds": seconds, "tokens_per_s": tokens / seconds}))
