"""The whole loop with a small budget: scripted collection → expansion → tiny SFT on the CPU →
`transformers serve` → `cua eval` of the untrained and the trained student on held-out tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cua.collect.store import RunStore
from cua.evaluate.runner import EvalRecipe
from cua.loop import LoopRecipe, run_loop
from tests.conftest import require_desktop_tools

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_loop_trains_serves_and_evaluates_the_student(tmp_path):
    require_desktop_tools()
    pytest.importorskip("trl", reason="needs the train extra (pip install -e '.[train]')")
    from rich.console import Console

    recipe = LoopRecipe(
        out=tmp_path, collect=RECIPES / "demo-train.yaml", sft=RECIPES / "sft-demo.yaml",
        collect_set=["content.generate={workbooks: 2, documents: 1, seed: 0}"],
        sft_set=["max_steps=20", "batch_size=2", "logging_steps=1"],
        eval_content={"workbooks": 1, "documents": 1, "seed": 1000}, eval_max_steps=3,
        eval_model={"max_tokens": 64}, workers=2)
    result = run_loop(recipe, Console(quiet=True))
    folder = Path(result.folder)
    assert folder.parent == tmp_path
    assert json.loads((folder / "loop.json").read_text())["eval_tasks"] == result.eval_tasks == 2
    assert result.collect["success"] == 3 and result.train_steps == 20
    losses = [json.loads(x)["loss"] for x in (folder / "sft" / "train_log.jsonl").open()
              if "loss" in json.loads(x)]
    assert losses[-1] < losses[0]
    assert result.success_untrained == 0
    for label, model_dir in (("untrained", folder / "student"), ("trained", folder / "sft" / "model")):
        root = EvalRecipe(tasks=[folder / "eval-tasks"], out=folder / "results" / label,
                          model={"name": str(model_dir), "base_url": "http://127.0.0.1:9/v1"}
                          ).results_root()
        assert len(list(root.rglob("result.txt"))) == 2, f"{label}: every task scored"
        for episode in RunStore(root).episodes().values():
            assert episode.steps[0].call.request["model"] == str(model_dir)
