"""Where the runs of a sweep execute: in this process, a local process pool, or a Dask cluster.

Every runner sends the same picklable ``RunTask`` to the same ``worker.execute`` and yields the
``RunOutcome`` of each run as it completes; the sweep, not the runner, orders and stores the results. So
the results do not depend on the runner, bit for bit: a run's numbers are a function of its config and seed.
The pool uses the ``spawn`` start method, so nothing a worker needs may be unpicklable or live only in
``__main__``. A runner that loses a worker records that worker's runs as failed; the sweep goes on.

``map(fn, items, on_report)`` is the runners' other service, for the shards of one run (``shards.py``): each
call ``fn(item, report)`` runs where the runner runs things, ``report(value)`` reaches ``on_report(index,
value)`` here (directly, through a multiprocessing queue, or as a Dask worker event), results come back in
completion order, and the first call that raises (or whose worker is lost) stops the others and raises
``CallFailed`` naming it: the calls are the parts of one result, which is worth nothing without all of them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from .worker import RunOutcome, RunTask, execute

OnReport = Callable[[int, Any], None]
POLL_S = 0.2   # how often a runner waiting on its calls passes their reports on
STOP_GRACE_S = 2.0   # how long a stopped pool's workers get to exit on SIGTERM before SIGKILL


class CallFailed(RuntimeError):
    """Call ``index`` of a ``map`` raised ``error`` (or its worker was lost); the other calls were stopped."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.index, self.error = index, error


class Runner(Protocol):
    """Executes tasks and yields their outcomes in completion order."""

    workers: int

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]: ...

    def map(self, fn: Callable[[Any, Callable[[Any], None]], Any], items: Sequence[Any],
            on_report: OnReport | None = None) -> Iterator[tuple[int, Any]]: ...

    def describe(self) -> dict[str, Any]: ...


def _ignore(index: int, value: Any) -> None:
    return None


@dataclass(frozen=True)
class _DirectReport:
    """``report`` of an in-process call: straight to ``on_report``."""

    on_report: OnReport
    index: int

    def __call__(self, value: Any) -> None:
        self.on_report(self.index, value)


_REPORTS: Any = None   # in a pool worker: the queue its calls report to (set by the pool's initializer)


def _set_report_queue(reports: Any) -> None:
    global _REPORTS
    _REPORTS = reports


@dataclass(frozen=True)
class _QueueReport:
    """``report`` of a call in a pool worker: onto the pool's report queue."""

    index: int

    def __call__(self, value: Any) -> None:
        _REPORTS.put((self.index, value))


def _drain(reports: Any, on_report: OnReport) -> None:
    while True:
        try:
            index, value = reports.get_nowait()
        except queue.Empty:
            return
        on_report(index, value)


def _lost(task: RunTask, exc: BaseException) -> RunOutcome:
    return RunOutcome(task.run_id, "failed", error=f"worker lost: {type(exc).__name__}: {exc}")


@dataclass
class InProcessRunner:
    """Runs one task after another in this process (``--workers 1``)."""

    workers: int = 1

    def run(self, tasks: Sequence[RunTask]) -> Iterator[RunOutcome]:
        for task in tasks:
            yield execute(task)

    def map(self, fn: Callable[[Any, Callable[[Any], None]], Any], items: Sequence[Any],
            on_report: OnReport | None = None) -> Iterator[tuple[int, Any]]:
        for index, item in enumerate(items):
            try:
                result = fn(item, _DirectReport(on_report or _ignore, index))
            except Exception as exc:
                raise CallFailed(index, exc) from exc
            yield index, result

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
        try:   # the submits too: an interrupt among them must still stop the workers already started
            futures: dict[Future[RunOutcome], RunTask] = {pool.submit(execute, t): t for t in tasks}
            for future in as_completed(futures):
                yield _outcome(future, futures[future])
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)

    def map(self, fn: Callable[[Any, Callable[[Any], None]], Any], items: Sequence[Any],
            on_report: OnReport | None = None) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        context = multiprocessing.get_context("spawn")
        reports = context.Queue()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)), mp_context=context,
                                   initializer=_set_report_queue, initargs=(reports,))
        try:
            futures = {pool.submit(fn, item, _QueueReport(i)): i for i, item in enumerate(items)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                _drain(reports, on_report or _ignore)
                for future in done:
                    yield futures[future], _result(future, futures[future])
        except BaseException:
            _stop_pool(pool)
            raise
        finally:
            pool.shutdown(wait=True)
            reports.close()

    def describe(self) -> dict[str, Any]:
        return {"kind": "process-pool", "workers": self.workers}


def _result(future: Any, index: int) -> Any:
    """A call's result, or CallFailed naming its error (a lost worker's included)."""
    try:
        return future.result()
    except Exception as exc:
        raise CallFailed(index, exc) from exc


def _outcome(future: Future[RunOutcome], task: RunTask) -> RunOutcome:
    try:
        return future.result()
    except Exception as exc:  # BrokenProcessPool when a worker dies
        return _lost(task, exc)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and end the running ones now (an interrupted sweep resumes them later).

    ``shutdown(cancel_futures=True)`` alone would wait for the running runs to finish; the pool offers no
    public way to end them, so the worker processes are terminated through its process table. A worker
    that outlives ``STOP_GRACE_S`` is killed: one started with SIGTERM ignored (the disposition a process
    inherits from whatever launched the sweep) would otherwise run its run to the end.
    """
    # Taken before shutdown, which drops the pool's reference to its process table (None afterwards).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(STOP_GRACE_S)


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

    def map(self, fn: Callable[[Any, Callable[[Any], None]], Any], items: Sequence[Any],
            on_report: OnReport | None = None) -> Iterator[tuple[int, Any]]:
        """Reports travel as Dask worker events on a topic of this call; the client's handler queues them
        and they are passed on here, in this thread."""
        with self._client() as client:
            tag = uuid.uuid4().hex[:8]
            topic, reports = f"clustersim-report-{tag}", queue.SimpleQueue()
            client.subscribe_topic(topic, lambda event: reports.put(event[1]))
            futures = {client.submit(fn, item, _DaskReport(topic, i), key=f"clustersim-part-{i}-{tag}",
                                     pure=False): i for i, item in enumerate(items)}
            pending = set(futures)
            try:
                while pending:
                    done = {f for f in pending if f.done()}
                    pending -= done
                    _drain(reports, on_report or _ignore)
                    for future in done:
                        yield futures[future], _result(future, futures[future])
                    if pending and not done:
                        time.sleep(POLL_S)
            finally:
                client.cancel(list(pending))
                client.unsubscribe_topic(topic)

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from dask.distributed import Client

        cluster = self._local_cluster() if self.address == "local" else None
        client = Client(cluster if cluster is not None else self.address)
        try:
            yield client
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


@dataclass(frozen=True)
class _DaskReport:
    """``report`` of a call on a Dask worker: an event on the call's topic."""

    topic: str
    index: int

    def __call__(self, value: Any) -> None:
        from dask.distributed import get_worker

        get_worker().log_event(self.topic, (self.index, value))


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
