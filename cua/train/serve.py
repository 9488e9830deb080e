"""`transformers serve` of a local model dir on 127.0.0.1: an OpenAI-compatible endpoint."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class TransformersServer:
    """Serves `model_dir` until stopped; requests must name the model as `str(model_dir)`."""

    def __init__(self, model_dir: Path, log: Path, port: int | None = None):
        self.model_dir, self.log_path = Path(model_dir), log
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = str(self.model_dir)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180.0) -> TransformersServer:
        cli = Path(sys.executable).with_name("transformers")
        command = str(cli) if cli.exists() else shutil.which("transformers")
        if not command:
            raise RuntimeError("the `transformers` command is missing: pip install 'cua[train]'")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [command, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                 "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **OFFLINE}, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"transformers serve did not come up:\n{tail}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (the server shuts down gracefully), SIGKILL to the group if it lingers."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> TransformersServer:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
