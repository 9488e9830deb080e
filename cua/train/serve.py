"""Serving a local model dir as an OpenAI-compatible endpoint: `transformers serve` (the CPU
default) or vLLM (GPU hosts), with the flags the agent format needs; `serving` starts the servers
a recipe's model configs ask for and always stops them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel

from cua.data.expand import ExpandConfig
from cua.desktop import procs
from cua.desktop.waiting import WaitTimeout, wait_until
from cua.formats import AgentFormat, get_format, model_bounds
from cua.recipes import ModelConfig, ServeConfig

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
TOOLS = {"transformers": "transformers", "vllm": "vllm"}  # each engine's command line tool
# Tokens of one request: the budget cua's SFT samples are cut to.
SAMPLE_BUDGET = ExpandConfig.model_fields["max_tokens"].default
R = TypeVar("R", bound=BaseModel)


DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []


class ServeError(RuntimeError):
    """The engine is missing, or its server did not come up (the message holds its log's end)."""


def engine_command(engine: str) -> str:
    """The engine's command line tool, from this environment or PATH."""
    tool = TOOLS[engine]
    local = Path(sys.executable).with_name(tool)
    found = str(local) if local.exists() else shutil.which(tool)
    if not found:
        extra = {"vllm": "pip install 'cua[vllm]' (on a GPU host)"}.get(
            engine, "pip install 'cua[train]'")
        raise ServeError(f"the `{tool}` command is missing: {extra}")
    return found


def check_model_dir(model: Path) -> None:
    """Raise ServeError unless `model` is a local model dir: nothing downloads at run time."""
    if not (model / "config.json").is_file():
        raise ServeError(f"{model} is not a model dir (no config.json)")


def transformers_args(config: ServeConfig, port: int) -> list[str]:
    """`transformers serve` on the CPU; requests name the model by its path."""
    return ["serve", str(config.model), "--host", config.host, "--port", str(port),
            "--device", "cpu", *config.args]


def vllm_args(config: ServeConfig, name: str, port: int, fmt: AgentFormat, max_tokens: int,
              gpus: int) -> list[str]:
    """`vllm serve` for an agent format: the served name, as many images per prompt as the format
    sends and no video, the processor's pixel bounds (vLLM then neither resizes again nor reserves
    memory for its far larger default), room for a sample plus the reply, prefix caching (each
    step extends the previous request), tensor parallelism over the GPUs present as far as the
    model's heads divide, and only the request's sampling parameters (not generation_config's)."""
    bounds = {k: v for k, v in model_bounds(fmt.name, config.model).items()
              if k in ("min_pixels", "max_pixels")}
    return ["serve", str(config.model), "--served-model-name", name,
            "--host", config.host, "--port", str(port),
            "--limit-mm-per-prompt", json.dumps({"image": fmt.history_n, "video": 0}),
            "--mm-processor-kwargs", json.dumps(bounds),
            "--max-model-len", str(config.max_model_len or SAMPLE_BUDGET + max_tokens),
            "--enable-prefix-caching", "--generation-config", "vllm",
            "--tensor-parallel-size", str(config.tensor_parallel
                                          or tensor_parallel(config.model, gpus)),
            *config.args]


def tensor_parallel(model: Path, gpus: int) -> int:
    """The most GPUs up to `gpus` that divide the model's attention heads (text and vision)."""
    config = json.loads((model / "config.json").read_text())
    text = config.get("text_config") or config
    heads = [text.get("num_attention_heads"), (config.get("vision_config") or {}).get("num_heads")]
    heads = [h for h in heads if h]
    return max(n for n in range(1, max(gpus, 1) + 1) if all(h % n == 0 for h in heads))


def gpus_present() -> int:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if not shutil.which("nvidia-smi"):
        return 0
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())


class ModelServer:
    """One engine serving a model dir until stopped; `model` is the name requests use."""

    def __init__(self, config: ServeConfig, log: Path, name: str | None = None,
                 fmt: AgentFormat | None = None, max_tokens: int = 1000):
        self.config, self.log_path = config, log
        self.port = config.port or free_port()
        host = socket.gethostname() if config.host in ("0.0.0.0", "::") else config.host
        self.base_url = f"http://{host}:{self.port}/v1"
        if config.engine == "vllm":
            self.model = name or config.model.name
            self.args = vllm_args(config, self.model, self.port, fmt or get_format("uitars-1.5"),
                                  max_tokens, gpus_present())
        else:
            self.model = str(config.model)
            self.args = transformers_args(config, self.port)
        self.proc: subprocess.Popen | None = None

    def command_line(self) -> str:
        return shlex.join([TOOLS[self.config.engine], *self.args])

    def start(self) -> ModelServer:
        """Start the engine and wait until it answers. It gets SIGTERM when the thread that
        started it ends (util-linux's `setpriv --pdeathsig`): a killed run leaves no server."""
        command = [*DIE_WITH_PARENT, engine_command(self.config.engine), *self.args]
        check_model_dir(self.config.model)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **OFFLINE}, start_new_session=True)
        health = self.base_url.removesuffix("/v1") + "/health"
        try:
            wait_until(lambda: self.proc.poll() is not None or answers(health),
                       self.config.timeout_s, 0.2, f"{self.config.engine} to answer")
            if self.proc.poll() is None:
                return self
        except WaitTimeout:
            pass
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise ServeError(f"{self.config.engine} did not come up (log: {self.log_path}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the server's whole process group (it shuts down gracefully; transformers
        serve's spawned worker would otherwise outlive it a while), SIGKILL to what lingers."""
        if self.proc is None:
            return
        procs.stop(self.proc, grace_s=30)
        self.proc = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


@contextmanager
def serving(recipe: R, logs: Path) -> Iterator[R]:
    """`recipe` with each model config that has a `serve` block pointed at a server started for
    it (one per distinct block; logs in `logs`), stopped on leaving, whatever happened."""
    fmt = get_format(recipe.agent_format, **recipe.agent_format_options)
    with ExitStack() as stack:
        servers: dict[str, ModelServer] = {}

        def served(config: ModelConfig | None) -> ModelConfig | None:
            if config is None or config.serve is None:
                return config
            key = config.serve.model_dump_json()
            if key not in servers:
                log = logs / f"serve-{len(servers) + 1}-{config.serve.engine}.log"
                servers[key] = stack.enter_context(
                    ModelServer(config.serve, log, config.name, fmt, config.max_tokens))
            server = servers[key]
            return config.model_copy(update={"name": server.model, "base_url": server.base_url,
                                             "serve": None})

        update = {"model": served(recipe.model)}
        if roles := getattr(recipe, "roles", None):
            update["roles"] = roles.model_copy(update={
                role: served(getattr(roles, role)) for role in type(roles).model_fields})
        yield recipe.model_copy(update=update)


def answers(url: str) -> bool:
    """`url` answers 200 (within 2 s)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
