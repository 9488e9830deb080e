"""`cua demo`: a live desktop end to end on generated documents, with no model and no GPU."""

from __future__ import annotations

import time
from pathlib import Path

import openpyxl
from rich.console import Console
from rich.table import Table

from cua.actions import Click, Hotkey, Type
from cua.desktop import registry
from cua.envspec import load_env
from cua.samples import make_workbook

NAME_BOX = Click(x=72, y=140)  # Calc's Name Box on a 1920x1080 desktop


def run_demo(out: Path, backend: str = "local", console: Console | None = None) -> Path:
    """Open a seeded sales workbook in Calc, total its Units column through the keyboard,
    save it through the "Keep current format" dialog and check the saved file."""
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    workbook = make_workbook(out / "sales.xlsx", seed=1)
    rows = openpyxl.load_workbook(workbook).active.max_row
    expected = sum(openpyxl.load_workbook(workbook).active[f"D{r}"].value
                   for r in range(2, rows + 1))
    timings = Table("step", "seconds", title="cua demo: one live Calc desktop")
    with console.status("starting a desktop (Xvfb, openbox, LibreOffice)…"):
        start = time.perf_counter()
        desktop = registry.backend(backend).start()
        timings.add_row("start control server", f"{time.perf_counter() - start:.2f}")
    try:
        report = desktop.reset(load_env("envs/calc.yaml"), [workbook])
        timings.add_row("reset: Calc ready with sales.xlsx", f"{report.seconds:.2f}")
        (out / "before.png").write_bytes(desktop.screenshot_png())
        plan = [NAME_BOX, Type(content=f"D{rows + 1}\n"), Type(content=f"=SUM(D2:D{rows})\n"),
                Hotkey(keys=["ctrl", "s"])]
        for action in plan:
            result = desktop.execute([action]).results[0]
            timings.add_row(f"{action.type} {action.model_dump(exclude={'type'})}",
                            f"{result.seconds:.2f}")
        if any(w.title == "Confirm File Format" for w in desktop.windows()):
            result = desktop.execute([Hotkey(keys=["enter"])]).results[0]
            timings.add_row("answer 'Keep current format'", f"{result.seconds:.2f}")
        (out / "after.png").write_bytes(desktop.screenshot_png())
        saved = out / "sales-saved.xlsx"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            saved.write_bytes(desktop.download("sales.xlsx"))
            total = openpyxl.load_workbook(saved, data_only=True).active[f"D{rows + 1}"].value
            if total is not None:
                break
            time.sleep(0.3)
    finally:
        desktop.close()
    console.print(timings)
    verdict = "[green]verified[/green]" if total == expected else "[red]WRONG[/red]"
    console.print(f"Saved total of Units: {total} (expected {expected}) {verdict}")
    console.print(f"Screenshots and the saved file are in {out}/")
    if total != expected:
        raise SystemExit(1)
    return saved
