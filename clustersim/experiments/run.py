"""One simulated run from a run file: validate, simulate, and store the results with a manifest.

``run`` is what ``clustersim run`` and ``clustersim.run`` do. The config is validated completely before
the simulation starts. Results go to one folder chosen by the caller and nowhere else: the summary and the
tables of ``TABLES`` as Parquet files, and ``manifest.json`` (resolved config, config hash, seed, package
version, wall time, status, error), each written atomically. The manifest is written last, so a folder
whose manifest says ``ok`` holds a complete result; on failure the manifest says ``failed`` with the error
and the tables are removed.

With ``workers`` > 1 or ``dask``, the fleet's nodes are split over worker processes (a local pool or a
Dask cluster, the runners a sweep uses) and the shards' results merged (``sharded.py``): the same tables,
bit for bit, as a serial run.
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..results_contract import TABLES, RunTables
from .config import RunConfig, config_hash, load_config, resolved
from .errors import ConfigError, problem
from .results import MANIFEST, MARKERS, RUNS_FILE, SUMMARY_FILE, code_fingerprint, package_version
from .runners import InProcessRunner, Runner, choose_runner
from .sharded import execute_sharded, sharded_module
from .store import inside, write_json_atomic, write_table
from .worker import DEFAULT_SIMULATE, Progress, RunTask, SimulateSpec, execute_here, resolve_simulate, simulate_spec


class RunFailed(RuntimeError):
    """The simulation raised; the message carries its error, the manifest its traceback."""


@dataclass
class RunResult(RunTables):
    """The results of one run, as stored: its tables and its manifest."""

    manifest: dict[str, Any]


def as_config(source: RunConfig | str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    """A validated RunConfig from a config object, a run file path or a mapping, overrides applied."""
    if isinstance(source, RunConfig):
        return load_config(resolved(source), overrides) if overrides else source
    return load_config(source, overrides)


def run(config_or_path: RunConfig | str | Path | Mapping[str, Any], out: str | Path | None = None,
        overrides: Sequence[str] = (), *, workers: int | None = None, dask: str | None = None,
        simulate: SimulateSpec | None = None, progress: Progress | None = None, force: bool = False) -> RunResult:
    """Validate, simulate and (if ``out`` is given) store one run; raises ConfigError or RunFailed.

    Args:
        config_or_path: a run file, a mapping in run-file form, or a RunConfig.
        out: folder for the results; created if needed; nothing is written outside it.
        overrides: ``key.path=value`` strings applied before validation.
        workers: processes to split the fleet's nodes over, >= 1; default 1 (this process); with ``dask``,
            the shards (default: this machine's core count, also the LocalCluster's workers).
        dask: a Dask scheduler address, or ``local`` for a LocalCluster of ``workers`` workers.
        simulate: the simulation, ``module:function`` or a callable; default the fleet's.
        progress: called as ``progress(sim_time_done_s, duration_s)`` while the run advances.
        force: replace an earlier single run's results in ``out`` (never a sweep's).
    """
    config = as_config(config_or_path, overrides)
    runner = run_runner(workers, dask, simulate)
    if out is not None:
        check_out(Path(out), force)
    if isinstance(runner, InProcessRunner):
        resolve_simulate(simulate)  # fail now, not after set-up, if the simulation cannot be imported
    else:
        sharded_module()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    task = RunTask(config_hash(config)[:16], resolved(config), simulate_spec(simulate))
    if isinstance(runner, InProcessRunner):
        outcome = execute_here(task, progress)
    else:
        outcome = execute_sharded(task, runner, progress)
    manifest = run_manifest(config, started, outcome.wall_s, outcome.status, outcome.error, outcome.traceback)
    manifest["runner"] = runner.describe()
    if outcome.status != "ok":
        if out is not None:
            write_run_dir(Path(out), manifest, None)
        raise RunFailed(outcome.error)
    result = RunResult(**vars(outcome.tables), manifest=manifest)
    if out is not None:
        write_run_dir(Path(out), manifest, result)
    return result


def run_runner(workers: int | None, dask: str | None, simulate: SimulateSpec | None = None) -> Runner:
    """Where one run executes: in this process (the default), or split over a pool or a Dask cluster.

    Splitting is the fleet's own (its nodes are the shards), so it needs the fleet's simulation; bad values
    are refused (ConfigError, exit 2) before any work.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError([problem(("--workers",), workers, "an integer >= 1")], "the run's options")
    if dask is not None and (not isinstance(dask, str) or not dask.strip()):
        raise ConfigError([problem(("--dask",), dask, "a Dask scheduler address or 'local'")], "the run's options")
    if not dask and (workers or 1) == 1:
        return InProcessRunner()
    if simulate_spec(simulate) != DEFAULT_SIMULATE:
        raise ConfigError([problem(("--workers",), dask if dask else workers,
                                   f"1 (a run split over workers needs the fleet's simulation, not "
                                   f"{simulate_spec(simulate)!r})")], "the run's options")
    return choose_runner(workers, dask)


def run_manifest(config: RunConfig, started: str, wall_s: float, status: str, error: str | None,
                 trace: str | None = None) -> dict[str, Any]:
    return {
        "name": config.name, "status": status, "error": error, "traceback": trace,
        "config_hash": config_hash(config), "seed": config.seed, "version": package_version(),
        "code": code_fingerprint(),
        "python": platform.python_version(), "host": socket.gethostname(), "started": started,
        "wall_s": wall_s, "config": resolved(config),
    }


def check_out(out: Path, force: bool = False) -> None:
    """Refuse, before any work, a results folder a run cannot or must not write (ConfigError, exit 2)."""
    why = _out_problem(out, force)
    if why:
        raise ConfigError([problem(("--out",), str(out), why)], "the results folder")


def _out_problem(out: Path, force: bool) -> str | None:
    if out.exists() and not out.is_dir():
        return "a folder (this is a file)"
    if (out / RUNS_FILE).exists() or (out / MARKERS).is_dir():
        return "a folder for one run's results (this one holds a sweep's; use another)"
    if not force and ((out / MANIFEST).exists() or (out / SUMMARY_FILE).exists()):
        return "a new folder (this one holds an earlier run's results; --force replaces them)"
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"a folder this user can write ({existing} is not writable)"
    return None


def write_run_dir(out: Path, manifest: dict[str, Any], result: RunResult | None) -> None:
    """Tables first, manifest last (with each table's size and sha256); a failed run leaves only its
    manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files = {SUMMARY_FILE: None, **{f"{name}.parquet": name for name in TABLES}}
    records: dict[str, dict[str, Any]] = {}
    for filename, table in files.items():
        path = inside(out, out / filename)
        if result is None:
            path.unlink(missing_ok=True)
        else:
            frame = summary_frame(result.summary, manifest) if table is None else getattr(result, table)
            records[filename] = write_table(path, frame)
    write_json_atomic(inside(out, out / MANIFEST), {**manifest, "files": records})


def summary_frame(summary: Mapping[str, float], manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The one-row summary table: run identity, then every summary key."""
    ident = {"name": manifest["name"], "seed": manifest["seed"], "config_hash": manifest["config_hash"]}
    return pd.DataFrame([{**ident, **summary}])
