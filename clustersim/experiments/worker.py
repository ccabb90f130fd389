"""One run, executed where a runner sends it: in-process, in a pool process or on a Dask worker.

``execute(task)`` never raises for a failing simulation: it returns a RunOutcome with status ``failed`` and
the error, so a sweep records it and goes on. A task with a timeout runs in a child interpreter started with
``subprocess`` (``python -m clustersim.experiments.worker``) and is killed with its process group at the
deadline. A child interpreter rather than a multiprocessing child because pool and Dask worker processes
may be daemonic, and daemonic processes may not start multiprocessing children; a thread could not be
stopped at all. The simulation is named by ``module:function`` or given as a picklable callable, so it can
travel to any worker; the real one is imported only when a run starts.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..results_contract import SUMMARY_KEYS, TABLES, RunTables
from .config import RunConfig

DEFAULT_SIMULATE = "clustersim.fleet.simulate:simulate"
SIMULATE_ENV = "CLUSTERSIM_SIMULATE"  # "module:function" to run instead of the fleet simulation
Progress = Callable[[float, float], None]
SimulateSpec = str | Callable[..., Any]


class SimulateUnavailable(RuntimeError):
    """The simulation entry point cannot be imported."""


def simulate_spec(spec: SimulateSpec | None = None) -> SimulateSpec:
    """The simulation to use: ``spec`` if given, else ``$CLUSTERSIM_SIMULATE``, else the fleet's."""
    return spec if spec is not None else os.environ.get(SIMULATE_ENV) or DEFAULT_SIMULATE


def resolve_simulate(spec: SimulateSpec | None = None) -> Callable[..., Any]:
    """The simulate callable named by ``spec`` (``module:function``) or ``spec`` itself."""
    spec = simulate_spec(spec)
    if callable(spec):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr or "simulate")
    except (ImportError, AttributeError) as exc:
        raise SimulateUnavailable(f"the simulation {spec!r} is not available ({exc})") from None


@dataclass(frozen=True)
class RunTask:
    """What a worker needs: the resolved config (plain data), the simulation and an optional deadline."""

    run_id: str
    config: dict[str, Any]
    simulate: SimulateSpec = DEFAULT_SIMULATE
    timeout_s: float | None = None


@dataclass
class RunOutcome:
    """A finished run: status ``ok`` with its tables, or ``failed`` with the error (and no tables)."""

    run_id: str
    status: str
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0
    host: str = field(default_factory=socket.gethostname)
    tables: RunTables | None = None

    @property
    def summary(self) -> dict[str, float]:
        """The run's summary; empty for a failed run."""
        return self.tables.summary if self.tables is not None else {}


def execute(task: RunTask) -> RunOutcome:
    """Run ``task`` here, or in a child interpreter under its deadline when it has a timeout."""
    if task.timeout_s:
        return _execute_with_deadline(task)
    return execute_here(task)


def execute_here(task: RunTask, progress: Progress | None = None) -> RunOutcome:
    """Run ``task`` in this process; any Exception becomes a failed outcome."""
    start = time.perf_counter()
    try:
        config = RunConfig.model_validate(task.config)
        output = resolve_simulate(task.simulate)(config, progress=progress)
        tables = check_output(output)
    except Exception as exc:
        return RunOutcome(task.run_id, "failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(), wall_s=time.perf_counter() - start)
    return RunOutcome(task.run_id, "ok", wall_s=time.perf_counter() - start, tables=tables)


def check_output(output: Any) -> RunTables:
    """A simulate result as RunTables (summary: contract keys first, as floats), or an error."""
    summary = dict(output.summary)
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ValueError(f"simulate returned a summary without {', '.join(missing)}")
    ordered = {key: float(summary[key]) for key in SUMMARY_KEYS}
    ordered.update({key: float(summary[key]) for key in sorted(summary) if key not in ordered})
    tables = {name: getattr(output, name, None) for name in TABLES}
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"simulate returned {name} as {type(frame).__name__}, not a pandas DataFrame")
    return RunTables(ordered, **tables)


def _execute_with_deadline(task: RunTask) -> RunOutcome:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clustersim-run-") as tmp:
        task_path, out_path, err_path = (Path(tmp) / n for n in ("task.pkl", "outcome.pkl", "stderr.txt"))
        task_path.write_bytes(pickle.dumps(replace(task, timeout_s=None)))
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", __name__, str(task_path), str(out_path)],
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            try:
                proc.wait(timeout=task.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return RunOutcome(task.run_id, "failed", error=f"timed out after {task.timeout_s:g} s",
                                  wall_s=time.perf_counter() - start)
        if not out_path.exists():
            tail = err_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            return RunOutcome(task.run_id, "failed", wall_s=time.perf_counter() - start,
                              error=f"run process exited with status {proc.returncode} {tail[0]}".strip())
        return pickle.loads(out_path.read_bytes())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _child_main(task_path: str, out_path: str) -> None:
    """Entry of the child interpreter: run the pickled task, write the pickled outcome atomically."""
    task = pickle.loads(Path(task_path).read_bytes())
    outcome = execute_here(task)
    tmp = Path(out_path).with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(outcome))
    os.replace(tmp, out_path)


if __name__ == "__main__":
    # Through the package module, so that pickled outcomes name clustersim's classes, not __main__'s.
    from clustersim.experiments import worker

    worker._child_main(*sys.argv[1:3])
