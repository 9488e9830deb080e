"""OSWorld's task lists: `test_all.json`, `test_small.json`, `test_nogdrive.json` map each domain
to task ids, whose files are `examples/<domain>/<id>.json`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def listed_task_files(examples: Path, test_list: Path, domains: Iterable[str] = ()) -> list[Path]:
    """The task files `test_list` names under `examples`, in its order; a list that is not one,
    a domain it does not have, or an `examples` folder holding none of its tasks is a ValueError."""
    try:
        listed = json.loads(test_list.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{test_list}: not a test list ({exc})") from None
    if not isinstance(listed, dict):
        raise ValueError(f"{test_list}: a test list maps domains to task ids")
    unknown = sorted(set(domains) - set(listed))
    if unknown:
        raise ValueError(f"{test_list.name} has no domain {', '.join(unknown)} (its domains: "
                         f"{', '.join(listed)})")
    files = [examples / domain / f"{task_id}.json" for domain, ids in listed.items()
             for task_id in ids]
    if files and not any(file.exists() for file in files):
        raise ValueError(f"{examples} holds none of the tasks {test_list.name} lists: with a test "
                         "list, the tasks folder is OSWorld's evaluation_examples/examples")
    return files
