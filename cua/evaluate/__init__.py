"""OSWorld-style evaluation: task configs, getters, metrics and scoring."""

from cua.evaluate.evaluator import EvalResult, MetricResult, evaluate
from cua.evaluate.getters import GETTERS, GetterContext
from cua.evaluate.metrics import METRICS
from cua.evaluate.taskconfig import STEPS, Evaluator, TaskConfig, load_tasks

__all__ = ["GETTERS", "METRICS", "STEPS", "EvalResult", "Evaluator", "GetterContext", "MetricResult",
           "TaskConfig", "evaluate", "load_tasks"]
