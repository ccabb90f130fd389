"""Where the runs of a sweep execute: in this process, a local process pool, or a Dask cluster.

Every runner sends the same picklable ``RunTask`` to the same ``worker.execute`` and yields the
``RunOutcome`` of each run as it completes; the sweep, not the runner, orders and stores the results. So
the results do not depend on the runner, bit for bit: a run's numbers are a function of its config and seed.
The pool uses the ``spawn`` start method, so nothing a worker needs may be unpicklable or live only in
``__main__``. A runner that loses a worker records that worker's runs as failed; the sweep goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from .worker import RunOutcome, RunTask, execute


class Runner(Protocol):
    """Executes tasks and yields their outcomes in completion order."""

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]: ...

    def describe(self) -> dict[str, Any]: ...


def _lost(task: RunTask, exc: BaseException) -> RunOutcome:
    return RunOutcome(task.run_id, "failed", error=f"worker lost: {type(exc).__name__}: {exc}")


@dataclass
class InProcessRunner:
    """Runs one task after another in this process (``--workers 1``)."""

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]:
        for task in tasks:
            yield execute(task)

    def describe(self) -> dict[str, Any]:
        return {"kind": "in-process", "workers": 1}


@dataclass
class PoolRunner:
    """A local ``ProcessPoolExecutor`` of ``workers`` spawned processes."""

    workers: int

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]:
        if not tasks:
            return
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context)
        futures: dict[Future[RunOutcome], RunTask] = {pool.submit(execute, t): t for t in tasks}
        try:
            for future in as_completed(futures):
                yield _outcome(future, futures[future])
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)

    def describe(self) -> dict[str, Any]:
        return {"kind": "process-pool", "workers": self.workers}


def _outcome(future: Future[RunOutcome], task: RunTask) -> RunOutcome:
    try:
        return future.result()
    except Exception as exc:  # BrokenProcessPool when a worker dies
        return _lost(task, exc)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and end the running ones now (an interrupted sweep resumes them later).

    ``shutdown(cancel_futures=True)`` alone would wait for the running runs to finish; the pool offers no
    public way to end them, so the worker processes are terminated through its process table.
    """
    # Taken before shutdown, which drops the pool's reference to its process table (None afterwards).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


@dataclass
class DaskRunner:
    """A Dask distributed cluster: a scheduler ``address``, or ``local`` for a LocalCluster here.

    Workers need the same clustersim installed; results travel back to this process, which alone writes
    the results folder, so workers need no shared file system.
    """

    address: str
    workers: int = 1
    processes: bool = True

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed

        cluster = self._local_cluster() if self.address == "local" else None
        client = Client(cluster if cluster is not None else self.address)
        try:
            tag = uuid.uuid4().hex[:8]
            futures = {client.submit(execute, t, key=f"clustersim-{t.run_id}-{tag}", pure=False): t
                       for t in tasks}
            for future in dask_completed(list(futures)):
                yield _dask_outcome(future, futures[future])
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _local_cluster(self) -> Any:
        from dask.distributed import LocalCluster

        return LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                            dashboard_address=None, silence_logs=40)

    def describe(self) -> dict[str, Any]:
        return {"kind": "dask", "address": self.address, "workers": self.workers, "processes": self.processes}


def _dask_outcome(future: Any, task: RunTask) -> RunOutcome:
    try:
        return future.result()
    except Exception as exc:  # a worker killed or lost mid-run
        return _lost(task, exc)


def choose_runner(workers: int | None = None, dask: str | None = None, dask_processes: bool = True) -> Runner:
    """Dask if an address (or ``local``) is given; else a pool of ``workers`` (default: core count);
    in-process for one worker."""
    count = workers or os.cpu_count() or 1
    if dask:
        return DaskRunner(dask, count, dask_processes)
    return InProcessRunner() if count == 1 else PoolRunner(count)
