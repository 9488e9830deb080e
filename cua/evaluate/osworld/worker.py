"""cua's OSWorld scorer worker: a standalone script run by the scorer venv's Python (it imports only
the standard library and desktop_env), so OSWorld's own code sets tasks up and scores them.

Protocol: one JSON request per line on stdin, one JSON reply per line on a private descriptor
(the process's original stdout; fd 1 is pointed at stderr, so a metric's print() cannot corrupt
a reply). Requests:
  {"op": "ping"}                                  -> {"ok": true, "versions": {...}}
  {"op": "setup", "config": [...], "vm": VM, "cache_dir": D, "screen": [w, h]}
                                                  -> {"ok": true}
  {"op": "evaluate", "evaluator": {...}, "vm": VM, "cache_dir": D, "screen": [w, h],
   "last_action": "FAIL" | "DONE" | null}         -> {"ok": true, "score": s, "details": [...]}
VM = {"host", "server_port", "chromium_port", "vlc_port"}; "screen" is optional (1920x1080).
Any failure is {"ok": false, "error": "..."} (the traceback goes to stderr); the worker lives on.
"""

import json
import logging
import os
import shutil
import sys
import traceback
from importlib import metadata
from types import SimpleNamespace

# For `sudo -S` in task steps: the desktop user's password (docker/Dockerfile), as on OSWorld's VM.
CLIENT_PASSWORD = "password"
TEMP_VAR = "CUA_SCORER_TEMP"  # a folder made for this worker (its TMPDIR), removed when it exits


def _private_replies():
    """A line-buffered writer on a copy of the real stdout; fd 1 becomes stderr."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return replies


def _neutralise_imports():
    """desktop_env's import side effects: no proxy list read from the working directory (an
    empty one shipped beside this file instead), no stray .env loaded into the environment, no
    per-call DEBUG handler on the pptx metric."""
    os.environ["PROXY_CONFIG_FILE"] = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "no-proxies.json")
    os.environ["PYTHON_DOTENV_DISABLED"] = "1"  # python-dotenv >= 1.1 honours it
    debug = logging.getLogger("desktopenv.metric.slides.debug")
    debug.addHandler(logging.NullHandler())
    debug.propagate = False


def _controllers(request):
    """OSWorld's SetupController, and the `env` object its getters read, for request's VM."""
    from desktop_env.controllers.python import PythonController
    from desktop_env.controllers.setup import SetupController

    vm, cache_dir = request["vm"], request["cache_dir"]
    host, port = vm["host"], int(vm["server_port"])
    chromium, vlc = int(vm.get("chromium_port", 9222)), int(vm.get("vlc_port", 8080))
    width, height = request.get("screen") or (1920, 1080)
    os.makedirs(cache_dir, exist_ok=True)
    setup = SetupController(vm_ip=host, server_port=port, chromium_port=chromium, vlc_port=vlc,
                            cache_dir=cache_dir, client_password=CLIENT_PASSWORD,
                            screen_width=width, screen_height=height)
    env = SimpleNamespace(vm_ip=host, server_port=port, chromium_port=chromium, vlc_port=vlc,
                          cache_dir=cache_dir, controller=PythonController(host, port),
                          vm_platform="Linux", current_use_proxy=False)
    return setup, env


def _run_setup(controller, config):
    if not controller.setup(config, False):
        raise ConnectionError(f"the desktop at {controller.http_server} did not answer "
                              "GET /terminal (OSWorld's liveness probe, 20 tries)")


def ping(_request):
    names = ("desktop-env", "numpy", "pandas", "openpyxl", "pillow", "torch")
    versions = {name: metadata.version(name) for name in names}
    import desktop_env.controllers.setup  # noqa: F401 - imports every metric and getter
    return {"ok": True, "versions": {**versions, "python": sys.version.split()[0]}}


def setup(request):
    controller, _ = _controllers(request)
    _run_setup(controller, request["config"])
    return {"ok": True}


def _plan(evaluator):
    """[(func, metric, result config, expected config or None, options)] of the evaluator, every
    metric and getter resolved before anything runs (as OSWorld does at reset)."""
    from desktop_env.evaluators import getters, metrics

    funcs = evaluator["func"]
    if isinstance(funcs, list):
        n = len(funcs)
        results, expected = evaluator.get("result") or [None] * n, evaluator.get("expected")
        expected = expected or [None] * n
        options = evaluator.get("options") or [None] * n
        if not all(isinstance(x, list) and len(x) == n for x in (results, expected, options)):
            raise ValueError(f"func is a list of {n}: result, expected and options must be "
                             f"lists of {n} too")
    else:
        funcs, results = [funcs], [evaluator.get("result")]
        expected, options = [evaluator.get("expected")], [evaluator.get("options")]

    def getter(config):
        if not config:
            return None
        name = f"get_{config['type']}"
        if not hasattr(getters, name):
            raise ValueError(f"desktop_env has no getter {name}")
        return getattr(getters, name)

    plan = []
    for func, result, exp, opts in zip(funcs, results, expected, options, strict=True):
        if not hasattr(metrics, func):
            raise ValueError(f"desktop_env has no metric {func!r}")
        if not result:
            raise ValueError(f"metric {func!r} has no result getter")
        plan.append((func, getattr(metrics, func), result, getter(result), exp, getter(exp),
                     opts or {}))
    return plan


def _score(env, step):
    """One metric's {func, score}: a result file that is not there scores 0, as in OSWorld (where,
    under "or", it would reuse the previous metric's state instead)."""
    func, metric, result, result_getter, expected, expected_getter, options = step
    try:
        state = result_getter(env, result)
    except FileNotFoundError as exc:
        return {"func": func, "score": 0.0, "error": f"file not found: {exc}"}
    args = [state, expected_getter(env, expected)] if expected_getter else [state]
    return {"func": func, "score": float(metric(*args, **options))}


def evaluate(request):
    """DesktopEnv.evaluate's behaviour: postconfig; `infeasible` scores 1 only after FAIL, any
    other task 0 after FAIL; one metric's score, or several combined by `conj` ("and": 0 at the
    first 0, else the mean; "or": 1 at the first 1, else the max)."""
    evaluator, last_action = request["evaluator"], request.get("last_action")
    infeasible = evaluator["func"] == "infeasible"
    plan = [] if infeasible else _plan(evaluator)
    controller, env = _controllers(request)
    _run_setup(controller, evaluator.get("postconfig", []))
    if infeasible or last_action == "FAIL":
        score = float(infeasible and last_action == "FAIL")
        reason = "the agent answered FAIL" if last_action == "FAIL" else "no FAIL answer"
        return {"ok": True, "score": score,
                "details": [{"func": "infeasible" if infeasible else "FAIL", "score": score,
                             "reason": reason}]}
    decisive = 1.0 if evaluator.get("conj", "and") == "or" else 0.0
    details = []
    for step in plan:  # a single metric is the same loop: its score is the total
        details.append(_score(env, step))
        if details[-1]["score"] == decisive:
            return {"ok": True, "score": decisive, "details": details}
    scores = [d["score"] for d in details]
    total = max(scores) if decisive else sum(scores) / len(scores)
    return {"ok": True, "score": total, "details": details}


OPS = {"ping": ping, "setup": setup, "evaluate": evaluate}


def main():
    replies = _private_replies()
    _neutralise_imports()
    try:
        _serve(replies)
    finally:  # the folder made for this worker alone: gone with it, also if its owner died first
        if os.environ.get(TEMP_VAR):
            shutil.rmtree(os.environ[TEMP_VAR], ignore_errors=True)


def _serve(replies) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request.get("op")
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
            reply = OPS[op](request)
        except Exception as exc:  # noqa: BLE001 - every failure is a reply, never an exit
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
