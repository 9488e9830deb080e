"""`Scorer`: cua's side of the OSWorld scorer worker (`worker.py` in the scorer venv), one
long-lived process that sets tasks up and scores them with desktop-env's own code."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Literal, Self

from cua.evaluate.osworld import scorer_env
from cua.evaluate.osworld.worker import TEMP_VAR
from cua.records import EvalResult, MetricResult

START_TIMEOUT_S = 180.0  # the worker's first answer: desktop-env imports torch, librosa, …


class ScorerError(RuntimeError):
    """The worker could not carry a request out: its error, a timeout, or a worker that died."""


class Scorer:
    """The scorer worker, started on entry (or on first use) and restarted once when it died.
    `vm` is the worker's view of the desktop (`Bridge.vm`); `cache_dir` the task's cache folder
    (downloads, fetched files); `screen` its size for the setup steps' placeholders. Requests
    from several threads take turns (one worker answers one request at a time)."""

    def __init__(self, python: Path | None = None, log: IO | None = None,
                 setup_timeout_s: float = 1800.0, evaluate_timeout_s: float = 600.0):
        """`python`: the scorer venv's interpreter (default: the installed one); `log`: where
        the worker's stderr goes (default: this process's stderr)."""
        self.python, self.log = python, log
        self.setup_timeout_s, self.evaluate_timeout_s = setup_timeout_s, evaluate_timeout_s
        self.proc: subprocess.Popen | None = None
        self.temp: str | None = None  # the worker's TMPDIR, removed when it ends
        self.replies: queue.Queue[str | None] = queue.Queue()
        self.lock = threading.Lock()

    def __enter__(self) -> Self:
        self.ping()
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def ping(self) -> dict[str, str]:
        """The worker's versions (desktop-env, numpy, …, python)."""
        return self._request({"op": "ping"}, START_TIMEOUT_S)["versions"]

    def setup(self, config: list[dict], vm: dict, cache_dir: Path,
              screen: tuple[int, int] = (1920, 1080)) -> None:
        """Run OSWorld setup steps (`{"type", "parameters"}`) with its SetupController."""
        self._request({"op": "setup", "config": config, "vm": vm, "cache_dir": str(cache_dir),
                       "screen": list(screen)}, self.setup_timeout_s)

    def evaluate(self, evaluator: dict, vm: dict, cache_dir: Path,
                 last_action: Literal["FAIL", "DONE"] | None = None,
                 screen: tuple[int, int] = (1920, 1080)) -> EvalResult:
        """Score a task with its OSWorld evaluator as DesktopEnv.evaluate does (postconfig
        first; `last_action` "FAIL" decides infeasible tasks)."""
        reply = self._request({"op": "evaluate", "evaluator": evaluator, "vm": vm,
                               "cache_dir": str(cache_dir), "screen": list(screen),
                               "last_action": last_action}, self.evaluate_timeout_s)
        return EvalResult(score=reply["score"],
                          details=[MetricResult(**d) for d in reply["details"]])

    def close(self) -> None:
        """Stop the worker (it exits at the end of its input)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._remove_temp()

    # -- plumbing ---------------------------------------------------------------------------------

    def _request(self, request: dict, timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply; a worker found dead, or dying while it
        answers, is restarted and the request sent again, once."""
        with self.lock:
            reply = self._exchange(request, timeout_s)
        if not reply.get("ok"):
            raise ScorerError(f"{request['op']} failed in the scorer worker: {reply['error']}")
        return reply

    def _exchange(self, request: dict, timeout_s: float) -> dict[str, Any]:
        for attempt in (1, 2):
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            reply = self._send(request, timeout_s)
            if reply is not None:
                return reply
            code = self._reap()
            if attempt == 2:
                raise ScorerError(f"the scorer worker died twice during {request['op']!r} "
                                  f"(exit {code}); its stderr says why")

    def _send(self, request: dict, timeout_s: float) -> dict | None:
        """One request and its reply; None when the worker died. A timeout stops the worker."""
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.replies.get(timeout=timeout_s)
        except OSError:  # a broken pipe: it is dead
            return None
        except queue.Empty:
            self.proc.kill()
            self._reap()
            raise ScorerError(f"the scorer worker did not answer {request['op']!r} within "
                              f"{timeout_s:g} s (it was stopped; the next request starts a new "
                              "one)") from None
        return None if line is None else json.loads(line)

    def _start(self) -> None:
        """A new worker, answering: its imports (torch, librosa, …) are not billed to the
        request that follows."""
        python = self.python or scorer_env.python()
        self.replies = queue.Queue()
        self._remove_temp()  # a worker found dead left its own
        self.temp = tempfile.mkdtemp(prefix="cua-scorer-worker-")  # what its imports leave
        self.proc = subprocess.Popen(scorer_env.worker_command(python), text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log,
                                     env={**os.environ, "TMPDIR": self.temp, TEMP_VAR: self.temp})
        threading.Thread(target=_pump, args=(self.proc.stdout, self.replies), daemon=True,
                         name="scorer-replies").start()
        reply = self._send({"op": "ping"}, START_TIMEOUT_S)
        if reply is None or not reply.get("ok"):
            why = reply["error"] if reply else f"exit {self._reap()}; its stderr says why"
            self.close()
            raise ScorerError(f"the scorer worker does not start ({python}): {why}")

    def _reap(self) -> int:
        code, self.proc = self.proc.wait(), None
        self._remove_temp()
        return code

    def _remove_temp(self) -> None:
        temp, self.temp = self.temp, None
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _pump(stream: IO[str], replies: queue.Queue) -> None:
    """Every line the worker writes goes to `replies`; None once it closes its output."""
    for line in stream:
        replies.put(line)
    replies.put(None)
