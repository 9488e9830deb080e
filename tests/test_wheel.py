"""A non-editable install works: the wheel carries the env specs, the role prompts and py.typed,
and a command run from it finds them (no checkout on the path)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from cua.content.documents import make_document

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_runs_a_command_away_from_the_checkout(tmp_path):
    source, dist = tmp_path / "source", tmp_path / "dist"  # a copy: the build leaves no trace
    shutil.copytree(ROOT / "cua", source / "cua", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(source)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = dist.glob("cua-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"cua/py.typed", "cua/envs/calc.yaml", "cua/prompts/goal.md",
            "cua/prompts/judge.md", "cua/evaluate/osworld/no-proxies.json"} <= set(names)
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    found = subprocess.run(
        [sys.executable, "-c", "import cua, cua.collect.roles as roles, cua.envspec as envspec; "
         "print(cua.__file__); envspec.load_env('calc-writer'); "
         "print(sorted(p.name for p in roles.PROMPTS.iterdir()))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(str(site)) and "['goal.md', 'judge.md']" in found.stdout
    docs = tmp_path / "docs"
    docs.mkdir()
    make_document(docs / "memo.docx", seed=2)
    made = subprocess.run([sys.executable, "-m", "cua", "eval", "make", str(docs), "--out",
                           str(tmp_path / "tasks"), "--family", "writer.replace_word"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert list((tmp_path / "tasks" / "libreoffice_writer").glob("*.json"))
