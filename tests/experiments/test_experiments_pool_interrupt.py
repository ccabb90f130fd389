"""An interrupt stops a process pool's workers: those started before the pool was handed all its work, and
those that ignore SIGTERM.

``ProcessPoolExecutor`` starts its worker processes on the first submits. If Ctrl-C lands between two
submits, the runner must still end those workers, or they outlive the sweep or run that started them. A
worker inherits SIGTERM's disposition from whatever launched the sweep; if that ignored it, only SIGKILL
ends a busy worker.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from clustersim.experiments import runners
from clustersim.experiments.runners import PoolRunner
from clustersim.experiments.worker import RunTask


@pytest.fixture
def interrupted_second_submit(monkeypatch):
    """The pool's second submit raises KeyboardInterrupt; counts the runner's calls to stop the pool."""
    submit, calls, stops = ProcessPoolExecutor.submit, [], []

    def flaky_submit(self, fn, *args, **kwargs):
        calls.append(fn)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return submit(self, fn, *args, **kwargs)

    stop_pool = runners._stop_pool
    monkeypatch.setattr(ProcessPoolExecutor, "submit", flaky_submit)
    monkeypatch.setattr(runners, "_stop_pool", lambda pool: (stops.append(pool), stop_pool(pool)))
    return calls, stops


@pytest.mark.parametrize("use", ["run", "map"])
def test_an_interrupt_among_the_submits_stops_the_started_workers(interrupted_second_submit, use):
    calls, stops = interrupted_second_submit
    runner = PoolRunner(workers=2)
    with pytest.raises(KeyboardInterrupt):
        if use == "run":
            list(runner.run(["a", "b", "c"]))   # never executed: the pool is stopped first
        else:
            list(runner.map(print, [1, 2, 3]))
    assert len(calls) == 2 and len(stops) == 1
    for child in multiprocessing.active_children():
        child.join(timeout=10)
    assert multiprocessing.active_children() == []


BUSY_S = 60.0   # far longer than a stopped pool may take to end its workers


def _busy_simulate(config, progress=None, started_dir=None):
    """A run that marks it has started, then keeps its worker busy."""
    Path(started_dir, f"{os.getpid()}").touch()
    time.sleep(BUSY_S)


def _busy_call(started_dir, report):
    report("started")
    time.sleep(BUSY_S)


@pytest.fixture
def sigterm_ignored():
    """SIGTERM ignored here, so in the workers spawned meanwhile: they inherit the disposition."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in multiprocessing.active_children():   # a failed test must not leave busy workers
            child.kill()


def _interrupt_once_started(started_dir: Path):
    """``as_completed`` for the runner: waits until a run has started, then the user presses Ctrl-C."""
    def interrupted(futures, timeout=None):
        deadline = time.monotonic() + 60
        while not any(started_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt
        yield  # pragma: no cover - makes this a generator, as as_completed is

    return interrupted


def test_an_interrupted_run_kills_a_worker_that_ignores_sigterm(sigterm_ignored, monkeypatch, tmp_path):
    monkeypatch.setattr(runners, "as_completed", _interrupt_once_started(tmp_path))
    simulate = functools.partial(_busy_simulate, started_dir=str(tmp_path))
    tasks = [RunTask(f"r{i}", {}, simulate=simulate) for i in range(2)]
    with pytest.raises(KeyboardInterrupt):
        list(PoolRunner(workers=2).run(tasks))
    assert multiprocessing.active_children() == []   # gone when the runner returns: no join here


def test_an_interrupted_map_kills_a_worker_that_ignores_sigterm(sigterm_ignored, tmp_path):
    def on_report(index, value):
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(PoolRunner(workers=2).map(_busy_call, [str(tmp_path)] * 2, on_report))
    # Spawning two workers takes seconds; the stop itself at most the grace and a kill.
    assert time.monotonic() - start < BUSY_S / 2
    assert multiprocessing.active_children() == []
