"""A pool of workers on threads, each owning its desktop: units in, results out in the caller."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


def run_pool(make_worker: Callable[[], Any], units: list, workers: int,
             work: Callable[[Any, Any], Any], on_result: Callable[[Any], None]) -> None:
    """`work(worker, unit)` for every unit on `workers` threads, each with its own worker (closed
    with `worker.close()` at the end); `on_result` runs in the calling thread."""
    todo: queue.Queue = queue.Queue()
    for unit in units:
        todo.put(unit)
    done: queue.Queue = queue.Queue()

    def loop() -> None:
        worker = make_worker()
        try:
            while True:
                try:
                    unit = todo.get_nowait()
                except queue.Empty:
                    return
                done.put(work(worker, unit))
        finally:
            worker.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(min(workers, len(units)))]
    for thread in threads:
        thread.start()
    for _ in units:
        on_result(done.get())
    for thread in threads:
        thread.join()
