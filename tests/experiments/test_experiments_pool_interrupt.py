"""An interrupt while a process pool is still being handed its work stops the workers already started.

``ProcessPoolExecutor`` starts its worker processes on the first submits. If Ctrl-C lands between two
submits, the runner must still end those workers, or they outlive the sweep or run that started them.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from clustersim.experiments import runners
from clustersim.experiments.runners import PoolRunner


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
