"""The accessibility tree's piece that needs no desktop: the search for a sheet's showing cells
(OSWorld's order and stopping rules) over a sheet that answers as Calc's does. The tree read
from live apps is tested in test_osworld_eval (Impress, Chrome)."""

from __future__ import annotations

import math

import pytest

from cua.desktop import atspi
from cua.desktop.atspi import STATES, Ref

COLUMNS = 16384  # LibreOffice 7.4 on


class SheetBus:
    """A sheet whose cells in `rows` x `columns` are on screen."""

    deadline = math.inf

    def __init__(self, rows: range, columns: range):
        self.rows, self.columns, self.asked = rows, columns, 0

    def calls(self, calls):
        self.asked += len(calls)
        return [self._answer(c) for c in calls]

    def _answer(self, call):
        if call.method == "GetChildAtIndex":
            return (":1.7", f"/cell/{call.args[0]}")
        row, column = divmod(int(call.ref.path.rsplit("/", 1)[1]), COLUMNS)
        showing = row in self.rows and column in self.columns
        return [1 << STATES.index("showing") if showing else 0, 0]


@pytest.fixture(autouse=True)
def libreoffice_7_4(monkeypatch):
    monkeypatch.setattr(atspi, "libreoffice_version", lambda: (7, 4, 7, 2))


def cells(rows: range, columns: range) -> list[tuple[str, str]]:
    return [(":1.7", f"/cell/{r * COLUMNS + c}") for r in rows for c in columns]


@pytest.mark.parametrize("rows, columns", [(range(0, 47), range(0, 23)),
                                           (range(30, 40), range(5, 12))])
def test_showing_cells_are_found_row_by_row(rows, columns):
    bus = SheetBus(rows, columns)
    assert atspi._showing_cells(bus, Ref(":1.7", "/table")) == cells(rows, columns)


def test_a_sheet_scrolled_past_the_search_limits_shows_no_cell():
    bus = SheetBus(range(600, 610), range(0, 10))
    assert atspi._showing_cells(bus, Ref(":1.7", "/table")) == []
    assert bus.asked < 2 * 502 * 512  # rows 0-500, columns 0-500 in chunks, as OSWorld gives up

