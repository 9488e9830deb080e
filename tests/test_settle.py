"""The settle loop on synthetic frames and a fake clock, the apps' busy clock on real processes,
and the frames' encoding (unit tests of one piece)."""

import io
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from cua.desktop.procs import BusyClock
from cua.desktop.session import encode_png
from cua.desktop.settle import DEFAULT_MIN_WAIT_S, changed_fraction, min_wait, wait_settled
from cua.envspec import SettlePolicy

POLICY = SettlePolicy(interval_s=0.02, quiet_s=0.1, min_wait_s=0.05, timeout_s=1.0)


class FakeScreen:
    """Frames that change until `stop_at` seconds, on a clock advanced by sleep()."""

    def __init__(self, stop_at: float, cpu_busy_until: float = 0.0):
        self.now, self.stop_at, self.cpu_busy_until = 0.0, stop_at, cpu_busy_until
        self.cpu_used = 0.0

    def grab(self):
        frame = np.zeros((40, 40, 4), np.uint8)
        if self.now < self.stop_at:
            frame[:, :, 0] = int(self.now * 1000) % 256
        return frame

    def sleep(self, seconds):
        if self.now < self.cpu_busy_until:
            self.cpu_used += seconds
        self.now += seconds

    def run(self, **kwargs):
        return wait_settled(self.grab, POLICY, sleep=self.sleep, clock=lambda: self.now,
                            **kwargs)[0]


class FakeDraws:
    """DAMAGE reports on the fake screen's clock: a draw every interval while it changes."""

    def __init__(self, screen: FakeScreen, stops_at: float = float("inf")):
        self.screen, self.seq, self.stops_at = screen, 0, stops_at

    def wait(self, seen, timeout_s):
        if self.screen.now >= self.stops_at:
            return None
        if self.screen.now < self.screen.stop_at:
            self.screen.now += POLICY.interval_s
            self.seq += 1
            return self.seq
        self.screen.now += timeout_s
        return seen


def test_changed_fraction():
    a = np.zeros((10, 10, 4), np.uint8)
    b = a.copy()
    b[0:2, :, 1] = 9  # rows 0 and 1 change; stride 2 samples row 0 of 5 rows
    assert changed_fraction(a, a) == 0.0
    assert changed_fraction(a, b) == 0.2
    red, alpha = a.copy(), a.copy()
    red[4, 4, 2], alpha[:, :, 3] = 1, 255  # one sampled pixel's red by 1; every alpha
    assert changed_fraction(a, red) == 1 / 25 and changed_fraction(a, alpha) == 0.0


def test_waits_for_the_screen_to_stop_changing():
    report = FakeScreen(stop_at=0.3).run()
    assert report.settled and 0.4 <= report.waited_s < 0.5


def test_a_static_screen_settles_after_the_quiet_period():
    report = FakeScreen(stop_at=0).run(before=np.zeros((40, 40, 4), np.uint8))
    assert report.settled and not report.changed and report.waited_s < 0.15


def test_gives_up_at_the_cap():
    report = FakeScreen(stop_at=10).run()
    assert not report.settled and report.waited_s >= POLICY.timeout_s


def test_a_busy_app_keeps_a_static_screen_unsettled():
    screen = FakeScreen(stop_at=0, cpu_busy_until=0.5)
    report = screen.run(cpu=lambda: screen.cpu_used)
    assert report.settled and report.waited_s >= 0.5


def test_with_damage_reports_frames_are_grabbed_only_after_draws():
    screen = FakeScreen(stop_at=0.3)
    report = screen.run(draws=FakeDraws(screen))
    assert report.settled and report.changed and 0.4 <= report.waited_s < 0.45
    assert report.frames == 16  # the first, then one per draw reported; none while quiet
    still = FakeScreen(stop_at=0)
    report = still.run(before=np.zeros((40, 40, 4), np.uint8), draws=FakeDraws(still))
    assert report.settled and not report.changed and report.frames == 1
    assert abs(report.waited_s - POLICY.quiet_s) < 1e-9


def test_the_minimum_wait_is_the_policys_or_the_longest_the_running_apps_need():
    auto = SettlePolicy()
    assert min_wait(auto, ["soffice.bin", "mousepad", "dbus-daemon"]) == 0.8
    assert min_wait(auto, ["chromium", "xterm"]) == min_wait(auto) == DEFAULT_MIN_WAIT_S < 0.8
    assert min_wait(POLICY, ["soffice.bin"]) == POLICY.min_wait_s  # said in the env spec
    report = FakeScreen(stop_at=0).run()
    assert report.settled and report.waited_s >= report.min_wait_s == POLICY.min_wait_s


def test_a_stopped_damage_watch_falls_back_to_looking_every_interval():
    screen = FakeScreen(stop_at=0.3)
    report = screen.run(draws=FakeDraws(screen, stops_at=0.1))
    assert report.settled and 0.4 <= report.waited_s < 0.5 and report.frames > 16


def _spinners(count: int) -> list[subprocess.Popen]:
    """`count` processes that spin on the first core this test may use."""
    core = min(os.sched_getaffinity(0))
    spin = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def _busy_over(clock: BusyClock, seconds: float) -> float:
    start = clock()
    time.sleep(seconds)
    return clock() - start


def test_the_busy_clock_tells_a_working_process_from_a_sleeping_one():
    nap = subprocess.Popen(["sleep", "30"])
    spin, = _spinners(1)
    try:
        assert _busy_over(BusyClock(lambda: [nap.pid]), 0.3) < 0.01
        assert _busy_over(BusyClock(lambda: [spin.pid]), 0.3) > 0.2
    finally:
        for proc in (nap, spin):
            proc.kill()
            proc.wait()


def test_a_process_starved_of_its_core_counts_as_busy():
    """Two spinners on one core each run half the time; the other half they wait to, runnable."""
    spinners = _spinners(2)
    try:
        time.sleep(0.2)  # both started
        assert _busy_over(BusyClock(lambda: [spinners[0].pid]), 0.4) > 0.3
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def test_a_frame_is_encoded_as_a_lossless_rgb_png():
    frame = np.random.default_rng(0).integers(0, 256, (90, 160, 4), np.uint8)
    image = Image.open(io.BytesIO(encode_png(frame)))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (160, 90))
    assert (np.asarray(image) == frame[:, :, 2::-1]).all()  # BGRA -> RGB, alpha dropped
