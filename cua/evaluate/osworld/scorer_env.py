"""The scorer venv: a separate virtual environment, pinned to `requirements.txt`, where OSWorld's
own `desktop-env` scores OSWorld tasks (its pins — numpy 1.26, pandas 2.2, torch 2.5 — cannot
live in cua's environment). `cua eval install-scorer` makes it; the scorer worker runs in it."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DESKTOP_ENV = "desktop-env==1.0.2"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
WORKER = Path(__file__).with_name("worker.py")
STAMP = "cua-scorer.json"  # written last: its fingerprint says the venv is complete and current
INSTALL_HINT = "run `cua eval install-scorer` (about 2 minutes and 6.5 GB)"


class ScorerEnvError(RuntimeError):
    """The scorer venv is missing, stale or could not be installed."""


def venv_dir() -> Path:
    """$CUA_OSWORLD_VENV, else $XDG_DATA_HOME (default ~/.local/share)/cua/osworld-venv."""
    if os.environ.get("CUA_OSWORLD_VENV"):
        return Path(os.environ["CUA_OSWORLD_VENV"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "cua" / "osworld-venv"


def fingerprint() -> str:
    """What an installed venv must match: the pins, desktop-env's version, cua's Python."""
    text = f"{REQUIREMENTS.read_text()}\n{DESKTOP_ENV}\n{sys.version_info[:2]}"
    return hashlib.sha256(text.encode()).hexdigest()


def _interpreter(directory: Path) -> Path:
    return directory / "bin" / "python"


def installed(directory: Path | None = None) -> bool:
    """Whether `directory` (default: venv_dir()) holds a complete, current scorer venv."""
    directory = directory or venv_dir()
    try:
        stamp = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("fingerprint") == fingerprint() and _interpreter(directory).exists()


def python(directory: Path | None = None) -> Path:
    """The scorer venv's interpreter; a ScorerEnvError saying what to run when it is absent."""
    directory = directory or venv_dir()
    if not installed(directory):
        state = "is out of date" if (directory / STAMP).exists() else "is not installed"
        raise ScorerEnvError(f"the OSWorld scorer venv at {directory} {state}: {INSTALL_HINT}")
    return _interpreter(directory)


def snippet_env(scratch: Path) -> dict[str, str]:
    """The environment for desktop-env's code run in this venv outside the worker, with `scratch`
    as its working directory: its import side effects neutralised as the worker does in-process
    (no proxy list read from the working directory, no stray .env loaded), none of cua's venv's
    PYTHON* variables."""
    (scratch / "proxies.json").write_text("[]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return env | {"PROXY_CONFIG_FILE": str(scratch / "proxies.json"),
                  "PYTHON_DOTENV_DISABLED": "1"}


@functools.cache
def evaluator_names() -> tuple[frozenset[str], frozenset[str]]:
    """(getter types, metric functions) the installed desktop-env offers (a task file may name
    ones a newer OSWorld added); read once per process from the scorer venv."""
    code = ("import json, desktop_env.evaluators.getters as g, desktop_env.evaluators.metrics as m;"
            "print(json.dumps([[n[4:] for n in dir(g) if n.startswith('get_')], dir(m)]))")
    with tempfile.TemporaryDirectory(prefix="cua-scorer-") as scratch:
        done = subprocess.run([python(), "-I", "-W", "ignore", "-c", code], capture_output=True,
                              text=True, timeout=300, env=snippet_env(Path(scratch)), cwd=scratch)
    if done.returncode != 0:
        raise ScorerEnvError(f"desktop-env does not import: {done.stderr[-2000:]}")
    getters, metrics = json.loads(done.stdout.splitlines()[-1])
    return frozenset(getters), frozenset(metrics)


def install(directory: Path | None = None) -> dict:
    """Make the scorer venv in `directory` (default: venv_dir()) with cua's Python version, the
    pinned requirements, then desktop-env without its dependencies; check that the worker starts.
    A no-op when it is already complete and current. Returns the stamp (versions, fingerprint);
    pip's output goes to `install.log` in the venv."""
    directory = (directory or venv_dir()).absolute()
    if installed(directory):
        return json.loads((directory / STAMP).read_text())
    check_target(directory)
    (directory / STAMP).unlink(missing_ok=True)
    interpreter, log = _interpreter(directory), directory / "install.log"
    if _version(interpreter) != ".".join(map(str, sys.version_info[:2])):
        made = subprocess.run([sys.executable, "-m", "venv", "--clear", directory],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise ScorerEnvError(f"cannot make a venv in {directory}: {made.stderr.strip()}")
    with open(log, "w") as out:
        def run(*args: str | Path) -> None:
            out.write(f"$ {' '.join(map(str, args))}\n")
            out.flush()
            if subprocess.run(args, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise ScorerEnvError(f"{' '.join(map(str, args[:6]))}… failed; the end of "
                                     f"{log}:\n{_tail(log)}")
        pip = (interpreter, "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input")
        run(*pip, "-r", REQUIREMENTS)
        run(*pip, "--no-deps", DESKTOP_ENV)
    stamp = {"fingerprint": fingerprint(), "versions": _ping(interpreter)}
    (directory / STAMP).write_text(json.dumps(stamp, indent=1))
    return stamp


def check_target(directory: Path) -> None:
    """ValueError unless `directory` is new, empty or a venv: making the venv clears it."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file, not a folder for the scorer venv")
    if (directory.is_dir() and any(directory.iterdir())
            and not (directory / "pyvenv.cfg").exists()):
        raise ValueError(f"{directory} holds files and is no venv: choose a new or empty folder")


def worker_command(interpreter: Path) -> list[str]:
    """The worker in isolated mode: neither its own folder (cua's modules) nor PYTHONPATH or the
    user's site-packages on its path; its libraries' deprecation notices are not the user's."""
    return [str(interpreter), "-I", "-W", "ignore::FutureWarning", "-W",
            "ignore::DeprecationWarning", str(WORKER)]


def _version(interpreter: Path) -> str | None:
    """The venv interpreter's major.minor, None when there is no working one."""
    try:
        code = "import sys; print('.'.join(map(str, sys.version_info[:2])))"
        done = subprocess.run([interpreter, "-c", code], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _ping(interpreter: Path) -> dict:
    """Start the worker once and ask for its versions: the venv imports desktop-env."""
    try:
        done = subprocess.run(worker_command(interpreter), input='{"op": "ping"}\n',
                              capture_output=True, text=True, timeout=300)
        reply = json.loads(done.stdout.splitlines()[0])
    except subprocess.TimeoutExpired:
        reply = {"ok": False, "error": "no answer within 300 s"}
    except (IndexError, ValueError):
        reply = {"ok": False, "error": done.stderr[-2000:] or f"exit {done.returncode}"}
    if not reply.get("ok"):
        raise ScorerEnvError(f"the scorer worker does not start in the new venv: {reply['error']}")
    return reply["versions"]


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:]
