"""Serving: the vLLM command line cua builds for an agent format (no GPU needed to check it), and
a recipe's `serve` block, which starts the model's server for the run and always stops it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cua.formats import get_format
from cua.recipes import ModelConfig, ServeConfig
from cua.train.serve import ModelServer, serving, tensor_parallel, vllm_args

# What UI-TARS-1.5-7B's files say about its size and pixel bounds.
UITARS_15_7B = {"config.json": {"architectures": ["Qwen2_5_VLForConditionalGeneration"],
                                "num_attention_heads": 28, "num_key_value_heads": 4,
                                "vision_config": {"num_heads": 16}},
                "preprocessor_config.json": {"min_pixels": 3136, "max_pixels": 12845056,
                                             "patch_size": 14, "merge_size": 2}}


def flags(args: list[str]) -> dict[str, str | None]:
    """`--flag value` pairs of a command line (None: a switch)."""
    out, index = {}, 0
    while index < len(args):
        if args[index].startswith("--"):
            value = args[index + 1] if index + 1 < len(args) and not args[
                index + 1].startswith("--") else None
            out[args[index]] = value
            index += 1 + (value is not None)
        else:
            index += 1
    return out


def test_vllm_command_line_for_uitars_15_7b(tmp_path):
    for name, content in UITARS_15_7B.items():
        (tmp_path / name).write_text(json.dumps(content))
    fmt = get_format("uitars-1.5", profile="osworld")
    args = vllm_args(ServeConfig(engine="vllm", model=tmp_path, host="0.0.0.0", port=8000),
                     "ui-tars-1.5-7b", 8000, fmt, 1000, gpus=8)
    assert args[:2] == ["serve", str(tmp_path)]
    given = flags(args)
    assert given["--served-model-name"] == "ui-tars-1.5-7b"
    assert (given["--host"], given["--port"]) == ("0.0.0.0", "8000")
    assert json.loads(given["--limit-mm-per-prompt"]) == {"image": 5, "video": 0}
    assert json.loads(given["--mm-processor-kwargs"]) == {"min_pixels": 3136,
                                                          "max_pixels": 12845056}
    assert given["--max-model-len"] == str(16384 + 1000)
    assert "--enable-prefix-caching" in given and given["--generation-config"] == "vllm"
    assert given["--tensor-parallel-size"] == "4"  # 8 GPUs, but 28 heads split 4 ways at most
    assert tensor_parallel(tmp_path, 1) == 1 and tensor_parallel(tmp_path, 2) == 2
    fewer = vllm_args(ServeConfig(engine="vllm", model=tmp_path, tensor_parallel=2,
                                  max_model_len=9000, args=["--dtype", "bfloat16"]),
                      "m", 1, fmt.replace(history_n=3), 500, gpus=8)
    assert flags(fewer)["--tensor-parallel-size"] == "2" and flags(fewer)["--dtype"] == "bfloat16"
    assert json.loads(flags(fewer)["--limit-mm-per-prompt"])["image"] == 3
    assert flags(fewer)["--max-model-len"] == "9000"


def test_vllm_command_line_for_the_tiny_model(tmp_path):
    pytest.importorskip("transformers", reason="needs the train extra (pip install -e '.[train]')")
    from cua.train.tinymodel import MAX_PIXELS, MIN_PIXELS, build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    server = ModelServer(ServeConfig(engine="vllm", model=model, port=8123), tmp_path / "log",
                         fmt=get_format("uitars-1.5"))
    assert server.model == "tiny" and server.base_url == "http://127.0.0.1:8123/v1"
    line = server.command_line()
    assert line.startswith(f"vllm serve {model} --served-model-name tiny ")
    assert json.loads(flags(server.args)["--mm-processor-kwargs"]) == {
        "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}  # the tiny processor's own bounds


def test_a_serve_block_serves_the_run_and_stops_even_when_it_fails(tmp_path):
    pytest.importorskip("transformers", reason="needs the train extra (pip install -e '.[train]')")
    from cua.evaluate.runner import EvalRecipe
    from cua.train.tinymodel import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    recipe = EvalRecipe(tasks=[tmp_path], model=ModelConfig(name="student", serve=ServeConfig(
        model=model)))
    with pytest.raises(RuntimeError, match="the run failed"):
        with serving(recipe, tmp_path / "logs") as served:
            assert served.model.serve is None and served.model.name == str(model)
            health = served.model.base_url.removesuffix("/v1") + "/health"
            assert httpx.get(health, timeout=10).status_code == 200
            raise RuntimeError("the run failed")
    with pytest.raises(httpx.HTTPError):
        httpx.get(health, timeout=2)
    assert list((tmp_path / "logs").glob("serve-1-transformers.log"))
    with pytest.raises(ValueError, match="base_url"):
        ModelConfig(name="student")


def test_a_missing_engine_is_a_clear_error(tmp_path, monkeypatch):
    from cua.train import serve

    monkeypatch.setattr(serve, "TOOLS", {"transformers": "no-such-tool", "vllm": "no-such-tool"})
    server = ModelServer(ServeConfig(model=Path(tmp_path)), tmp_path / "log")
    with pytest.raises(serve.ServeError, match="`no-such-tool` command is missing"):
        server.start()


def test_a_folder_without_a_model_is_refused_before_the_engine_starts(tmp_path):
    from cua.train import serve

    server = ModelServer(ServeConfig(model=tmp_path), tmp_path / "log")
    with pytest.raises(serve.ServeError, match="is not a model dir"):
        server.start()
    assert server.proc is None and not (tmp_path / "log").exists()


def test_a_server_ends_with_its_killed_owner(tmp_path):
    pytest.importorskip("transformers", reason="needs the train extra (pip install -e '.[train]')")
    from cua.desktop import procs
    from cua.train.tinymodel import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from cua.recipes import ServeConfig; from cua.train.serve import ModelServer; "
         "s = ModelServer(ServeConfig(model=Path(sys.argv[1])), Path(sys.argv[2])).start(); "
         "print(s.proc.pid, s.base_url, flush=True); time.sleep(600)",
         str(model), str(tmp_path / "serve.log")], stdout=subprocess.PIPE, text=True)
    try:
        pid, base_url = owner.stdout.readline().split()
        health = base_url.removesuffix("/v1") + "/health"
        assert httpx.get(health, timeout=10).status_code == 200
        owner.kill()  # SIGKILL: no clean-up of its own
        deadline = time.monotonic() + 30
        while procs.alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not procs.alive(int(pid))
        with pytest.raises(httpx.HTTPError):
            httpx.get(health, timeout=2)
    finally:
        owner.kill()
