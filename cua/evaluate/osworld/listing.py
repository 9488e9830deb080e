"""OSWorld's task lists: `test_all.json`, `test_small.json`, `test_nogdrive.json` map each domain
to task ids, whose files are `examples/<domain>/<id>.json`."""

from __future__ import annotations

import json
from pathlib import Path


def listed_task_files(examples: Path, test_list: Path) -> list[Path]:
    """The task files `test_list` names under `examples`, in its order."""
    listed = json.loads(test_list.read_text())
    if not isinstance(listed, dict):
        raise ValueError(f"{test_list}: a test list maps domains to task ids")
    return [examples / domain / f"{task_id}.json" for domain, ids in listed.items()
            for task_id in ids]
