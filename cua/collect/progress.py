"""One progress bar for episodes, in collection and evaluation alike: outcome counts and rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cua.records import EpisodeRecord


class EpisodeProgress:
    """`with EpisodeProgress(console, "episodes", total, done) as bar: bar.add(record)`; `done`
    are the records of an earlier run that count as finished (resume)."""

    def __init__(self, console: Console, label: str, total: int, done: Iterable[EpisodeRecord]):
        self.counts = Counter(record.outcome for record in done)
        self.started, self.finished_now = time.monotonic(), 0
        self.progress = Progress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]success {task.fields[success]}[/green] · failure "
                       "{task.fields[failure]} · infeasible {task.fields[infeasible]} · "
                       "[red]error {task.fields[error]}[/red] · {task.fields[rate]} "
                       "{task.fields[last]}"),
            TimeElapsedColumn(), console=console)
        self.bar = self.progress.add_task(label, total=total,
                                          completed=sum(self.counts.values()),
                                          **self._fields(""))

    def __enter__(self) -> EpisodeProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def add(self, record: EpisodeRecord) -> None:
        self.counts[record.outcome] += 1
        self.finished_now += 1
        self.progress.update(self.bar, advance=1, **self._fields(record.id))

    def _fields(self, last: str) -> dict[str, object]:
        hours = max(time.monotonic() - self.started, 1e-9) / 3600
        rate = f"{self.finished_now / hours:.0f}/h" if self.finished_now else "…"
        return {"success": self.counts["success"], "failure": self.counts["failure"],
                "infeasible": self.counts["infeasible"], "error": self.counts["error"],
                "rate": rate, "last": f"· {last}" if last else ""}
