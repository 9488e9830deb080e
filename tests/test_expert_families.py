"""All template families, over the LIVE tables of the three expert test files: the evaluator of the
task proposed on a document scores the untouched original 0."""

from __future__ import annotations

import pytest

from cua.collect.expert import families
from tests import test_expert_calc, test_expert_impress, test_expert_writer
from tests.expert_harness import propose_task, score

BY_NAME = families()
LIVE = test_expert_calc.LIVE + test_expert_impress.LIVE + test_expert_writer.LIVE


@pytest.mark.parametrize("family_name,file", LIVE)
def test_evaluator_fails_on_the_untouched_original(family_name, file, shared_content, tmp_path):
    family = BY_NAME[family_name]
    path = shared_content / family.kinds[0] / file
    task = propose_task(family, path)
    result = score(family, task, path, path.read_bytes(), tmp_path)
    assert result.score == 0 and result.error is None, result
    assert result.details[-1].reason
