"""OSWorld-style evaluation: task configs, setup steps, the eval runner, `check` and `make`."""

from cua.evaluate.taskconfig import STEPS, TaskConfig, load_tasks

__all__ = ["STEPS", "TaskConfig", "load_tasks"]
