"""Real round trips on live desktops (local processes and docker containers): open a real
document, edit it with canonical actions, save it through the Keep-format dialog, read it back."""

from __future__ import annotations

import io
import shutil

import docx
import openpyxl
import pptx
from PIL import Image

from cua.actions import Click, Hotkey, Type
from cua.envspec import load_env
from tests.conftest import wait_for_change

NAME_BOX = Click(x=72, y=140)  # Calc's Name Box at 1920x1080 with the default toolbars


def save_keeping_format(desktop) -> None:
    """ctrl+s, then answer LibreOffice's "Keep current format" dialog with its default. The
    actions request answers with the screen after it (one request per step): the dialog is there."""
    report = desktop.execute([Hotkey(keys=["ctrl", "s"])], observe=True)
    titles = [w.title for w in report.screen.windows]
    assert "Confirm File Format" in titles, titles  # shown by default, as in OSWorld's VM
    assert Image.open(io.BytesIO(report.screen.png)).size == (1920, 1080)
    assert desktop.execute([]).screen is None  # only when asked
    desktop.execute([Hotkey(keys=["enter"])])


def test_calc_roundtrip(desktop, shared_content, tmp_path):
    source = tmp_path / "SampleSS.xlsx"
    shutil.copy(shared_content / "xlsx" / "DataTableCities.xlsx", source)
    report = desktop.reset(load_env("calc"), [source])
    assert any("SampleSS.xlsx - LibreOffice Calc" == w.title for w in report.windows)
    image = Image.open(io.BytesIO(desktop.screenshot_png()))
    assert (image.format, image.size) == ("PNG", (1920, 1080))
    before = desktop.download("SampleSS.xlsx")
    result = desktop.execute([NAME_BOX, Type(content="H40\n"), Type(content="42\n"),
                              Type(content="=H40*2+1\n")])
    assert all(r.ok and r.settle.settled for r in result.results)
    save_keeping_format(desktop)
    saved = tmp_path / "saved.xlsx"
    saved.write_bytes(wait_for_change(desktop, "SampleSS.xlsx", before))
    sheet = openpyxl.load_workbook(saved).active
    assert sheet["H40"].value == 42
    assert sheet["H41"].value == "=H40*2+1"
    assert openpyxl.load_workbook(saved, data_only=True).active["H41"].value == 85


def test_writer_roundtrip(desktop, shared_content, tmp_path):
    source = tmp_path / "memo.docx"
    shutil.copy(shared_content / "docx" / "sample.docx", source)
    desktop.reset(load_env("writer"), [source])
    before = desktop.download("memo.docx")
    text = "Totals <5> and >3 für 3 € — 中文"
    desktop.execute([Hotkey(keys=["ctrl", "end"]), Type(content=f"\n{text}\tend\n")])
    save_keeping_format(desktop)
    saved = tmp_path / "saved.docx"
    saved.write_bytes(wait_for_change(desktop, "memo.docx", before))
    paragraphs = [p.text for p in docx.Document(saved).paragraphs]
    assert f"{text}\tend" in paragraphs, paragraphs[-3:]


def test_impress_roundtrip(desktop, shared_content, tmp_path):
    source = tmp_path / "deck.pptx"
    shutil.copy(shared_content / "pptx" / "themes.pptx", source)
    desktop.reset(load_env("impress"), [source])
    before = desktop.download("deck.pptx")
    desktop.execute([Click(x=900, y=500), Hotkey(keys=["tab"]), Hotkey(keys=["enter"]),
                     Hotkey(keys=["ctrl", "a"]), Type(content="Edited by cua"),
                     Hotkey(keys=["esc"]), Hotkey(keys=["esc"])])
    save_keeping_format(desktop)
    saved = tmp_path / "saved.pptx"
    saved.write_bytes(wait_for_change(desktop, "deck.pptx", before))
    first = pptx.Presentation(saved).slides[0]
    texts = [shape.text_frame.text for shape in first.shapes if shape.has_text_frame]
    assert "Edited by cua" in texts, texts


def test_every_printable_ascii_character_types_as_itself(desktop, tmp_path):
    """Keystrokes, not a paste, for all 95 printable ASCII characters, shifted ones included
    (`<` on X's default keymap is where pyautogui's own key table types `>`)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("")
    desktop.reset(load_env("editor"), [notes])
    printable = "".join(map(chr, range(0x20, 0x7F)))
    result = desktop.execute([Type(content=printable + "\n"), Hotkey(keys=["ctrl", "s"])])
    assert all(r.ok for r in result.results), result.results
    assert wait_for_change(desktop, "notes.txt", b"").decode() == printable + "\n"
