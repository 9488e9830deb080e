"""The one scorer: OSWorld evaluator configs (getters, metrics, `conj`) score a desktop's files,
in collection exactly as in evaluation."""

from cua.scoring.config import Evaluator
from cua.scoring.evaluator import evaluate
from cua.scoring.getters import GETTERS
from cua.scoring.metrics import METRICS

__all__ = ["GETTERS", "METRICS", "Evaluator", "evaluate"]
