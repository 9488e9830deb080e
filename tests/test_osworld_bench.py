"""`cua bench osworld`: stand-ins for the files OSWorld's tasks download, and reset-to-ready with
the untouched state's score of real OSWorld tasks on a real desktop."""

from __future__ import annotations

import json
import tarfile
import zipfile

import openpyxl
import pytest
from PIL import Image

from cua.bench import bench_osworld
from cua.evaluate.osworld.cache import download_name, task_cache
from cua.evaluate.osworld.stand_ins import write_stand_ins
from cua.evaluate.runner import EvalRecipe
from cua.evaluate.taskconfig import TaskConfig
from tests.conftest import require_desktop_tools
from tests.test_osworld_eval import OSWORLD
from tests.test_osworld_scorer import scorer_venv_or_skip

KINDS = ["book.xlsx", "deck.pptx", "memo.docx", "photo.png", "scan.pdf", "rows.csv", "code.py",
         "bundle.zip", "bundle.tar.gz", "song.mp3"]


def downloading(names: list[str]) -> TaskConfig:
    files = [{"url": f"https://example.org/{n}", "path": f"/home/user/{n}"} for n in names]
    return TaskConfig.model_validate({
        "id": "t1", "instruction": "x", "config": [{"type": "download",
                                                    "parameters": {"files": files}}],
        "evaluator": {"func": "compare_table",
                      "result": {"type": "vm_file", "path": "/home/user/book.xlsx",
                                 "dest": "book.xlsx"},
                      "expected": {"type": "cloud_file", "path": "https://example.org/gold.xlsx",
                                   "dest": "book_gold.xlsx"}}})


def test_stand_ins_are_files_of_their_kind_and_the_gold_differs(tmp_path):
    task = downloading(KINDS)
    folder = task_cache(tmp_path, task)
    folder.mkdir(parents=True)
    kept = folder / download_name("https://example.org/code.py", "/home/user/code.py")
    kept.write_text("print('mine')\n")
    written, problems = write_stand_ins(task, tmp_path)
    assert problems == [f"{download_name('https://example.org/song.mp3', '/home/user/song.mp3')}"
                        ": no stand-in for .mp3 files"]
    assert len(written) == len(KINDS) - 2 + 1 and kept.read_text() == "print('mine')\n"
    path = {n: folder / download_name(f"https://example.org/{n}", f"/home/user/{n}")
            for n in KINDS}
    book, gold = openpyxl.load_workbook(path["book.xlsx"]), openpyxl.load_workbook(
        folder / "book_gold.xlsx")
    assert [[c.value for c in r] for r in book.active.iter_rows(max_row=3)] != [
        [c.value for c in r] for r in gold.active.iter_rows(max_row=3)]
    assert Image.open(path["photo.png"]).size == (640, 400)
    assert path["scan.pdf"].read_bytes().startswith(b"%PDF")
    assert path["rows.csv"].read_text().startswith("Region,Product,Units")
    folder = ["bundle/notes.txt", "bundle/sales.csv"]  # unpacked, a folder named as the archive
    assert zipfile.ZipFile(path["bundle.zip"]).namelist() == folder
    assert tarfile.open(path["bundle.tar.gz"]).getnames() == folder
    for name in ("deck.pptx", "memo.docx"):
        assert zipfile.is_zipfile(path[name])


def test_bench_sets_real_tasks_up_and_scores_their_untouched_state(tmp_path):
    require_desktop_tools()
    scorer_venv_or_skip()
    test_list = OSWORLD.parent / "test_all.json"
    if not test_list.exists():
        pytest.skip(f"{test_list} is absent (../shared is beside the checkout only)")
    small = tmp_path / "four.json"
    listed = json.loads(test_list.read_text())
    chosen = {"libreoffice_calc": listed["libreoffice_calc"][:2],
              "libreoffice_impress": listed["libreoffice_impress"][:1],
              "libreoffice_writer": listed["libreoffice_writer"][:1]}
    small.write_text(json.dumps(chosen))
    recipe = EvalRecipe(tasks=[OSWORLD], test_list=small, backend="local",
                        allow_host_commands=True, model={"name": "scripted"},
                        cache=tmp_path / "untouched")
    seen = []
    figures = bench_osworld(recipe, stand_ins=True, limit=None, scorer_log=tmp_path / "log",
                            on_task=lambda row, done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and not (tmp_path / "untouched").exists()
    for domain, ids in chosen.items():
        row = figures["domains"][domain]
        assert row["tasks"] == len(ids) and row["errors"] == 0, figures["tasks"]
        assert row["initial_fails"] + row["initial_passes"] == len(ids)
    assert 0 < figures["all"]["p50"] < 60 and figures["ready_ratio"] > 1
    assert all(row["ready_s"] > 0 for row in figures["tasks"])
    assert (tmp_path / "log").is_file()  # where desktop-env's messages went, not stderr
