"""Run a sweep: expand and validate every run, skip the complete ones, execute the rest, store each.

Every expanded run is validated before the first one starts, so a typo in the fifth grid value costs
nothing. Runs already complete in the results folder, by (config hash, seed), are not repeated, so an
interrupted or extended sweep is resumed by running it again; ``rerun_failed`` retries the failures. A run
that fails (raises, or passes ``timeout``) is recorded with its error and the others go on.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from .errors import ConfigError, problem
from .results import SUMMARY_FILE, SweepStore, code_fingerprint, now, package_version
from .runners import Runner, choose_runner
from .sweepfile import ExpandedRun, SweepSpec, expand, load_sweep
from .worker import RunOutcome, RunTask, SimulateSpec, resolve_simulate, simulate_spec

RUNS_TABLE_EVERY_S = 10.0  # how often runs.parquet is refreshed while a sweep advances
MAX_EXIT_STATUS = 100
Notes = Callable[[str], None]   # receives the lines reporting a resumed sweep's state


@dataclass
class SweepReport:
    """What a sweep left in its folder: the runs table and how many runs were reused or executed."""

    out: Path
    runs: pd.DataFrame
    total: int
    reused: int
    executed: int
    redone: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return int((self.runs["status"] == "failed").sum()) if len(self.runs) else 0

    @property
    def exit_status(self) -> int:
        """Number of failed runs, capped at 100; 0 when every run is ok."""
        return min(self.failed, MAX_EXIT_STATUS)

    def slowest(self, n: int = 5) -> pd.DataFrame:
        ok = self.runs[self.runs["status"] == "ok"]
        return ok.sort_values("wall_s", ascending=False).head(n)

    def failures(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "failed"]


def plan(source: str | Path | Mapping[str, Any], out: str | Path | None = None) -> pd.DataFrame:
    """The expanded runs (parameters, seed, config hash) and, if ``out`` exists, each one's state."""
    spec, base = load_sweep(source)
    runs = expand(spec, base)
    finished = SweepStore(out).finished(r.run_id for r in runs) if out and Path(out).exists() else {}
    rows = [{"run_id": r.run_id, "point": r.point, "replicate": r.replicate, **r.params, "seed": r.seed,
             "config_hash": r.config_hash[:12], "state": finished.get(r.run_id, {}).get("status", "todo")}
            for r in runs]
    return pd.DataFrame(rows)


def sweep(source: str | Path | Mapping[str, Any], out: str | Path, *, workers: int | None = None,
          dask: str | None = None, timeout: float | None = None, rerun_failed: bool = False,
          simulate: SimulateSpec | None = None, progress: bool | None = None,
          dask_processes: bool = True, notes: Notes | None = None,
          log_file: str | Path | None = None) -> SweepReport:
    """Run every run of a sweep file (or mapping) not yet complete in ``out``.

    Args:
        source: sweep file path, or a mapping in sweep-file form (a relative ``base`` is then relative
            to the working directory).
        out: results folder; created if needed.
        workers: processes; 1 runs in this process; default the core count.
        dask: a Dask scheduler address, or ``local`` for a LocalCluster of ``workers`` workers.
        timeout: seconds a run may take before it is killed and recorded as failed.
        rerun_failed: run again the runs recorded as failed.
        simulate: the simulation (``module:function`` or picklable callable); default the fleet's.
        progress: show a progress bar; default: only when stderr is a terminal.
        dask_processes: LocalCluster workers as processes (True) or threads.
        notes: called with each line that reports the resume state (skipped, redone, new runs).
        log_file: appended one JSON line per finished run (run id, parameters, seed, status, wall time).
    """
    spec, base = load_sweep(source)
    runs = expand(spec, base)
    sim = simulate_spec(simulate)
    resolve_simulate(sim)
    check_sweep_out(Path(out))
    store = SweepStore(out)
    store.prepare()
    markers, redone = store.scan(r.run_id for r in runs)
    if rerun_failed:
        redone.update({i: "it failed (--rerun-failed)" for i, m in markers.items() if m["status"] == "failed"})
    todo = [r for r in runs if r.run_id not in markers or r.run_id in redone]
    for run in todo:
        markers.pop(run.run_id, None)
    _note_resume(notes, runs, todo, redone)
    runner = choose_runner(workers, dask, dask_processes)
    manifest = sweep_manifest(source, spec, runs, runner, timeout)
    store.write_manifest(manifest)
    tasks = [RunTask(r.run_id, r.config, sim, timeout) for r in todo]
    show = sys.stderr.isatty() if progress is None else progress
    _execute(runner, tasks, runs, store, markers, manifest, show, log_file)
    frame = store.write_runs(runs, markers)
    return SweepReport(Path(out), frame, len(runs), len(runs) - len(todo), len(todo), redone)


def check_sweep_out(out: Path) -> None:
    """A sweep writes a folder of its own kind: not a file, not a single run's results (exit 2)."""
    why = None
    if out.exists() and not out.is_dir():
        why = "a folder (this is a file)"
    elif (out / SUMMARY_FILE).exists():
        why = "a folder for a sweep's results (this one holds a single run's; use another)"
    if why:
        raise ConfigError([problem(("--out",), str(out), why)], "the results folder")


def _note_resume(notes: Notes | None, runs: list[ExpandedRun], todo: list[ExpandedRun],
                 redone: Mapping[str, str]) -> None:
    """At the start: how many runs are skipped (complete), redone (and why) and new."""
    if notes is None:
        return
    skipped = len(runs) - len(todo)
    notes(f"{len(runs)} runs: {skipped} complete (skipped), {len(redone)} redone, {len(todo) - len(redone)} new")
    by_id = {r.run_id: r for r in runs}
    for run_id, why in redone.items():
        if run_id in by_id:
            notes(f"  redo run {run_id} (point {by_id[run_id].point}, seed {by_id[run_id].seed}): {why}")


def _execute(runner: Runner, tasks: list[RunTask], runs: list[ExpandedRun], store: SweepStore,
             markers: dict[str, dict[str, Any]], manifest: dict[str, Any], progress: bool,
             log_file: str | Path | None = None) -> None:
    """Run the tasks, recording each outcome as it arrives; the runs table and manifest are written
    however this ends (a KeyboardInterrupt included)."""
    by_id = {r.run_id: r for r in runs}
    bar = tqdm(total=len(tasks), unit="run", desc="sweep", disable=not progress, dynamic_ncols=True)
    counts = {"ok": 0, "failed": 0}
    status, last_table = "interrupted", time.monotonic()
    try:
        for outcome in runner.run(tasks):
            markers[outcome.run_id] = store.record(outcome, by_id[outcome.run_id])
            _log_line(log_file, outcome, by_id[outcome.run_id])
            _advance(bar, counts, outcome)
            if time.monotonic() - last_table > RUNS_TABLE_EVERY_S:
                store.write_runs(runs, markers)
                last_table = time.monotonic()
        status = "complete"
    finally:
        bar.close()
        store.write_runs(runs, markers)
        store.write_manifest({**manifest, "end": now(), "status": status, "counts": _counts(runs, markers)})


def _log_line(log_file: str | Path | None, outcome: RunOutcome, run: ExpandedRun) -> None:
    """One JSON line per finished run, appended (and flushed) as it finishes."""
    if log_file is None:
        return
    line = {"time": now(), "run_id": run.run_id, "point": run.point, "replicate": run.replicate,
            "params": run.params, "seed": run.seed, "status": outcome.status, "wall_s": round(outcome.wall_s, 3),
            "error": outcome.error}
    with open(log_file, "a") as fh:
        fh.write(json.dumps(line, default=str) + "\n")


def _advance(bar: Any, counts: dict[str, int], outcome: RunOutcome) -> None:
    counts[outcome.status] = counts.get(outcome.status, 0) + 1
    bar.set_postfix(done=counts["ok"], failed=counts["failed"], refresh=False)
    bar.update(1)


def _counts(runs: list[ExpandedRun], markers: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    states = [markers[r.run_id]["status"] if r.run_id in markers else "pending" for r in runs]
    return {state: states.count(state) for state in ("ok", "failed", "pending")}


def sweep_manifest(source: str | Path | Mapping[str, Any], spec: SweepSpec, runs: list[ExpandedRun],
                   runner: Runner, timeout: float | None) -> dict[str, Any]:
    """Everything needed to reproduce the sweep: the file, its expansion and each resolved config."""
    configs = {r.config_hash: {k: v for k, v in r.config.items() if k not in ("name", "seed")} for r in runs}
    return {
        "sweep_file": str(source) if isinstance(source, str | Path) else None,
        "sweep": spec.model_dump(mode="json"),
        "expansion": [{"run_id": r.run_id, "point": r.point, "replicate": r.replicate, "params": r.params,
                       "seed": r.seed, "config_hash": r.config_hash} for r in runs],
        "configs": configs, "version": package_version(), "code": code_fingerprint(),
        "python": platform.python_version(),
        "host": socket.gethostname(), "runner": runner.describe(), "timeout_s": timeout,
        "start": now(), "end": None, "status": "running",
    }
