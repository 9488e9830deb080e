"""The whole post-training loop on one machine: scripted collection on local desktops → step-prefix
expansion → SFT of the student → `transformers serve` of it → `cua eval` on held-out instances of
the trained families (new documents from another seed), next to the same eval of the untrained
student. `make demo` runs it with `recipes/demo-loop.yaml`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cua.collect.recipe import CollectRecipe
from cua.recipes import Strict, load_recipe
from cua.train.sft import SFTRecipe


class LoopRecipe(Strict):
    name: str = "demo-loop"
    out: Path = Path("runs")                # the loop's folder is OUT/NAME-STAMP
    collect: Path                          # a collect recipe (scripted expert)
    sft: Path                              # an SFT recipe (its `run` is replaced by the new run)
    collect_set: list[str] = []            # overrides of the two recipes, `key.path=value`
    sft_set: list[str] = []
    eval_content: dict[str, int] = Field(min_length=1)  # {presentations: n, …, seed: s}
    eval_tasks_per_file: int = Field(1, ge=1)
    eval_max_steps: int = Field(12, ge=1)
    eval_model: dict[str, Any] = {}        # the served student's ModelConfig fields (sampling;
                                           # serve.engine, …: the loop fills serve.model in)
    workers: int = Field(2, ge=1)


class LoopResult(BaseModel):
    folder: str
    collect: dict[str, int]
    train_steps: int
    final_loss: float
    eval_tasks: int
    success_untrained: float
    success_trained: float
    seconds: dict[str, float]


def run_loop(recipe: LoopRecipe, console) -> LoopResult:
    from cua.collect.driver import collect, new_run
    from cua.collect.store import new_run_folder

    seconds: dict[str, float] = {}
    out = new_run_folder(recipe.out.expanduser(), recipe.name)
    started = time.monotonic()
    spec = load_recipe(recipe.collect, [*recipe.collect_set, f"out={out}",
                                        f"workers={recipe.workers}"], kind=CollectRecipe)
    store = new_run(spec)
    console.rule(f"1/4 collect: {store.root}")
    counts = collect(store, spec, console)
    seconds["collect"] = time.monotonic() - started

    console.rule("2/4 expand + sft")
    t0 = time.monotonic()
    sft = load_recipe(recipe.sft, [*recipe.sft_set, f"run={store.root}",
                                   f"output_dir={out / 'sft'}", f"model={out / 'student'}"],
                      kind=SFTRecipe)
    trained = _train(sft, console)
    seconds["sft"] = time.monotonic() - t0

    console.rule("3/4 held-out eval tasks")
    tasks_dir = _eval_tasks(recipe, spec, out)

    console.rule("4/4 eval: untrained and trained student")
    rates = {}
    for label, model_dir in (("untrained", sft.model), ("trained", Path(trained.model_dir))):
        t0 = time.monotonic()
        rates[label] = _serve_and_eval(model_dir, tasks_dir, out / "results" / label, recipe,
                                       spec.agent_format, console)
        seconds[f"eval_{label}"] = time.monotonic() - t0
    result = LoopResult(folder=str(out), collect=counts, train_steps=trained.steps,
                        final_loss=trained.losses[-1], eval_tasks=len(list(tasks_dir.rglob("*.json"))),
                        success_untrained=rates["untrained"], success_trained=rates["trained"],
                        seconds=seconds)
    (out / "loop.json").write_text(result.model_dump_json(indent=1))
    return result


def _train(sft: SFTRecipe, console):
    from cua.train.sft import train

    def echo(entry: dict) -> None:
        if entry["step"] % 10 == 0:
            console.print(f"step {entry['step']}: loss {entry['loss']:.4f}", highlight=False)
    return train(sft, echo)


def _eval_tasks(recipe: LoopRecipe, collect_recipe: CollectRecipe, out: Path) -> Path:
    """Documents from the eval seed and tasks of the trained families over them."""
    from cua.content.documents import GENERATORS
    from cua.evaluate.make import make_tasks

    content, tasks_dir = out / "eval-content", out / "eval-tasks"
    content.mkdir(parents=True, exist_ok=True)
    options = dict(recipe.eval_content)
    seed = options.pop("seed", collect_recipe.seed + 1000)
    sources = []
    for kind, count in options.items():
        make, pattern = GENERATORS[kind]
        sources += [make(content / pattern.format(f"eval-{i + 1}"), seed=seed + i)
                    for i in range(count)]
    make_tasks(sources, tasks_dir, collect_recipe.families, recipe.eval_tasks_per_file, seed)
    return tasks_dir


def _serve_and_eval(model_dir: Path, tasks_dir: Path, results: Path, recipe: LoopRecipe,
                    agent_format: str, console) -> float:
    from cua.evaluate.runner import EvalRecipe, run_eval, select_tasks
    from cua.formats import model_bounds
    from cua.train.serve import serving

    spec = EvalRecipe(tasks=[tasks_dir], out=results, agent_format=agent_format,
                      agent_format_options=model_bounds(agent_format, model_dir),
                      model={"name": model_dir.name, **recipe.eval_model,
                             "serve": {**recipe.eval_model.get("serve", {}), "model": model_dir}},
                      max_steps=recipe.eval_max_steps, workers=recipe.workers)
    with serving(spec, results.parent / f"{results.name}-serve") as served:
        tasks, _ = select_tasks(served)
        _, rows = run_eval(served, tasks, console)
    return rows[-1].success_rate
