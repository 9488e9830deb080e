"""SFT on an expanded run collected on live desktops: a stock TRL SFTTrainer takes the dataset
with no custom collator, labels cover the completion only, the tiny model trains on the CPU
(loss falls, resumes from a checkpoint, LoRA merges), loads with from_pretrained and serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cua.cli import app
from cua.collect.driver import collect, new_run
from cua.collect.recipe import CollectRecipe
from cua.data.dataset import build_dataset, load_sft_dataset, read_manifest
from cua.data.expand import ExpandConfig
from cua.recipes import load_recipe
from cua.train.sft import SFTRecipe
from tests.conftest import require_desktop_tools

pytest.importorskip("trl", reason="needs the train extra (pip install -e '.[train]')")
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from cua.train.tinymodel import build_tiny_model
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_model) -> Path:
    """A run of the scripted expert on live Calc desktops, expanded with the tiny model's bounds."""
    require_desktop_tools()
    folder = tmp_path_factory.mktemp("sft")
    recipe = CollectRecipe.model_validate({
        "name": "sft", "out": str(folder / "runs"), "envs": ["calc"], "workers": 1,
        "content": {"generate": {"workbooks": 1, "seed": 3}}, "tasks_per_content": 2})
    store = new_run(recipe)
    assert collect(store, recipe)["success"] >= 1
    out = folder / "dataset"
    build_dataset(store, out, ExpandConfig(format="uitars-1.5"), tiny_model)
    return out


def sft(*overrides: str):
    return RUNNER.invoke(app, ["sft", "--recipe", str(RECIPES / "sft-tiny-cpu.yaml"),
                               *[a for o in overrides for a in ("--set", o)]])


def log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def test_stock_sft_trainer_takes_the_dataset_and_trains_on_the_completion_only(
        dataset, tiny_model, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    assert len(load_dataset(str(dataset), split="train")) == read_manifest(dataset).stats.samples
    samples = load_sft_dataset(dataset)
    processor = AutoProcessor.from_pretrained(tiny_model)
    trainer = SFTTrainer(
        model=AutoModelForImageTextToText.from_pretrained(tiny_model),
        args=SFTConfig(output_dir=str(tmp_path), max_length=None, per_device_train_batch_size=4,
                       use_cpu=True, report_to="none"),
        train_dataset=samples, processing_class=processor)
    assert isinstance(trainer.data_collator, DataCollatorForVisionLanguageModeling)
    batch = next(iter(trainer.get_train_dataloader()))
    targets = {s["completion"][0]["content"][0]["text"] + "<|im_end|>\n" for s in samples}
    tokenizer = processor.tokenizer
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        kept = (labels != -100).nonzero().flatten().tolist()
        assert kept == list(range(kept[0], kept[-1] + 1))   # one span ...
        assert mask[kept[-1] + 1:].sum() == 0              # ... at the end: the completion
        assert (labels[kept] == ids[kept]).all()
        assert tokenizer.decode(ids[kept]) in targets
        assert "<|image_pad|>" not in tokenizer.decode(ids[kept])
    # images arrive on the processor's grid already: it does not resize them again
    first = samples[0]["images"][0]
    assert [first.height // 14, first.width // 14] == batch["image_grid_thw"][0][1:].tolist()


def test_tiny_model_trains_resumes_and_serves(dataset, tiny_model, tmp_path):
    out = tmp_path / "sft"
    common = [f"dataset={dataset}", "run=null", f"model={tiny_model}", f"output_dir={out}"]
    result = sft(*common, "max_steps=16", "save_steps=8")
    assert result.exit_code == 0, result.output
    losses = [entry["loss"] for entry in log(out)]
    assert len(losses) == 16 and sum(losses[-3:]) < sum(losses[:3]) - 0.3, losses
    assert all(entry["tokens_per_s"] > 0 for entry in log(out)[1:])
    assert (out / "checkpoint-16").is_dir() and (out / "model" / "model.safetensors").exists()

    result = sft(*common, "max_steps=20", "save_steps=8", "resume=true")
    assert result.exit_code == 0, result.output
    assert [e["step"] for e in log(out)][16:] == [17, 18, 19, 20]  # went on from checkpoint-16

    from transformers import AutoModelForImageTextToText
    AutoModelForImageTextToText.from_pretrained(out / "model")
    import openai

    from cua.formats import Context, get_format
    from cua.recipes import ServeConfig
    from cua.train.serve import ModelServer

    image = load_sft_dataset(dataset)[0]["images"][0]
    import io
    png = io.BytesIO()
    image.save(png, format="PNG")
    fmt = get_format("uitars-1.5", **read_manifest(dataset).format_options)
    messages = fmt.render(Context(instruction="Save the file.", screenshot=png.getvalue(),
                                  screen=(1920, 1080)))
    with ModelServer(ServeConfig(model=out / "model"), tmp_path / "serve.log") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY")
        reply = client.chat.completions.create(model=server.model, messages=messages,
                                               max_tokens=8, temperature=0)
    assert isinstance(reply.choices[0].message.content, str)


def test_a_run_whose_filters_keep_nothing_is_refused_with_the_reasons(dataset, tiny_model,
                                                                      tmp_path):
    run = read_manifest(dataset).run
    result = sft(f"run={run}", f"model={tiny_model}", f"output_dir={tmp_path / 'sft'}",
                 "expand.filters.outcomes=[infeasible]")
    assert result.exit_code == 1 and "holds no samples to train on" in result.output
    assert "× outcome success" in result.output and not (tmp_path / "sft" / "model").exists()
    missing = sft("run=/nonexistent/run-*", f"model={tmp_path / 'tiny'}")
    assert missing.exit_code == 1 and "no run matches" in missing.output
    assert not (tmp_path / "tiny").exists()  # refused before a tiny model was built


def test_lora_with_a_frozen_vision_tower_merges_into_a_full_model(dataset, tiny_model, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    result = sft(f"dataset={dataset}", "run=null", f"model={tiny_model}", f"output_dir={out}",
                 "method=lora", "freeze_vision=true", "max_steps=3", "save_steps=100",
                 "lora.r=4", "lora.alpha=8")
    assert result.exit_code == 0, result.output
    before = load_file(tiny_model / "model.safetensors")
    after = load_file(out / "model" / "model.safetensors")
    assert set(after) == set(before)  # merged: no adapter weights left
    changed = {name for name in before if not (before[name] == after[name]).all()}
    assert changed and all("visual" not in n and n.endswith("proj.weight") for n in changed)


def test_recipes_validate():
    for path in sorted(RECIPES.glob("sft-*.yaml")):
        recipe = load_recipe(path, kind=SFTRecipe)
        assert recipe.name == path.stem
    big = load_recipe(RECIPES / "sft-uitars15-7b.yaml", kind=SFTRecipe)
    assert big.bf16 is True and big.gradient_checkpointing and big.method == "full"
    assert load_recipe(RECIPES / "sft-uitars-7b.yaml", kind=SFTRecipe).expand.format == "uitars-1.0"
    assert load_recipe(RECIPES / "sft-uitars15-7b-lora-1gpu.yaml", kind=SFTRecipe).method == "lora"
    accelerate = yaml.safe_load((RECIPES / "accelerate" / "zero3-8gpu.yaml").read_text())
    assert accelerate["distributed_type"] == "DEEPSPEED" and accelerate["num_processes"] == 8
    assert accelerate["deepspeed_config"]["zero_stage"] == 3
    with pytest.raises(ValueError, match="exactly one of dataset or run"):
        load_recipe(RECIPES / "sft-tiny-cpu.yaml", ["dataset=somewhere"], kind=SFTRecipe)
    with pytest.raises(ValueError, match="extra"):
        load_recipe(RECIPES / "sft-tiny-cpu.yaml", ["epoch=3"], kind=SFTRecipe)


def test_bench_sft_prints_its_figures_as_json(dataset, tmp_path):
    (run,) = (dataset.parent / "runs").iterdir()
    result = RUNNER.invoke(app, ["bench", "sft", str(run), "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["steps"] == 2 and figures["tokens_per_s"] > 0 and figures["peak_memory_mb"] > 0
