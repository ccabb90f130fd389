"""One run split over workers: the fleet's nodes in shards, each shard run by a runner, merged here.

``clustersim run --workers N`` (or ``--dask ADDRESS|local``) splits the fleet once, here, into at most N
shards of contiguous nodes (``clustersim.fleet.layout``), sends each worker only its shard's description
(the resolved config and its nodes' replicas, never a built fleet), and lets the runner of ``runners.py``
run them: each worker builds and runs only its own nodes for the whole duration and returns their raw
state, which is merged exactly into the run's tables (``clustersim.fleet.state``). The tables are the same,
bit for bit, as a serial run's.

The progress reported is the simulated time of the slowest shard. A shard that fails (or whose worker is
lost) stops the others and fails the run with its error named; nothing of the run is stored as complete.
The fleet side is named by module (``clustersim.fleet.simulate``: ``shards``, ``run_shard``, ``merge``) and
imported only when a run starts, as ``worker.py`` does for the simulation.
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..results_contract import RunTables
from .config import RunConfig, resolved
from .runners import CallFailed, Runner
from .worker import Progress, RunOutcome, RunTask, SimulateUnavailable, check_output

DEFAULT_SHARDED = "clustersim.fleet.simulate"
SHARDED_ENV = "CLUSTERSIM_SHARDED"  # a module to use instead (tests inject failures through it)


class ShardFailed(RuntimeError):
    """A shard's worker raised or was lost; the message names the shard and the error."""


@dataclass(frozen=True)
class ShardTask:
    """What a worker needs for one shard: the resolved config, the shard, and the fleet module."""

    index: int
    count: int
    config: dict[str, Any]
    shard: Any              # clustersim.fleet.layout.Shard: plain data
    module: str = DEFAULT_SHARDED


def sharded_module(name: str | None = None) -> ModuleType:
    """The fleet module that splits, runs and merges shards: ``name``, ``$CLUSTERSIM_SHARDED`` or the fleet's."""
    name = name or os.environ.get(SHARDED_ENV) or DEFAULT_SHARDED
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SimulateUnavailable(f"the sharded simulation {name!r} is not available ({exc})") from None


@dataclass(frozen=True)
class _ShardProgress:
    """The fleet's ``progress(done_s, duration_s)`` as the runner's ``report(done_s)``."""

    report: Callable[[Any], None]

    def __call__(self, done_s: float, duration_s: float) -> None:
        self.report(done_s)


def execute_shard(task: ShardTask, report: Callable[[Any], None]) -> Any:
    """Run one shard where the runner put it; returns its state (raises whatever the shard raised)."""
    config = RunConfig.model_validate(task.config)
    return sharded_module(task.module).run_shard(config, task.shard, progress=_ShardProgress(report))


def simulate_sharded(config: RunConfig, runner: Runner, progress: Progress | None = None,
                     module: str | None = None) -> RunTables:
    """Split ``config``'s fleet into ``runner.workers`` shards, run them on ``runner`` and merge them."""
    name = module or os.environ.get(SHARDED_ENV) or DEFAULT_SHARDED
    fleet = sharded_module(name)
    parts = fleet.shards(config, runner.workers)
    tasks = [ShardTask(i, len(parts), resolved(config), part, name) for i, part in enumerate(parts)]
    duration, done = float(config.duration), [0.0] * len(tasks)

    def on_report(index: int, done_s: float) -> None:
        done[index] = max(done[index], done_s)
        if progress is not None:
            progress(min(done), duration)

    states: list[Any] = [None] * len(tasks)
    try:
        for index, state in runner.map(execute_shard, tasks, on_report):
            states[index] = state
            on_report(index, duration)
    except CallFailed as failed:
        part = parts[failed.index]
        raise ShardFailed(f"shard {failed.index + 1} of {len(parts)} ({part.describe()}) failed: {failed}"
                          ) from failed.error
    return fleet.merge(states)


def execute_sharded(task: RunTask, runner: Runner, progress: Progress | None = None) -> RunOutcome:
    """``worker.execute_here`` for a run split over ``runner``: any Exception becomes a failed outcome."""
    start = time.perf_counter()
    try:
        config = RunConfig.model_validate(task.config)
        tables = check_output(simulate_sharded(config, runner, progress))
    except Exception as exc:
        return RunOutcome(task.run_id, "failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(), wall_s=time.perf_counter() - start)
    return RunOutcome(task.run_id, "ok", wall_s=time.perf_counter() - start, tables=tables)
