"""The tiny offline Qwen2.5-VL: build, load, chat template, generation, determinism, serving."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import pytest
from PIL import Image

_REASON = "needs the train extra (pip install -e '.[train]'): {} is not installed"
for _module in ("torch", "torchvision", "transformers"):
    pytest.importorskip(_module, reason=_REASON.format(_module))

from cua.desktop import procs  # noqa: E402
from cua.train.tinymodel import MAX_PIXELS, UNIT, build_tiny_model  # noqa: E402

VISION = "<|vision_start|><|image_pad|><|vision_end|>"
GRID = [1, 12, 20]  # 1920x1080 -> 336x560 pixels -> 12x20 patches -> 60 visual tokens


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def loaded(model_dir):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    return (AutoProcessor.from_pretrained(model_dir),
            Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir).eval())


def screenshot(color=(40, 120, 200)) -> Image.Image:
    return Image.new("RGB", (1920, 1080), color)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def uitars_messages() -> list[dict]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are a GUI agent."}]},
        {"role": "user", "content": [{"type": "text", "text": "Sum column B in LibreOffice Calc."}]},
        {"role": "user", "content": [{"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text":
            "Thought: Click cell B12.\nAction: click(start_box='(640,300)')"}]},
        {"role": "user", "content": [{"type": "image"}]},
    ]


def test_loads_with_auto_classes(model_dir, loaded):
    from transformers import AutoModelForImageTextToText

    processor, model = loaded
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(processor.tokenizer).__name__ in ("Qwen2Tokenizer", "Qwen2TokenizerFast")
    assert model.config.text_config.hidden_size == 64
    assert model.config.text_config.num_hidden_layers == 2
    assert model.config.vision_config.depth == 2
    assert type(AutoModelForImageTextToText.from_pretrained(model_dir)) is type(model)
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "generation_config.json").is_file()


def test_tokenizer_knows_uitars_text(loaded):
    tokenizer = loaded[0].tokenizer
    text = "Thought: Save it.\nAction: hotkey(key='ctrl s')\ntype(content='=SUM(B2:B11)\\n')"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    for token in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|box_start|>", "<|vision_pad|>"):
        assert tokenizer.convert_tokens_to_ids(token) < 14
        assert tokenizer.tokenize(token) == [token]


def test_screenshot_becomes_small_grid(loaded):
    processor, _ = loaded
    out = processor.image_processor(images=[screenshot()], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [GRID]
    assert GRID[1] * GRID[2] // 4 <= MAX_PIXELS // (UNIT * UNIT)


def test_chat_template_places_vision_tokens(loaded):
    processor, _ = loaded
    text = processor.apply_chat_template(uitars_messages(), add_generation_prompt=True,
                                         tokenize=False)
    assert text.count(VISION) == 2
    assert text.startswith("<|im_start|>system\nYou are a GUI agent.<|im_end|>\n")
    assert "<|im_start|>assistant\nThought: Click cell B12." in text
    assert text.endswith("<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[screenshot(), screenshot()], return_tensors="pt")
    ids = inputs["input_ids"][0]
    assert int((ids == processor.image_token_id).sum()) == 2 * GRID[1] * GRID[2] // 4
    url_message = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        {"type": "text", "text": "What now?"}]}]
    assert VISION + "What now?" in processor.apply_chat_template(url_message, tokenize=False)


def test_generates_on_cpu(loaded):
    import torch

    processor, model = loaded
    inputs = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": screenshot()},
                                      {"type": "text", "text": "Next action?"}]}],
        add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert 1 <= len(new) <= 5
    assert isinstance(processor.decode(new, skip_special_tokens=True), str)


def test_same_seed_same_bytes(model_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (model_dir / name).read_bytes() == (again / name).read_bytes(), name
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()


def test_transformers_serve_answers_chat_with_screenshot(model_dir, tmp_path):
    pytest.importorskip("openai", reason=_REASON.format("openai"))
    from openai import OpenAI

    from cua.recipes import ServeConfig
    from cua.train.serve import ModelServer

    started = time.monotonic()
    server = ModelServer(ServeConfig(model=model_dir), tmp_path / "serve.log").start()
    try:
        startup = time.monotonic() - started
        url = "data:image/png;base64," + base64.b64encode(png_bytes(screenshot())).decode()
        client = OpenAI(base_url=server.base_url, api_key="unused", timeout=120)
        sent = time.monotonic()
        reply = client.chat.completions.create(
            model=server.model, temperature=0, max_tokens=20, messages=[
                {"role": "system", "content": "You are a GUI agent."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Sum column B."},
                    {"type": "image_url", "image_url": {"url": url}}]}])
        latency = time.monotonic() - sent
        print(f"\ntransformers serve: up in {startup:.1f} s, one request {latency:.2f} s")
        assert isinstance(reply.choices[0].message.content, str)
        assert reply.usage.prompt_tokens > GRID[1] * GRID[2] // 4  # the screenshot was seen
        assert 1 <= reply.usage.completion_tokens <= 20
    finally:
        pid = server.proc.pid
        server.stop()
    # nothing of the server's process group runs (its spawned worker included); a zombie waits
    # for init to reap it
    assert not [p for p in procs.group_members(pid) if procs.alive(p)]
