"""The `cua desktop` commands as a user runs them, each call its own process."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from cua.desktop import procs
from cua.samples import make_workbook
from tests.conftest import require_desktop_tools


def cua(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cua", *args], capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_up_shot_act_down(tmp_path):
    require_desktop_tools()
    workbook = make_workbook(tmp_path / "sales.xlsx")
    desktop_id = cua("desktop", "up", "--env", "envs/calc.yaml", "--open",
                     str(workbook)).stdout.strip().splitlines()[-1]
    try:
        cua("desktop", "shot", desktop_id, "-o", str(tmp_path / "shot.png"))
        assert Image.open(tmp_path / "shot.png").size == (1920, 1080)
        refused = cua("desktop", "act", desktop_id, "click(start_box='(5000,10)')", check=False)
        assert refused.returncode == 1 and "outside" in refused.stdout
        cua("desktop", "act", desktop_id, "click(start_box='(72,140)')", "type(content='K5\\n')",
            "type(content='42\\n')", "hotkey(key='ctrl s')", "hotkey(key='enter')")
        listed = cua("desktop", "list").stdout
        assert desktop_id in listed
    finally:
        cua("desktop", "down", desktop_id)
    assert procs.marked_pids(desktop_id) == []
    assert desktop_id not in cua("desktop", "list").stdout


def test_unknown_desktop_is_a_clear_error():
    result = cua("desktop", "shot", "nosuchid", check=False)
    assert result.returncode != 0
    assert "no desktop 'nosuchid'" in result.stdout + result.stderr


def test_recipe_with_an_unknown_family_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nout: {tmp_path / 'runs'}\ncontent: {{generate: {{workbooks: 1}}}}"
                      "\nenvs: [calc]\nfamilies: [calc.bold_header, calc.bold_everything]\n")
    result = cua("collect", "--recipe", str(recipe), check=False)
    assert result.returncode == 1
    assert "unknown template families calc.bold_everything" in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was made
