"""`cua sft`: TRL's ``SFTTrainer`` on an expanded dataset, loss on the completion only.

Full fine-tuning or LoRA, gradient checkpointing, bf16 where the device has it, an optional frozen
vision tower, resume from a checkpoint, loss and tokens/s logged to ``OUTPUT/train_log.jsonl``.
The model dir is a local path: nothing downloads. The final model (LoRA merged) is saved to
``OUTPUT/model`` with its processor, ready for ``from_pretrained`` and ``transformers serve``.
Multi-GPU: ``accelerate launch --config_file recipes/accelerate/zero3-8gpu.yaml -m cua sft ...``.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from cua.data.expand import ExpandConfig
from cua.recipes import Strict

# The language model's projections; the vision tower ("visual") is left out.
LM_PROJECTIONS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class LoraSettings(Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = LM_PROJECTIONS


class SFTRecipe(Strict):
    """An SFT recipe (``recipes/sft-*.yaml``)."""

    name: str
    model: Path                        # a local model dir
    build_tiny_model: bool = False     # build cua's tiny Qwen2.5-VL into `model` if it is missing
    dataset: Path | None = None        # a dataset made by `cua expand`
    run: str | None = None             # or a run to expand first (a glob picks the newest)
    expand: ExpandConfig = ExpandConfig()
    output_dir: Path = Path("runs/sft")
    method: Literal["full", "lora"] = "full"
    lora: LoraSettings = LoraSettings()
    freeze_vision: bool = True
    gradient_checkpointing: bool = True
    bf16: bool | Literal["auto"] = "auto"
    use_cpu: bool = False
    max_steps: int = -1                # -1: `epochs` decides
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(1, ge=1)   # per device
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(1e-5, gt=0)
    lr_scheduler: str = "cosine"
    warmup_steps: float = Field(0, ge=0)  # a fraction below 1 is a ratio of all steps
    weight_decay: float = Field(0.0, ge=0)
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 2
    dataloader_workers: int = Field(0, ge=0)
    seed: int = 0
    resume: bool | Path = False        # true: the newest checkpoint in output_dir
    extra_args: dict[str, Any] = {}    # further SFTConfig fields

    @model_validator(mode="after")
    def _one_source(self) -> SFTRecipe:
        if (self.dataset is None) == (self.run is None):
            raise ValueError("an SFT recipe needs exactly one of dataset or run")
        return self


class TrainResult(BaseModel):
    steps: int
    losses: list[float]
    tokens: int
    tokens_per_s: float
    seconds: float
    peak_memory_mb: float
    model_dir: str


def newest_run(pattern: str) -> Path:
    """``pattern`` itself, or the newest folder matching it when it holds a ``*``."""
    if "*" not in pattern:
        return Path(pattern).expanduser()
    path = Path(pattern).expanduser()
    found = sorted(p for p in path.parent.glob(path.name) if (p / "manifest.json").exists())
    if not found:
        raise FileNotFoundError(f"no run matches {pattern}")
    return found[-1]


def prepare_model_dir(recipe: SFTRecipe) -> Path:
    if not (recipe.model / "config.json").exists():
        if not recipe.build_tiny_model:
            raise FileNotFoundError(f"{recipe.model} is not a model dir (no config.json)")
        from cua.train.tinymodel import build_tiny_model
        build_tiny_model(recipe.model)
    return recipe.model


def prepare_dataset(recipe: SFTRecipe, model: Path, run: Path | None) -> Path:
    """The recipe's dataset, or `run` (the recipe's, found by `newest_run`) expanded (once) into
    ``OUTPUT/dataset``."""
    from cua.data.dataset import build_dataset, read_manifest

    out = recipe.dataset
    if out is None:
        from accelerate import PartialState

        from cua.collect.store import RunStore

        out = recipe.output_dir / "dataset"
        with PartialState().main_process_first():
            if not (out / "expand.json").exists():
                build_dataset(RunStore(run), out, recipe.expand, model)
            elif Path(read_manifest(out).run) != run:
                raise FileExistsError(f"{out} holds a dataset of another run")
    stats = read_manifest(out).stats
    if not stats.samples:
        left_out = ", ".join(f"{n} × {why}" for why, n in stats.rejected.items()) or "none"
        raise ValueError(f"{out} holds no samples to train on (trajectories left out: "
                         f"{left_out})")
    return out


def use_bf16(recipe: SFTRecipe) -> bool:
    import torch

    if recipe.bf16 == "auto":
        return not recipe.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return recipe.bf16


def sft_config(recipe: SFTRecipe):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(recipe.output_dir), max_length=None, completion_only_loss=True,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=recipe.learning_rate, lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_steps, weight_decay=recipe.weight_decay,
        num_train_epochs=recipe.epochs, max_steps=recipe.max_steps,
        activation_checkpointing=recipe.gradient_checkpointing,
        bf16=use_bf16(recipe), use_cpu=recipe.use_cpu, logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps, save_total_limit=recipe.save_total_limit,
        dataloader_num_workers=recipe.dataloader_workers, seed=recipe.seed, report_to="none",
        **recipe.extra_args)


def load_model(recipe: SFTRecipe, model_dir: Path, bf16: bool):
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(
        model_dir, dtype=torch.bfloat16 if bf16 else torch.float32)
    if recipe.freeze_vision:
        for name, parameter in model.named_parameters():
            if "visual" in name.split("."):
                parameter.requires_grad_(False)
    return model


def peft_config(recipe: SFTRecipe):
    if recipe.method != "lora":
        return None
    from peft import LoraConfig

    lora = recipe.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def _log_callback(path: Path, echo):
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        """Loss and tokens/s (from TRL's cumulative ``num_tokens``) at every logging step."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.last = time.monotonic(), (time.monotonic(), None)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            now, tokens = time.monotonic(), int(logs.get("num_tokens", 0))
            then, before = self.last
            rate = (tokens - before) / (now - then) if before is not None else None
            self.last = (now, tokens)
            entry = {"step": state.global_step, "loss": logs["loss"], "tokens": tokens,
                     "tokens_per_s": rate, "seconds": now - self.start}
            with open(path, "a") as out:
                out.write(json.dumps(entry) + "\n")
            echo(entry)

    return Throughput()


def train(recipe: SFTRecipe, echo=print) -> TrainResult:
    """Run the recipe; returns the losses, throughput, peak memory and the saved model dir."""
    import torch
    from transformers import AutoProcessor
    from trl import SFTTrainer

    from cua.data.dataset import load_sft_dataset

    # the run first: a missing one fails before a tiny model is built
    run = newest_run(recipe.run) if recipe.dataset is None else None
    model_dir = prepare_model_dir(recipe)
    dataset = load_sft_dataset(prepare_dataset(recipe, model_dir, run))
    args = sft_config(recipe)  # before the model: it sets up ZeRO-3 when launched with it
    processor = AutoProcessor.from_pretrained(model_dir)
    model = load_model(recipe, model_dir, args.bf16)
    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    log = recipe.output_dir / "train_log.jsonl"
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                         peft_config=peft_config(recipe), callbacks=[_log_callback(log, echo)])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    resume = str(recipe.resume) if isinstance(recipe.resume, Path) else recipe.resume or None
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's progress lines, not results
        trainer.train(resume_from_checkpoint=resume)
    seconds = time.monotonic() - start
    final = recipe.output_dir / "model"
    save_model(trainer, processor, final)
    history = [h for h in trainer.state.log_history if "loss" in h]
    tokens = int(history[-1].get("num_tokens", 0)) if history else 0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return TrainResult(steps=trainer.state.global_step, losses=[h["loss"] for h in history],
                       tokens=tokens, tokens_per_s=tokens / seconds if seconds else 0.0,
                       seconds=seconds, peak_memory_mb=peak, model_dir=str(final))


def save_model(trainer, processor, out: Path) -> None:
    """The full model (LoRA merged into it) and its processor, for ``from_pretrained``."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # a peft model
        if trainer.accelerator.is_main_process:
            model.merge_and_unload().save_pretrained(out)
            processor.save_pretrained(out)
        return
    trainer.save_model(str(out))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(out)
