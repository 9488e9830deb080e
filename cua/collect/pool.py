"""A pool of workers on threads, each owning its desktop: units in, results out in the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any


def run_pool(make_worker: Callable[[], Any], units: list, workers: int,
             work: Callable[[Any, Any], Any], on_result: Callable[[Any], None]) -> None:
    """`work(worker, unit)` for every unit on `workers` threads, each building its worker once
    (closed with `worker.close()` at the end); `on_result` runs in the calling thread. An
    exception in building a worker, in `work` or in `on_result` cancels the units not started
    and is raised here once the running ones end."""
    if not units:
        return
    local, made, lock = threading.local(), [], threading.Lock()

    def run(unit):
        if not hasattr(local, "worker"):
            local.worker = make_worker()
            with lock:
                made.append(local.worker)
        return work(local.worker, unit)

    try:
        with ThreadPoolExecutor(min(workers, len(units)), thread_name_prefix="cua-worker") as pool:
            futures = [pool.submit(run, unit) for unit in units]
            try:
                for future in as_completed(futures):
                    on_result(future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        for worker in made:
            worker.close()
