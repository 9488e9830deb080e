"""The pool of desktop workers: results in the caller's thread, and any failure ends it."""

from __future__ import annotations

import threading

import pytest

from cua.collect.pool import run_pool


class Worker:
    closed: list[Worker] = []

    def __init__(self, fail_on=None):
        self.fail_on = fail_on

    def work(self, unit, upcoming):
        if unit == self.fail_on:
            raise RuntimeError(f"unit {unit} broke")
        return unit * 2, threading.current_thread().name, unit, upcoming

    def close(self):
        Worker.closed.append(self)


def test_results_reach_the_caller_and_workers_close():
    Worker.closed = []
    results = []
    run_pool(Worker, list(range(8)), 3, Worker.work, results.append)
    assert sorted(r[0] for r in results) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert {r[1] for r in results} <= {f"cua-worker_{i}" for i in range(3)}
    assert 1 <= len(Worker.closed) <= 3


def test_each_worker_is_told_the_unit_it_runs_next():
    results = []
    run_pool(Worker, list(range(9)), 3, Worker.work, results.append)
    for thread in {r[1] for r in results}:
        mine = [(unit, upcoming) for _, name, unit, upcoming in results if name == thread]
        assert [upcoming for _, upcoming in mine] == [unit for unit, _ in mine[1:]] + [None]


@pytest.mark.timeout(30)
def test_a_worker_that_cannot_be_built_ends_the_pool():
    def broken():
        raise ValueError("no desktop for you")

    with pytest.raises(ValueError, match="no desktop for you"):
        run_pool(broken, [1, 2, 3], 2, Worker.work, lambda result: None)


@pytest.mark.timeout(30)
def test_a_failing_unit_ends_the_pool_and_still_closes_the_workers():
    Worker.closed = []
    with pytest.raises(RuntimeError, match="unit 3 broke"):
        run_pool(lambda: Worker(fail_on=3), list(range(50)), 2, Worker.work, lambda r: None)
    assert Worker.closed


@pytest.mark.timeout(30)
def test_a_failing_result_handler_ends_the_pool():
    def keep(result):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_pool(Worker, list(range(20)), 2, Worker.work, keep)


@pytest.mark.timeout(30)
def test_ctrl_c_ends_the_running_units_by_closing_their_workers():
    class Slow(Worker):
        def __init__(self):
            self.stopped, self.saw_close = threading.Event(), []

        def work(self, unit, upcoming):
            if unit == 0:  # a long episode: it ends when its desktop is closed under it
                self.saw_close.append(self.stopped.wait(20))
                raise RuntimeError("desktop gone")
            return unit

        def close(self):
            self.stopped.set()
            super().close()

    made = []

    def make():
        made.append(Slow())
        return made[-1]

    def interrupt(result):
        raise KeyboardInterrupt  # Ctrl+C while a result is handled

    with pytest.raises(KeyboardInterrupt):
        run_pool(make, [0, 1, 2, 3], 2, Slow.work, interrupt)
    assert [w.saw_close for w in made if w.saw_close] == [[True]]  # not its 20 s wait
