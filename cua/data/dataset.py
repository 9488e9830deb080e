"""SFT datasets on disk: a run expanded for one student format, in Hugging Face ``datasets`` layout.

``DIR/data/*.parquet`` holds the samples (``prompt``, ``completion``, ``images`` as keys, and where
each came from); ``DIR/images/*.parquet`` holds every screenshot once, as the model sees it
(resized to the format's grid, lossless WebP); ``README.md`` is the dataset card and
``expand.json`` the :class:`DatasetManifest`. :func:`load_sft_dataset` resolves the keys to images
for TRL; :func:`verify_dataset` re-renders every step and compares.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cua.collect.store import RunStore, internalize, write_atomic
from cua.data.expand import (
    ExpandConfig,
    Images,
    Sample,
    TextCounter,
    completion_of,
    context_at,
    estimate_text_tokens,
    expand_episode,
    first_difference,
    recorded_responses,
    rejection,
    rollout_format,
    screen_of,
    to_messages,
)
from cua.formats import AgentFormat, Context, get_format, model_bounds
from cua.records import EpisodeRecord

SCHEMA_VERSION = 1
SAMPLES_PER_SHARD = 20_000
IMAGE_BYTES_PER_SHARD = 256 * 2**20
# Lossless WebP at low effort: measured on 1920x1080 office screens resized for UI-TARS-1.5, 1.0x
# the PNG screenshots at ~0.3 s an image (method 0: 1.2-1.4x at 0.07 s; method 3: 0.9x at 0.9 s).
WEBP = {"format": "WEBP", "lossless": True, "method": 1, "quality": 0}


class DatasetStats(BaseModel):
    trajectories: int = 0
    samples: int = 0
    rejected: dict[str, int] = {}        # why trajectories were left out, with counts
    skipped_steps: int = 0               # steps without valid actions (history only)
    history_cut: int = 0                 # samples that dropped screenshots for the token budget
    steps_per_trajectory: dict[str, float] = {}
    apps: dict[str, int] = {}            # samples per app family
    families: dict[str, int] = {}        # samples per template family
    images_per_sample: dict[str, int] = {}
    tokens: dict[str, float] = {}
    unique_images: int = 0
    image_bytes: int = 0                 # stored images (what the model sees, lossless)
    screenshot_bytes: int = 0            # the run's PNGs of the same screenshots
    dataset_bytes: int = 0


class DatasetManifest(BaseModel):
    """``expand.json``: how a dataset was made, enough to rebuild and verify every sample."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run: str
    run_id: str
    config: ExpandConfig
    format_options: dict[str, Any]       # as used, the model dir's processor bounds included
    model: str | None = None             # model dir for bounds and token counts
    token_counter: Literal["estimate", "tokenizer"] = "estimate"
    image_codec: str = "webp-lossless"
    created: float
    stats: DatasetStats


# -- the student ---------------------------------------------------------------------------------

def student_format(config: ExpandConfig, model: Path | None = None) -> AgentFormat:
    """The format with the recipe's options, and the model dir's processor bounds when given."""
    options = dict(config.format_options)
    if model is not None:
        options.update(model_bounds(config.format, Path(model)))
    return get_format(config.format, **options)


def text_counter(model: Path | None) -> TextCounter:
    """Exact text token counts with the model's tokenizer (memoised), else an estimate."""
    if model is None:
        return estimate_text_tokens
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    known: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in known:
            known[text] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return known[text]

    return count


# -- building ------------------------------------------------------------------------------------

def _features():
    from datasets import Features, Image, List, Value

    block = {"type": Value("string"), "text": Value("string")}
    messages = List({"role": Value("string"), "content": List(block)})
    samples = Features({"prompt": messages, "completion": messages, "images": List(Value("string")),
                        "episode": Value("string"), "step": Value("int32"),
                        "app": Value("string"), "family": Value("string"),
                        "history_n": Value("int32"), "tokens": Value("int32")})
    return samples, Features({"key": Value("string"), "image": Image()})


def encode_image(png: bytes) -> bytes:
    """Lossless WebP of an image the model sees (same pixels, about half the bytes of PNG)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.save(out, **WEBP)
    return out.getvalue()


class _ShardWriter:
    """Rows buffered and written as numbered parquet shards under one folder."""

    def __init__(self, folder: Path, prefix: str, features, limit: int, size=lambda row: 1):
        self.folder, self.prefix, self.features = folder, prefix, features
        self.limit, self.size = limit, size
        self.rows: list[dict] = []
        self.used = self.shards = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.used += self.size(row)
        if self.used >= self.limit:
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Write the buffered rows as the next shard (the last call writes one, even empty)."""
        if not self.rows and not (final and self.shards == 0):
            return
        import datasets

        self.folder.mkdir(parents=True, exist_ok=True)
        columns = {name: [row[name] for row in self.rows] for name in self.features}
        shown = not datasets.are_progress_bars_disabled()  # a bar per shard: noise in a CLI
        datasets.disable_progress_bars()
        try:
            datasets.Dataset.from_dict(columns, features=self.features).to_parquet(
                str(self.folder / f"{self.prefix}-{self.shards:05d}.parquet"))
        finally:
            if shown:
                datasets.enable_progress_bars()
        self.rows, self.used, self.shards = [], 0, self.shards + 1


def kept_episodes(store: RunStore, config: ExpandConfig) -> tuple[list[EpisodeRecord], Counter]:
    kept, rejected = [], Counter()
    for episode in store.episodes().values():
        reason = rejection(episode, config.filters)
        if reason:
            rejected[reason] += 1
        else:
            kept.append(episode)
    return kept, rejected


def build_dataset(store: RunStore, out: Path, config: ExpandConfig,
                  model: Path | None = None) -> DatasetManifest:
    """Expand every kept trajectory of ``store`` into the dataset folder ``out`` (new). It is
    built in a hidden folder beside ``out`` and renamed into place when complete: a killed build
    leaves no half dataset, and the next build removes what it left."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    for remains in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(remains, ignore_errors=True)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir()  # as `out` would be made (mkdtemp's is private)
    try:
        manifest = _build(store, partial, config, model)
        if out.exists():
            out.rmdir()  # empty, as checked above
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _build(store: RunStore, out: Path, config: ExpandConfig,
           model: Path | None) -> DatasetManifest:
    fmt, count_text = student_format(config, model), text_counter(model)
    sample_features, image_features = _features()
    samples = _ShardWriter(out / "data", "train", sample_features, SAMPLES_PER_SHARD)
    pictures = _ShardWriter(out / "images", "images", image_features, IMAGE_BYTES_PER_SHARD,
                            size=lambda row: len(row["image"]["bytes"]))
    images, stats = Images(), DatasetStats()
    episodes, rejected = kept_episodes(store, config)
    lengths, tokens, per_sample = [], [], Counter()
    apps, families, screenshots = Counter(), Counter(), set()
    for episode in episodes:
        screens = [store.screen(step.screenshot) for step in episode.steps]
        try:
            made = list(expand_episode(episode, screens, fmt, images, config.max_tokens,
                                       count_text))
        except ValueError as exc:
            images.drop_new()
            rejected[f"not expandable: {exc}"] += 1
            continue
        for key, png in images.take_new().items():
            data = encode_image(png)
            stats.image_bytes += len(data)
            pictures.add({"key": key, "image": {"bytes": data, "path": None}})
        screenshots.update(step.screenshot for step in episode.steps)
        stats.trajectories += 1
        lengths.append(len(episode.steps))
        stats.skipped_steps += len(episode.steps) - len(made)
        for sample in made:
            samples.add(_row(sample, episode))
            stats.history_cut += sample.history_n < fmt.history_n
            tokens.append(sample.tokens)
            per_sample[str(len(sample.images))] += 1
            apps[episode.task.app] += 1
            families[episode.task.family or "(model-proposed)"] += 1
    samples.flush(final=True)
    pictures.flush(final=True)
    stats.samples, stats.rejected = len(tokens), dict(rejected)
    stats.apps, stats.families = dict(apps), dict(families)
    stats.images_per_sample = dict(sorted(per_sample.items(), key=lambda kv: int(kv[0])))
    stats.steps_per_trajectory = _summary(lengths)
    stats.tokens = {**_summary(tokens), "total": sum(tokens)}
    stats.unique_images = len(images.seen)
    stats.screenshot_bytes = sum(store.screen_path(d).stat().st_size for d in screenshots)
    manifest = DatasetManifest(
        run=str(store.root), run_id=store.manifest().run_id, config=config,
        format_options=fmt.options(),
        model=str(model) if model else None,
        token_counter="tokenizer" if model else "estimate", created=time.time(), stats=stats)
    write_card(out, manifest)
    manifest.stats.dataset_bytes = folder_bytes(out)
    write_card(out, manifest)
    return manifest


def _row(sample: Sample, episode: EpisodeRecord) -> dict:
    return {"prompt": sample.prompt, "completion": sample.completion, "images": sample.images,
            "episode": sample.episode, "step": sample.step, "app": episode.task.app,
            "family": episode.task.family, "history_n": sample.history_n,
            "tokens": sample.tokens}


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
            "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "max": ordered[-1]}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- the card ------------------------------------------------------------------------------------

# No `configs:` block: with one, `load_dataset(DIR)` caches by folder name and serves a stale copy
# of a rebuilt dataset; without it the samples under data/ are found, and cached by file.
CARD_HEADER = """---
tags: [computer-use, gui-agent, sft, {format}]
---
"""


def write_card(out: Path, manifest: DatasetManifest) -> None:
    """``README.md`` (the dataset card with its counts) and ``expand.json``."""
    s, fmt = manifest.stats, manifest.config.format
    ratio = s.dataset_bytes / s.screenshot_bytes if s.screenshot_bytes else 0.0
    budget = manifest.config.max_tokens
    card = CARD_HEADER.format(format=fmt) + f"""
# {manifest.run_id} as {fmt} SFT samples

Step-prefix expansion of the cua run `{manifest.run_id}`: each step of a kept trajectory is one
sample whose prompt is exactly what `{fmt}` renders at that step (format options
`{json.dumps(manifest.format_options)}`), and whose completion is that step's response.

| count | value |
| --- | --- |
| trajectories | {s.trajectories} |
| samples | {s.samples} |
| steps per trajectory | {_inline(s.steps_per_trajectory)} |
| tokens per sample ({manifest.token_counter}) | {_inline(s.tokens)} |
| samples cut to fewer screenshots by the token budget ({budget}) | {s.history_cut} |
| steps without valid actions (history only) | {s.skipped_steps} |
| unique images | {s.unique_images} ({s.image_bytes / 2**20:.1f} MiB, {manifest.image_codec}) |
| dataset on disk | {s.dataset_bytes / 2**20:.1f} MiB: {ratio:.2f}x its screenshots in the run |

## App families (samples)

| app | samples |
| --- | --- |
{_table(s.apps)}

## Task families (samples)

| family | samples |
| --- | --- |
{_table(s.families)}

## Images per sample

| images | samples |
| --- | --- |
{_table(s.images_per_sample)}

## Trajectories left out

| reason | trajectories |
| --- | --- |
{_table(s.rejected)}

## Loading

`datasets.load_dataset(DIR)` gives the samples, with `images` as keys into the image table
`images/*.parquet` (columns `key`, `image`; each screenshot is stored once). For TRL, resolve
them to PIL images:

```python
from cua.data.dataset import load_sft_dataset
dataset = load_sft_dataset(DIR)   # prompt, completion, images (PIL), ready for SFTTrainer
```
"""
    write_atomic(out / "README.md", card.encode())
    write_atomic(out / "expand.json", manifest.model_dump_json(indent=1).encode())


def _table(counts: dict[str, int]) -> str:
    return "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| - | - |"


def _inline(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in values.items()) or "-"


def read_manifest(path: Path) -> DatasetManifest:
    file = Path(path) / "expand.json"
    if not file.exists():
        raise FileNotFoundError(f"{path} is not a cua SFT dataset (no expand.json)")
    return DatasetManifest.model_validate_json(file.read_text())


# -- loading -------------------------------------------------------------------------------------

def _parquet(path: Path, folder: str):
    from datasets import load_dataset

    files = sorted(str(p) for p in (Path(path) / folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}/{folder} has no parquet shards")
    return load_dataset("parquet", data_files=files, split="train")


class ImageTable:
    """The dataset's images by key, read on demand from the memory-mapped table."""

    def __init__(self, path: Path):
        from datasets import Image

        self.table = _parquet(path, "images").cast_column("image", Image(decode=False))
        self.rows = {key: row for row, key in enumerate(self.table["key"])}

    def bytes(self, key: str) -> bytes:
        return self.table[self.rows[key]]["image"]["bytes"]

    def pil(self, key: str):
        from PIL import Image

        image = Image.open(io.BytesIO(self.bytes(key)))
        image.load()
        return image

    def __deepcopy__(self, memo) -> ImageTable:  # read-only: datasets copies formats freely
        return self

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        """The ``with_transform`` of the samples: image keys to PIL images."""
        if "images" in batch:
            batch["images"] = [[self.pil(k) for k in keys] for keys in batch["images"]]
        return batch


def load_sft_dataset(path: Path):
    """The samples as a ``datasets.Dataset`` whose ``images`` come out as PIL images: what a
    stock ``SFTTrainer`` takes for a vision-language model (no custom collator)."""
    return _parquet(path, "data").with_transform(ImageTable(path))


# -- verification --------------------------------------------------------------------------------

class Mismatch(BaseModel):
    episode: str
    step: int | None
    against: str                         # what the sample (or render) was compared with
    path: str                            # JSON path of the first difference

    def __str__(self) -> str:
        where = f"episode {self.episode} step {self.step}" if self.step is not None else \
            f"episode {self.episode}"
        return f"{where}: {self.path} differs from {self.against}"


class VerifyReport(BaseModel):
    samples: int = 0
    steps: int = 0
    requests: int = 0                    # steps compared with the request the rollout sent
    mismatches: list[Mismatch] = []


def verify_dataset(path: Path, store: RunStore) -> VerifyReport:
    """Re-render every step of every kept trajectory and compare, byte for byte: the dataset's
    sample (images as the data URLs the model would get) with the eval agent's render of the
    context rebuilt from the record, and that render with the request the rollout actually sent
    (when it spoke the same format and recorded a model call)."""
    path = Path(path)
    manifest = read_manifest(path)
    fmt = get_format(manifest.config.format, **manifest.format_options)
    count_text = text_counter(Path(manifest.model) if manifest.token_counter == "tokenizer"
                              else None)
    rows = {(row["episode"], row["step"]): row for row in _rows(path / "data")}
    table, urls = (ImageTable(path) if rows else None), {}
    report = VerifyReport()
    episodes, _ = kept_episodes(store, manifest.config)
    for episode in episodes:
        screens = [store.screen(step.screenshot) for step in episode.steps]
        screen = screen_of(episode)
        same = rollout_format(episode) == fmt
        reference = recorded_responses(episode, fmt)

        def url(key: str) -> str:
            if key not in urls:
                urls[key] = view_url(fmt, table.bytes(key), screen)
            return urls[key]

        def mismatch(step: int | None, against: str, where: str | None) -> None:
            if where:
                report.mismatches.append(Mismatch(episode=episode.id, step=step,
                                                  against=against, path=where))

        try:
            expected = {sample.step: sample for sample in expand_episode(
                episode, screens, fmt, Images(), manifest.config.max_tokens, count_text)}
        except ValueError:
            expected = {}  # the build left this trajectory out
        for t, step in enumerate(episode.steps):
            report.steps += 1
            if same and step.call is not None:
                report.requests += 1
                request = internalize(step.call.request["messages"], store.screen)
                rendered = fmt.render(context_at(episode, t, reference, screens))
                mismatch(t, "the request the rollout sent",
                         first_difference(request, rendered, "request.messages"))
            row, want = rows.pop((episode.id, t), None), expected.get(t)
            if row is None or want is None:
                if want is not None:
                    mismatch(t, "the record (sample missing)", "$")
                elif row is not None:
                    mismatch(t, "the record (no sample for this step)", "$")
                continue
            report.samples += 1
            mismatch(t, "the token budget",
                     first_difference(want.history_n, row["history_n"], "history_n"))
            blocks = sum(b["type"] == "image" for m in row["prompt"] for b in m["content"])
            if blocks != len(row["images"]) or not all(k in table.rows for k in row["images"]):
                mismatch(t, "its image table", "images")
                continue
            expected_messages = fmt.replace(history_n=want.history_n).render(
                context_at(episode, t, reference, screens))
            actual = to_messages(row["prompt"], [url(k) for k in row["images"]])
            mismatch(t, "the eval agent's render",
                     first_difference(expected_messages, actual, "prompt"))
            mismatch(t, "the recorded response", first_difference(
                completion_of(fmt, reference[t]), _text_only(row["completion"]), "completion"))
    for episode_id, step in rows:
        report.mismatches.append(Mismatch(episode=episode_id, step=step,
                                          against="the run (no such kept step)", path="$"))
    return report


def _rows(folder: Path) -> Iterable[dict]:
    import pyarrow.parquet as pq

    for shard in sorted(folder.glob("*.parquet")):
        yield from pq.read_table(shard).to_pylist()


def view_url(fmt: AgentFormat, image: bytes, screen: tuple[int, int]) -> str:
    """The data URL ``fmt`` sends for an image, rendered by the format itself."""
    messages = fmt.render(Context(instruction="", screenshot=image, screen=screen))
    return messages[-1]["content"][0]["image_url"]["url"]


def _text_only(messages: Iterable[dict]) -> list[dict]:
    return [{"role": m["role"], "content": [{"type": b["type"], "text": b["text"]}
                                            for b in m["content"]]} for m in messages]
