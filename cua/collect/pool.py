"""A pool of workers on threads, each owning its desktop: units in, results out in the caller."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_DONE = object()


def run_pool(make_worker: Callable[[], Any], units: list, workers: int,
             work: Callable[[Any, Any, Any], Any], on_result: Callable[[Any], None]) -> None:
    """`work(worker, unit, upcoming)` for every unit on `workers` threads, each building its
    worker once (closed with `worker.close()` at the end); `upcoming` is the unit the same worker
    runs next (None after its last), which it may get ready for meanwhile. `on_result` runs in
    the calling thread. An exception in building a worker, in `work` or in `on_result` stops
    the units not started and is raised here once the running ones end."""
    if not units:
        return
    pending, lock, stop = deque(units), threading.Lock(), threading.Event()
    results: queue.Queue = queue.Queue()
    made = []

    def take():
        with lock:
            return pending.popleft() if pending and not stop.is_set() else None

    def loop():
        try:
            worker = make_worker()
            with lock:
                made.append(worker)
            unit = take()
            while unit is not None and not stop.is_set():
                upcoming = take()
                results.put((True, work(worker, unit, upcoming)))
                unit = upcoming
        except BaseException as exc:
            stop.set()
            results.put((False, exc))
        finally:
            results.put((None, _DONE))

    threads = [threading.Thread(target=loop, name=f"cua-worker_{i}", daemon=True)
               for i in range(min(workers, len(units)))]
    for thread in threads:
        thread.start()
    failure, running = None, len(threads)
    try:
        while running:
            ok, value = results.get()
            if value is _DONE:
                running -= 1
            elif not ok:
                failure = failure or value
            elif failure is None:
                try:
                    on_result(value)
                except BaseException as exc:
                    stop.set()
                    failure = exc
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for worker in made:
            worker.close()
    if failure is not None:
        raise failure
