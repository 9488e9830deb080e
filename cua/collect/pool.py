"""A pool of workers on threads, each owning its desktop: units in, results out in the caller."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

_DONE = object()
INTERRUPTED_JOIN_S = 30.0  # after Ctrl+C, how long a unit may take to end once its desktop stops


def run_pool(make_worker: Callable[[], Any], units: list, workers: int,
             work: Callable[[Any, Any, Any], Any], on_result: Callable[[Any], None]) -> None:
    """`work(worker, unit, upcoming)` for every unit on `workers` threads, each building its
    worker once (closed with `worker.close()` at the end); `upcoming` is the unit the same worker
    runs next (None after its last), which it may get ready for meanwhile. `on_result` runs in
    the calling thread. An exception in building a worker, in `work` or in `on_result` stops
    the units not started and is raised here once the running ones end; Ctrl+C
    (KeyboardInterrupt) ends the running ones too, by closing their workers under them."""
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
    failure, running, interrupted = None, len(threads), False
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
                except Exception as exc:
                    stop.set()
                    failure = exc
    except KeyboardInterrupt:  # the running units' results would be dropped: end them now
        interrupted = True
        raise
    finally:
        stop.set()
        if interrupted:  # their desktops stop under them, so they end at once
            _close(made, quietly=True)  # what fails to close goes with this process
        for thread in threads:
            thread.join(timeout=INTERRUPTED_JOIN_S if interrupted else None)
        if not interrupted:
            _close(made)
    if failure is not None:
        raise failure


def _close(workers: list, quietly: bool = False) -> None:
    for worker in workers:
        if quietly:
            with suppress(Exception):
                worker.close()
        else:
            worker.close()
