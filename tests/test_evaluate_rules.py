"""cua's rule metrics (`check_slides`, `check_paragraphs`) on real decks and documents from
../shared/content and on edited copies of them: matching rules score 1, each non-matching rule
scores 0 with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document
from pptx import Presentation

from cua.scoring import METRICS, evaluate
from cua.scoring.metrics import metric_problem
from cua.scoring.metrics.rules import check_paragraphs, check_slides

THEMES = {  # facts of pptx/themes.pptx (10 slides)
    "slide_count": 10,
    "titles": {"4": "Austin Theme", "9": "Section header in the\ntreck theme"},
    "slides_with": {"Trade show": [10], "Darker background": [9], "Not in the deck": []},
}
ESSAY = {  # facts of docx/61787.docx
    "last": [("What were your triumphs (things you enjoyed or did well with) and struggles "
              "during your writing process?"), "What grade would you give your essay, and why?"],
    "count": {"Basics": 1, "Not in the document": 0},
    "styles": {"Basics": "Heading 1", "Your worldview": "Heading 3"},
    "exclude": ["not in the document"],
    "words": {"writing": 4, "Writing": 0, "worldviews": 5},
}


@pytest.fixture
def themes(shared_content):
    return str(shared_content / "pptx" / "themes.pptx")


@pytest.fixture
def essay(shared_content):
    return str(shared_content / "docx" / "61787.docx")


def test_rule_metrics_are_registered_and_take_no_options():
    assert METRICS["check_slides"] is check_slides
    assert METRICS["check_paragraphs"] is check_paragraphs
    assert metric_problem("check_slides", {}) is None
    assert "no options" in metric_problem("check_paragraphs", {"ignore_case": True})


def test_check_slides_on_a_real_deck(themes):
    assert check_slides(themes, THEMES) == 1
    for rules, reason in [
        ({"slide_count": 9}, "10 slides, expected 9"),
        ({"titles": {"4": "Austin"}}, "slide 4's title is 'Austin Theme'"),
        ({"titles": {"11": "Trade show"}}, "there is no slide 11"),
        ({"slides_with": {"Trade show": [9]}}, "'Trade show' is on slides [10], expected [9]"),
        ({"slides_with": {"Austin Theme": []}}, "is on slides [4], expected []"),
    ]:
        score = check_slides(themes, rules)
        assert score == 0 and reason in score.reason, (rules, score.reason)


def test_check_slides_on_an_edited_deck(themes, tmp_path):
    deck = Presentation(themes)
    deck.slides[6].shapes.title.text_frame.text = "Next Steps"
    slides = deck.slides._sldIdLst
    slides.remove(slides[9])  # drop "Trade show"
    deck.save(tmp_path / "edited.pptx")
    rules = {"slide_count": 9, "titles": {"7": "Next Steps"},
             "slides_with": {"Trade show": [], "Next Steps": [7], "Overridden background": []}}
    assert check_slides(str(tmp_path / "edited.pptx"), rules) == 1
    assert check_slides(themes, rules) == 0


def test_check_paragraphs_on_a_real_document(essay):
    assert check_paragraphs(essay, ESSAY) == 1
    for rules, reason in [
        ({"last": ["What grade would you give your essay?"]}, "ends with ['What grade would"),
        ({"count": {"Basics": 2}}, "'Basics' is 1 paragraphs, expected 2"),
        ({"styles": {"Your worldview": "Heading 1"}}, "has the style 'Heading 3'"),
        ({"styles": {"Worldview": "Heading 1"}}, "no paragraph reads 'Worldview'"),
        ({"exclude": ["WRITING"]}, "'WRITING' still occurs 4 times"),
        ({"words": {"essay": 12}}, "'essay' occurs 10 times, expected 12"),
    ]:
        score = check_paragraphs(essay, rules)
        assert score == 0 and reason in score.reason, (rules, score.reason)


def test_check_paragraphs_on_an_edited_document(essay, tmp_path):
    document = Document(essay)
    heading = next(p for p in document.paragraphs if p.text.strip() == "Your worldview")
    heading.style = document.styles["Heading 1"]
    document.add_paragraph("This version replaces all earlier drafts.")
    document.save(tmp_path / "edited.docx")
    rules = {"last": [ESSAY["last"][1], "This version  replaces all earlier drafts."],
             "count": {"This version replaces all earlier drafts.": 1},
             "styles": {"Your worldview": "Heading 1"}}
    assert check_paragraphs(str(tmp_path / "edited.docx"), rules) == 1
    assert check_paragraphs(essay, rules) == 0


def test_unreadable_files_score_zero_with_a_reason(shared_content):
    corrupt = shared_content / "corrupt"
    deck = corrupt / "clusterfuzz-testcase-minimized-POIXSLFFuzzer-5463285576892416.pptx"
    score = check_slides(str(deck), {"slide_count": 1})
    assert score == 0 and "cannot be read as a presentation" in score.reason
    score = check_paragraphs(str(corrupt / "truncated62886.docx"), {"count": {"x": 0}})
    assert score == 0 and "cannot be read as a document" in score.reason
    assert check_slides(None, {}) == 0 and check_paragraphs(None, {}) == 0


def test_unknown_rules_are_errors_not_failures(themes, essay, tmp_path):
    with pytest.raises(ValueError, match="unknown rules \\['title'\\]"):
        check_slides(themes, {"title": "x"})
    with pytest.raises(ValueError, match="unknown rules \\['include'\\]"):
        check_paragraphs(essay, {"include": ["x"]})
    config = {"func": "check_slides", "expected": {"type": "rule", "rules": {"title": "x"}},
              "result": {"type": "vm_file", "path": "/home/user/themes.pptx", "dest": "t.pptx"}}
    result = evaluate(config, lambda _: Path(themes).read_bytes(), tmp_path, tmp_path / "c")
    assert result.score == 0 and "unknown rules" in result.error


def test_rule_metrics_in_an_evaluator(themes, essay, tmp_path):
    files = {"/home/user/themes.pptx": themes, "/home/user/essay.docx": essay}
    config = {"func": ["check_slides", "check_paragraphs"],
              "result": [{"type": "vm_file", "path": path, "dest": path.rsplit("/", 1)[1]}
                         for path in files],
              "expected": [{"type": "rule", "rules": THEMES}, {"type": "rule", "rules": ESSAY}]}
    result = evaluate(config, lambda path: Path(files[path]).read_bytes(), tmp_path,
                      tmp_path / "cache")
    assert result.score == 1 and result.error is None
