"""cua's `compare_table` gives the score OSWorld's own does (desktop-env's
`desktop_env.evaluators.metrics.table.compare_table`, run in the scorer venv) for the rules cua's
own task families emit: `check_cell` with `value` (eq, ne, re, approx:T) and `font_bold` (eq, ne)
props on the result's sheets by name, and `sheet_data`. The cases are built from the real cells of
every workbook in ../shared/content: the values, headers, empty and bold cells the families read,
a deliberately wrong value of each kind, and `sheet_data` of each workbook against itself, a
re-saved and an edited copy.

desktop-env scores every case in one subprocess of the scorer venv's Python (JSON over stdin and
stdout), with its import side effects neutralised as cua's OSWorld worker does.

Known differences, in inputs no family meets, are left out (see cua/scoring/metrics/table.py): an
inline string with surrounding whitespace (below), and sheet_data between sheets that differ only
in what pandas converts (numeric text, "True"/"False" text, booleans beside empty cells), which no
case here compares: the families' sheet_data compares a sheet with itself.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from cua.collect.expert.calc import (
    BOLD,
    EMPTY,
    NOT_BOLD,
    cell_rule,
    header_check,
    norm,
    number_check,
    value_check,
)
from cua.evaluate.osworld import scorer_env
from cua.scoring.metrics.table import compare_table
from tests.test_osworld_scorer import scorer_venv_or_skip

CONTENT = Path(__file__).resolve().parents[2] / "shared" / "content"
BIG = 10_000  # cells: a workbook this big takes a second to load, so it gets only a few cases

# Run by the scorer venv's Python: score each case with desktop-env's compare_table.
DESKTOP_ENV = textwrap.dedent("""
    import json, logging, os, sys
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # a print() inside desktop_env cannot corrupt the reply
    logging.disable(logging.CRITICAL)  # it logs every failed read
    from desktop_env.evaluators.metrics.table import compare_table
    scores = []
    for case in json.load(sys.stdin):
        try:
            scores.append(float(compare_table(case["result"], case["expected"],
                                              rules=case["rules"])))
        except Exception as e:
            scores.append(f"{type(e).__name__}: {e}")
    json.dump(scores, replies)
""")


def workbooks() -> list[Path]:
    return sorted(CONTENT.rglob("*.xlsx")) if CONTENT.is_dir() else []


def load(path: Path, data_only: bool = False) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(path, data_only=data_only)


def spread(items: list, n: int) -> list:
    """At most `n` (> 1) of `items`, evenly spread, the first and the last kept."""
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def case(result: Path, rules: list[dict], expected: Path | None = None,
         expect: float | None = None) -> dict:
    return {"result": str(result), "expected": None if expected is None else str(expected),
            "rules": rules, "expect": expect}


def check_cell_cases(path: Path, styles: openpyxl.Workbook, values: openpyxl.Workbook, big: bool
                     ) -> list[dict]:
    """check_cell rules from real cells, shaped as the families shape them: of every kind on the
    first sheet with content, a number and a text on the second (none of a big workbook's)."""
    # An inline string with surrounding whitespace reads stripped in OSWorld, as is in cua. No
    # family result holds one (LibreOffice writes text as shared strings, never inline), so padded
    # text is left out of workbooks that hold inline strings.
    with zipfile.ZipFile(path) as archive:
        inline = any(b't="inlineStr"' in archive.read(name) for name in archive.namelist()
                     if name.startswith("xl/worksheets/") and name.endswith(".xml"))
    cases = []
    for n, ws in enumerate([ws for ws in styles.worksheets if ws._cells][:1 if big else 2]):
        kinds: dict[str, list] = {k: [] for k in ("number", "text", "padded text", "boolean",
                                                   "bold", "plain", "bold text", "empty")}
        for (row, col), cell in sorted(ws._cells.items()):
            value = values[ws.title].cell(row, col).value
            if cell.value is None:
                kinds["empty"].append((cell.coordinate, None))
                continue
            if isinstance(value, bool):
                kinds["boolean"].append((cell.coordinate, value))
            elif isinstance(value, (int, float)):
                kinds["number"].append((cell.coordinate, value))
            elif isinstance(value, str) and value.strip() and not value.startswith("="):
                if value == value.strip():
                    kinds["text"].append((cell.coordinate, value))
                elif inline:
                    continue
                else:
                    kinds["padded text"].append((cell.coordinate, value))
                if cell.font.b:
                    kinds["bold text"].append((cell.coordinate, value))
            kinds["bold" if cell.font.b else "plain"].append((cell.coordinate, value))
        pick = {k: spread(v, 2) for k, v in kinds.items()}

        def add(kind: str, i: int, expect: float | None = None, **checks) -> None:
            if len(pick[kind]) > i:
                coordinate, value = pick[kind][i]
                props = {prop: check(value) for prop, check in checks.items()}
                cases.append(case(path, [cell_rule(ws.title, coordinate, **props)], expect=expect))

        add("number", 0, value=lambda v: value_check(norm(v)))
        add("text", 0, value=lambda v: value_check(norm(v)))
        if n:
            continue
        add("number", 1, expect=0, value=lambda v: number_check(float(v) + max(abs(v), 1)))
        add("text", 1, value=lambda v: header_check(v.strip()))
        add("padded text", 0, value=lambda v: value_check(norm(v)))
        add("empty", 0, value=lambda v: EMPTY)
        add("bold", 0, font_bold=lambda v: BOLD)
        add("plain", 0, font_bold=lambda v: NOT_BOLD)
        if big:
            continue
        add("text", 1, expect=0, value=lambda v: {"method": "eq", "ref": v + "x"})
        add("text", 0, expect=0, value=lambda v: header_check(v.strip() + "x"))
        add("boolean", 0, value=lambda v: EMPTY)  # no family names one: OSWorld reads None
        add("boolean", 0, expect=0, value=lambda v: number_check(float(v)))
        add("empty", 1, font_bold=lambda v: NOT_BOLD)
        add("bold", 1, expect=0, font_bold=lambda v: NOT_BOLD)
        add("plain", 1, expect=0, font_bold=lambda v: BOLD)
        add("bold text", 0, value=lambda v: header_check(v.strip()), font_bold=lambda v: BOLD)
        absent = f"{get_column_letter(ws.max_column + 1)}{ws.max_row + 2}"
        cases.append(case(path, [cell_rule(ws.title, absent, value=EMPTY, font_bold=NOT_BOLD)]))
    return cases


def sheet_data_cases(path: Path, styles: openpyxl.Workbook, values: openpyxl.Workbook, big: bool,
                     copies: Path) -> list[dict]:
    """sheet_data of the first sheet against itself (rename_sheet's shape) and against a copy of
    the workbook with one cell changed; unless the workbook is big, also against another sheet,
    and of the workbook against itself and a re-saved copy (cached values as constants)."""
    names = styles.sheetnames
    sheets = [ws.title for ws in styles.worksheets]
    first = sheets[0]

    def pair(a: str, b: str) -> list[dict]:
        return [{"type": "sheet_data", "sheet_idx0": a, "sheet_idx1": b}]

    cases = [case(path, pair(f"RN{first}", f"RI{names.index(first)}"), expect=1)]
    for ws in values.worksheets:
        ws._images.clear()  # openpyxl cannot write back the images it read
    if not big:
        cases.append(case(path, pair("RI0", "EI0"), path, expect=1))
        if len(sheets) > 1:
            cases.append(case(path, pair(f"RN{sheets[-1]}", f"RI{names.index(first)}")))
        resaved = copies / f"{path.stem}-resaved.xlsx"
        values.save(resaved)
        cases.append(case(resaved, pair(f"RN{first}", f"EN{first}"), path))
    target = next((c for row in values[first].iter_rows() for c in row
                   if c.data_type in ("n", "s") and isinstance(c.value, (int, float, str))
                   and not isinstance(c.value, bool)), None)
    if target is not None:
        target.value = target.value + 1000 if target.data_type == "n" else target.value + "x"
        edited = copies / f"{path.stem}-edited.xlsx"
        values.save(edited)
        cases.append(case(edited, pair(f"RN{first}", f"EN{first}"), path, expect=0))
    return cases


def build_cases(path: Path, copies: Path) -> tuple[list[dict], str]:
    """The cases of one workbook, or none and why."""
    try:
        styles, values = load(path), load(path, data_only=True)
    except Exception as e:  # noqa: BLE001 - the corrupt ones, on purpose
        return [], f"openpyxl cannot load it ({type(e).__name__}: {str(e)[:80]})"
    if not styles.worksheets:
        return [], "no worksheets"
    big = sum(len(ws._cells) for ws in styles.worksheets) > BIG
    return (check_cell_cases(path, styles, values, big)
            + sheet_data_cases(path, styles, values, big, copies)), ""


def start_desktop_env(cases: list[dict], scratch: Path) -> subprocess.Popen:
    """desktop-env scoring `cases` in the scorer venv: its reply (a JSON list) goes to
    scratch/scores.json."""
    (scratch / "cases.json").write_text(json.dumps(cases))
    env = scorer_env.snippet_env(scratch)
    with (open(scratch / "cases.json") as stdin, open(scratch / "scores.json", "w") as stdout,
          open(scratch / "stderr.txt", "w") as stderr):
        return subprocess.Popen([str(scorer_env.python()), "-c", DESKTOP_ENV], stdin=stdin,
                                stdout=stdout, stderr=stderr, cwd=scratch, env=env)


def cua_score(case: dict) -> float | str:
    try:
        return float(compare_table(case["result"], case["expected"], rules=case["rules"]))
    except Exception as e:  # noqa: BLE001 - an error scores 0, as in cua.scoring.evaluate
        return f"{type(e).__name__}: {e}"


def as_score(outcome: float | str) -> float:
    return outcome if isinstance(outcome, float) else 0.0


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict[str, tuple[list[dict], list, list, str]]:
    """Every workbook's cases with desktop-env's and cua's outcome of each (a score, or the error
    raised), or why it has none: {name: (cases, theirs, ours, why)}."""
    if not CONTENT.is_dir():
        reason = f"{CONTENT} is absent: the parity test needs the shared folder beside the checkout"
        print(reason)
        pytest.skip(reason)
    scorer_venv_or_skip()
    copies, scratch = tmp_path_factory.mktemp("copies"), tmp_path_factory.mktemp("scratch")
    built = {str(p.relative_to(CONTENT)): build_cases(p, copies) for p in workbooks()}
    every = [c for cases, _ in built.values() for c in cases]
    scorer = start_desktop_env(every, scratch)
    try:
        ours = iter([cua_score(c) for c in every])  # while desktop-env scores them too
        assert scorer.wait(timeout=900) == 0, (
            "desktop-env's scorer failed:\n" + (scratch / "stderr.txt").read_text()[-3000:])
    finally:
        if scorer.poll() is None:
            scorer.kill()
    theirs = json.loads((scratch / "scores.json").read_text())
    assert len(theirs) == len(every), f"desktop-env scored {len(theirs)} of {len(every)} cases"
    theirs = iter(theirs)
    return {name: (cases, [next(theirs) for _ in cases], [next(ours) for _ in cases], why)
            for name, (cases, why) in built.items()}


@pytest.mark.parametrize("name", [str(p.relative_to(CONTENT)) for p in workbooks()] or ["none"])
def test_compare_table_scores_as_desktop_env_does(scored, name):
    cases, theirs, ours, why = scored[name]
    if why:
        print(f"{name}: skipped, {why}")
        pytest.skip(why)
    differences, unexpected = [], []
    for c, their, our in zip(cases, theirs, ours):
        rule = json.dumps(c["rules"][0], ensure_ascii=False)
        where = f"{name} ({Path(c['result']).name} vs {c['expected'] and Path(c['expected']).name})"
        if as_score(our) != as_score(their):
            differences.append(f"{where}: {rule}: cua {our!r}, desktop-env {their!r}")
        if c["expect"] is not None and as_score(their) != c["expect"]:
            unexpected.append(f"{where}: {rule}: desktop-env {their!r}, expected {c['expect']}")
    tally = Counter(as_score(s) for s in theirs)
    print(f"{name}: {len(cases)} cases, desktop-env scores {dict(tally)}")
    assert not differences, f"{len(differences)} of {len(cases)} differ:\n" + "\n".join(differences)
    assert not unexpected, "cases built wrong:\n" + "\n".join(unexpected)
