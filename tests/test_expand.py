"""Step-prefix expansion of runs collected on live desktops: every step as the student sees it,
`cua expand --verify` byte for byte (and failing on a tampered sample), retargeting UI-TARS-1.5 to
UI-TARS-1.0, the token budget, and the dataset on disk."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from cua.actions import Click, Drag, Scroll
from cua.cli import app
from cua.collect.driver import collect, new_run
from cua.collect.recipe import CollectRecipe
from cua.collect.store import RunStore
from cua.data.dataset import build_dataset, load_sft_dataset, read_manifest, verify_dataset
from cua.data.expand import ExpandConfig, Filters, first_difference
from cua.formats import get_format
from tests.conftest import require_desktop_tools

RUNNER = CliRunner()


def collect_run(folder: Path, **fields) -> RunStore:
    require_desktop_tools()
    recipe = CollectRecipe.model_validate({
        "name": "expand", "out": str(folder), "envs": ["calc"], "workers": 1,
        "content": {"generate": {"workbooks": 1, "seed": 3}}, "tasks_per_content": 2, **fields})
    store = new_run(recipe)
    collect(store, recipe)
    return store


@pytest.fixture(scope="module")
def calc_run(tmp_path_factory) -> RunStore:
    store = collect_run(tmp_path_factory.mktemp("runs"))
    episodes = store.episodes().values()
    assert sum(e.outcome == "success" for e in episodes) >= 1, [(e.id, e.error) for e in episodes]
    return store


@pytest.fixture(scope="module")
def dataset15(calc_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "uitars-1.5"
    build_dataset(calc_run, out, ExpandConfig(format="uitars-1.5"))
    return out


def rows(dataset: Path) -> list[dict]:
    (shard,) = sorted((dataset / "data").glob("*.parquet"))
    return pq.read_table(shard).to_pylist()


def expand(*args: str):
    return RUNNER.invoke(app, ["expand", *map(str, args)])


def test_every_step_is_one_sample_as_the_student_sees_it(calc_run, dataset15):
    from datasets import load_dataset

    kept = {e.id: e for e in calc_run.episodes().values() if e.outcome == "success"}
    manifest = read_manifest(dataset15)
    assert manifest.stats.trajectories == len(kept)
    assert manifest.stats.samples == sum(len(e.steps) for e in kept.values())
    fmt = get_format("uitars-1.5")
    samples = load_sft_dataset(dataset15)
    for sample in samples:
        episode, t = kept[sample["episode"]], sample["step"]
        prompt = sample["prompt"]
        assert prompt[0]["content"] == [{"type": "text", "text": "You are a helpful assistant."}]
        assert episode.task.instruction in prompt[1]["content"][0]["text"]
        assert sum(m["role"] == "assistant" for m in prompt) == t  # every past step, as text
        shown = [b for m in prompt for b in m["content"] if b["type"] == "image"]
        assert len(shown) == len(sample["images"]) == min(t + 1, 5)
        assert prompt[-1] == {"role": "user", "content": [{"type": "image", "text": None}]}
        assert all(image.size == fmt.image_size((1920, 1080)) == (1932, 1092)
                   for image in sample["images"])
        # the scripted expert's canonical step, re-emitted by unparse, is what it said
        (turn,) = sample["completion"]
        assert turn["content"][0]["text"] == fmt.assistant_text(episode.steps[t].response)

    # Hugging Face loaders, screenshots stored once, the card's counts
    files = sorted(str(p) for p in (dataset15 / "data").glob("*.parquet"))
    plain = load_dataset("parquet", data_files=files, split="train")
    assert {"prompt", "completion", "images"} <= set(plain.column_names)
    assert len(load_dataset(str(dataset15), split="train")) == manifest.stats.samples
    images = load_dataset("parquet", data_files=str(dataset15 / "images" / "*.parquet"),
                          split="train")
    assert len(images) == manifest.stats.unique_images < sum(len(r["images"]) for r in plain)
    assert manifest.stats.dataset_bytes <= 1.1 * manifest.stats.screenshot_bytes
    card = (dataset15 / "README.md").read_text()
    for fact in (f"| trajectories | {len(kept)} |", f"| samples | {manifest.stats.samples} |",
                 "| calc |", "tokens per sample", "## Images per sample"):
        assert fact in card


def test_verify_passes_and_names_the_step_of_a_tampered_sample(calc_run, tmp_path):
    out = tmp_path / "ds"
    result = expand(calc_run.root, "--format", "uitars-1.5", "--out", out, "--verify")
    assert result.exit_code == 0, result.output
    assert " 0 mismatches" in result.output

    shard = next((out / "data").glob("*.parquet"))
    table = pq.read_table(shard)
    data = table.to_pylist()
    victim = next(r for r in data if r["step"] == 2)
    text = victim["completion"][0]["content"][0]["text"]
    victim["completion"][0]["content"][0]["text"] = text.replace("Thought: ", "Thought: Hm. ")
    pq.write_table(pa.Table.from_pylist(data, schema=table.schema), shard)
    result = expand(calc_run.root, "--format", "uitars-1.5", "--out", out, "--verify")
    assert result.exit_code == 1
    assert (f"episode {victim['episode']} step 2: completion[0].content[0].text differs"
            in result.output), result.output

    pq.write_table(table, shard)  # restore, then change one pixel of one stored screenshot
    images = next((out / "images").glob("*.parquet"))
    pictures = pq.read_table(images)
    stored = pictures.to_pylist()
    key = victim["images"][-1]  # the screenshot of the victim's own step
    entry = next(e for e in stored if e["key"] == key)
    image = Image.open(io.BytesIO(entry["image"]["bytes"])).convert("RGB")
    image.putpixel((5, 5), tuple(255 - c for c in image.getpixel((5, 5))))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True)
    entry["image"]["bytes"] = buffer.getvalue()
    pq.write_table(pa.Table.from_pylist(stored, schema=pictures.schema), images)
    report = verify_dataset(out, calc_run)
    hit = {(m.episode, m.step, m.path) for m in report.mismatches}
    last = len(victim["prompt"]) - 1
    assert (victim["episode"], 2, f"prompt[{last}].content[0].image_url.url") in hit, hit
    assert all(m.against == "the eval agent's render" for m in report.mismatches)


def test_retargeting_to_uitars_10_keeps_every_pixel(calc_run, dataset15, tmp_path):
    out = tmp_path / "uitars-1.0"
    build_dataset(calc_run, out, ExpandConfig(format="uitars-1.0"))
    assert verify_dataset(out, calc_run).mismatches == []
    episodes = calc_run.episodes()
    for dataset, name in ((dataset15, "uitars-1.5"), (out, "uitars-1.0")):
        fmt = get_format(name)
        for row in rows(dataset):
            step = episodes[row["episode"]].steps[row["step"]]
            parsed = fmt.parse(row["completion"][0]["content"][0]["text"], (1920, 1080))
            assert parsed.thought == step.thought
            assert len(parsed.actions) == len(step.actions)
            for got, want in zip(parsed.actions, step.actions):
                assert got.type == want.type
                for axis, value in want:
                    if isinstance(value, int) and axis in ("x", "y", "x1", "y1", "x2", "y2"):
                        assert abs(getattr(got, axis) - value) <= 1, (name, row["step"], axis)
    relative = " ".join(r["completion"][0]["content"][0]["text"] for r in rows(out))
    absolute = " ".join(r["completion"][0]["content"][0]["text"] for r in rows(dataset15))
    assert relative != absolute and "call_user()" in rows(out)[0]["prompt"][1]["content"][0]["text"]


# UI-TARS-1.0's 0-1000 grid is W/1000 px wide: ±1 px holds on screens up to 2000 px a side.
SCREENS = st.tuples(st.integers(640, 2000), st.integers(480, 2000))


@settings(max_examples=300, deadline=None)
@given(screen=SCREENS, fx=st.floats(0, 1, exclude_max=True), fy=st.floats(0, 1, exclude_max=True),
       gx=st.floats(0, 1, exclude_max=True), gy=st.floats(0, 1, exclude_max=True),
       name=st.sampled_from(["uitars-1.5", "uitars-1.0"]))
def test_each_coordinate_round_trips_to_the_same_pixel(screen, fx, fy, gx, gy, name):
    fmt = get_format(name)
    x, y = int(fx * screen[0]), int(fy * screen[1])
    x2, y2 = int(gx * screen[0]), int(gy * screen[1])
    actions = [Click(x=x, y=y), Drag(x1=x, y1=y, x2=x2, y2=y2), Scroll(x=x2, y=y2, direction="up")]
    parsed = fmt.parse(fmt.unparse("Here.", actions, screen), screen).actions
    for got, want in zip(parsed, actions, strict=True):
        for axis, value in want:
            if isinstance(value, int):
                assert abs(getattr(got, axis) - value) <= 1, (name, screen, axis, value)


def test_token_budget_drops_the_oldest_screenshots(calc_run, tmp_path):
    per_image = 39 * 69 + 2  # a 1932x1092 screenshot
    budget = 3 * per_image + 1500
    out = tmp_path / "budget"
    manifest = build_dataset(calc_run, out, ExpandConfig(max_tokens=budget))
    data = rows(out)
    assert manifest.stats.history_cut > 0 and manifest.stats.samples == len(data)
    for row in data:
        assert row["tokens"] <= budget
        shown = sum(b["type"] == "image" for m in row["prompt"] for b in m["content"])
        assert shown == len(row["images"]) == min(row["step"] + 1, row["history_n"]) <= 3
        assert row["prompt"][-1]["content"][0]["type"] == "image"  # the current screen stays
        assert sum(m["role"] == "assistant" for m in row["prompt"]) == row["step"]
    assert verify_dataset(out, calc_run).mismatches == []
    tight = build_dataset(calc_run, tmp_path / "tight", ExpandConfig(max_tokens=per_image))
    assert tight.stats.samples == 0 and any("budget" in r for r in tight.stats.rejected)


def test_filters_keep_only_what_they_name(calc_run, tmp_path):
    episodes = calc_run.episodes()
    none = build_dataset(calc_run, tmp_path / "a", ExpandConfig(filters=Filters(apps=["writer"])))
    assert none.stats.samples == 0 and none.stats.rejected == {"app calc": len(episodes)}
    shortest = min(len(e.steps) for e in episodes.values())
    short = build_dataset(calc_run, tmp_path / "b", ExpandConfig(filters=Filters(
        outcomes=["success", "failure"], max_steps=shortest)))
    assert short.stats.samples == sum(len(e.steps) for e in episodes.values()
                                      if len(e.steps) == shortest and e.outcome != "error")


def test_a_build_cut_short_leaves_no_half_dataset(calc_run, tmp_path, monkeypatch):
    from cua.data import dataset

    out = tmp_path / "ds"
    remains = tmp_path / ".ds.partial-0000"  # what a killed build left
    (remains / "data").mkdir(parents=True)

    def interrupted(data):
        raise KeyboardInterrupt
    with monkeypatch.context() as patched:
        patched.setattr(dataset, "encode_image", interrupted)
        with pytest.raises(KeyboardInterrupt):
            build_dataset(calc_run, out, ExpandConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nor the remains it found
    manifest = build_dataset(calc_run, out, ExpandConfig())
    assert manifest.stats.samples > 0 and read_manifest(out).stats == manifest.stats
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_first_difference_is_a_json_path():
    a = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    b = [{"role": "user", "content": [{"type": "text", "text": "y"}]}]
    assert first_difference(a, a) is None
    assert first_difference(a, b, "prompt") == "prompt[0].content[0].text"
    assert first_difference(a, a + a, "p") == "p[1]"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "$.b"


def test_render_equals_the_request_a_model_rollout_sent(tmp_path, tiny_server):
    executor = {"name": tiny_server.model, "base_url": tiny_server.base_url, "max_tokens": 40}
    store = collect_run(tmp_path, tasks_per_content=1, parse_error_budget=3,
                        roles={"executor": executor})
    (episode,) = store.episodes().values()
    assert len(episode.steps) == 3 and all(s.call and s.call.text is not None
                                           for s in episode.steps)
    config = ExpandConfig(filters=Filters(outcomes=["failure"]))
    build_dataset(store, tmp_path / "ds", config)
    report = verify_dataset(tmp_path / "ds", store)
    assert report.requests == 3 and report.mismatches == [], report
    request = episode.steps[2].call.request["messages"]  # a step with two past steps
    assert [m["role"] for m in request] == ["system", "user", "user", "assistant", "user",
                                            "assistant", "user"]
    episode.steps[2].call.request["messages"][1]["content"][0]["text"] += " "
    (store.root / "episodes" / f"{episode.id}.json").write_text(episode.model_dump_json())
    (mismatch,) = verify_dataset(tmp_path / "ds", store).mismatches
    assert (mismatch.step, mismatch.path) == (2, "request.messages[1].content[0].text")
    assert json.loads(mismatch.model_dump_json())["against"] == "the request the rollout sent"


def test_bench_expand_prints_its_figures_as_json(calc_run, tmp_path):
    figures_file = tmp_path / "figures.json"
    result = RUNNER.invoke(app, ["bench", "expand", str(calc_run.root), "--repeat", "1",
                                 "--json", "--out", str(figures_file)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures == json.loads(figures_file.read_text())
    assert figures["samples"] >= 1 and figures["pure_expansion_samples_per_s"] > 0
    assert 0 < figures["dataset_over_screenshots"] and figures["unique_screenshots"] >= 1
    table = RUNNER.invoke(app, ["bench", "expand", str(calc_run.root), "--repeat", "1"])
    assert table.exit_code == 0 and "samples/s" in table.stdout, table.output


def test_an_unknown_format_or_option_is_refused_when_the_options_are_read():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown agent format 'uitars-9'"):
        ExpandConfig(format="uitars-9")
    with pytest.raises(ValidationError, match="format_options: .*colour"):
        ExpandConfig(format_options={"colour": 1})
    assert ExpandConfig(format_options={"history_n": 3}).format == "uitars-1.5"
