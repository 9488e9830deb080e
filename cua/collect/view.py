"""`cua view`: a static HTML report of a run, with each step's action drawn on its screenshot."""

from __future__ import annotations

from html import escape
from pathlib import Path

from cua.actions import Click, Drag, Hotkey, LeftDouble, RightSingle, Scroll, Type
from cua.collect.store import RunStore, write_atomic
from cua.records import EpisodeRecord, StepRecord

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px} h2{font-size:17px;margin:28px 0 6px}
.meta{color:#555} .ok{color:#176f2c;font-weight:600} .bad{color:#b3261e;font-weight:600}
.step{display:grid;grid-template-columns:minmax(300px,720px) 1fr;gap:16px;margin:12px 0;
 padding:12px;background:#fff;border:1px solid #ddd;border-radius:6px}
.shot{position:relative} .shot img{width:100%;display:block;border:1px solid #ccc}
.shot svg{position:absolute;inset:0;width:100%;height:100%}
pre{white-space:pre-wrap;margin:4px 0;font-size:12px;background:#f3f3f3;padding:6px}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px}
"""
OUTCOME_CLASS = {"success": "ok", "failure": "bad", "error": "bad"}


def write_report(store: RunStore, out: Path | None = None) -> Path:
    """Render the run into one HTML file (default `RUN/report.html`); returns its path."""
    manifest = store.manifest()
    out = out or store.root / "report.html"
    base = Path("..") if out.parent != store.root else Path(".")
    episodes = sorted(store.episodes().values(), key=lambda e: e.id)
    counts: dict[str, int] = {}
    for episode in episodes:
        counts[episode.outcome] = counts.get(episode.outcome, 0) + 1
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in sorted(counts.items()))
    rejected = "".join(f"<li>{escape(k)}: {escape(v)}</li>"
                       for k, v in manifest.rejected_content.items())
    parts = [f"<!doctype html><meta charset=utf-8><title>cua run {escape(manifest.run_id)}</title>",
             f"<style>{STYLE}</style><h1>Run {escape(manifest.run_id)}</h1>",
             f"<p class=meta>{len(episodes)} episodes · recipe {escape(manifest.recipe['name'])}"
             f" · cua {escape(manifest.versions.get('cua', '?'))}</p><table>{rows}</table>"]
    if rejected:
        parts.append(f"<p>Content refused:</p><ul>{rejected}</ul>")
    for episode in episodes:
        parts.append(_episode(episode, store, base))
    write_atomic(out, "\n".join(parts).encode())
    return out


def _episode(episode: EpisodeRecord, store: RunStore, base: Path) -> str:
    verdict = episode.verdict
    judged = (f"judge: {'feasible' if verdict.feasible else 'infeasible'} — "
              f"{escape(verdict.reason)}" if verdict else "not judged")
    outcome = (f"<span class={OUTCOME_CLASS.get(episode.outcome, 'meta')}>"
               f"{escape(episode.outcome)}</span>")
    scored = (f" · evaluator: {escape(episode.evaluation.describe())}" if episode.evaluation
              else "")
    cut = f" · cut: {escape(episode.truncated)}" if episode.truncated else ""
    error = f"<pre>{escape(episode.error)}</pre>" if episode.error else ""
    head = (f"<h2 id='{escape(episode.id)}'>{escape(episode.task.instruction)}</h2>"
            f"<p class=meta>{escape(episode.id)} · {escape(episode.env.name)} · "
            f"{escape(episode.content.name)} · {escape(episode.model)} "
            f"({escape(episode.agent_format)}) · {judged}</p>"
            f"<p>{outcome} in {len(episode.steps)} steps, {episode.seconds:.1f} s{scored}{cut}</p>"
            f"{error}")
    width, height = episode.env.screen.width, episode.env.screen.height
    return head + "".join(_step(s, store, base, width, height) for s in episode.steps)


def _step(step: StepRecord, store: RunStore, base: Path, width: int, height: int) -> str:
    image = (base / store.screen_path(step.screenshot).relative_to(store.root)).as_posix()
    marks = "".join(_mark(a) for a in step.actions)
    notes = step.parse_error and f"<p class=bad>parse error: {escape(step.parse_error)}</p>" or ""
    failed = [r.error for r in step.results if not r.ok]
    if failed:
        notes += f"<p class=bad>failed: {escape('; '.join(map(str, failed)))}</p>"
    return (f"<div class=step><div class=shot><img loading=lazy src='{escape(image)}' "
            f"alt='step {step.index} screenshot'><svg viewBox='0 0 {width} {height}'>{marks}"
            f"</svg></div><div><b>Step {step.index + 1}</b><p>{escape(step.thought)}</p>"
            f"<pre>{escape(step.response)}</pre>{notes}</div></div>")


def _mark(action) -> str:
    """SVG for one action in screen pixels: click rings, a drag arrow, typed text, keys."""
    ring = "fill='none' stroke='#e8175d' stroke-width='5'"
    label = "fill='#e8175d' font-size='34' font-weight='bold' paint-order='stroke' " \
            "stroke='white' stroke-width='6'"
    match action:
        case Click(x=x, y=y) | LeftDouble(x=x, y=y) | RightSingle(x=x, y=y):
            rings = 2 if isinstance(action, LeftDouble) else 1
            return "".join(f"<circle cx='{x}' cy='{y}' r='{18 + 10 * i}' {ring}/>"
                           for i in range(rings))
        case Drag(x1=x1, y1=y1, x2=x2, y2=y2):
            return (f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' {ring}/>"
                    f"<circle cx='{x2}' cy='{y2}' r='12' fill='#e8175d'/>")
        case Scroll(x=x, y=y, direction=direction) if x is not None:
            return f"<text x='{x}' y='{y}' {label}>scroll {direction}</text>"
        case Type(content=content):
            return f"<text x='2%' y='93%' {label}>type: {escape(content[:60])}</text>"
        case Hotkey(keys=keys):
            return f"<text x='2%' y='88%' {label}>keys: {escape('+'.join(keys))}</text>"
    return ""
