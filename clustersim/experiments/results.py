"""The results folder of a sweep, and loading it back as tidy DataFrames.

Layout (one folder per sweep)::

    manifest.json                              sweep file, expansion, configs, version, host, start, end
    runs.parquet                               one row per finished run: parameters, seed, status, summary
    done/<run_id>.json                         completion marker of each run, written last
    tenants/run_id=<id>/part.parquet           per-run tables, Hive-partitioned by run id
    tenant_groups/run_id=<id>/part.parquet
    timeseries/run_id=<id>/part.parquet
    latency_histograms/run_id=<id>/part.parquet

A run is complete only when its marker exists, parses, and every table it lists has the size and sha256 the
marker recorded; anything less is redone on resume, and ``load`` leaves such a run out, naming it.
``runs.parquet`` is derived from the markers and rewritten atomically as the sweep advances and when it
stops, however it stops.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from ..results_contract import SUMMARY_KEYS, TABLES
from .store import (
    inside,
    read_json,
    remove_stale_temps,
    table_damage,
    write_json_atomic,
    write_parquet_atomic,
    write_table,
)

if TYPE_CHECKING:
    from .sweepfile import ExpandedRun
    from .worker import RunOutcome

MANIFEST = "manifest.json"
SUMMARY_FILE = "summary.parquet"       # a single run's folder: its one-row summary
RUNS_FILE = "runs.parquet"             # a sweep's folder: one row per finished run
MARKERS = "done"
IDENTITY = ("run_id", "point", "replicate")
OUTCOME = ("seed", "config_hash", "status", "error", "wall_s", "host")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@functools.cache
def code_fingerprint() -> str:
    """sha256 of the package's own source and data files: results of different code never mix on resume.

    The version string stays the same between releases while the model changes; this does not.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".csv")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def package_version() -> str:
    """The installed clustersim's version, recorded in every manifest."""
    try:
        return version("clustersim")
    except PackageNotFoundError:
        return "0+unknown"


class SweepStore:
    """Reads and writes one sweep's results folder; never writes outside it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, *parts: str) -> Path:
        return inside(self.root, self.root.joinpath(*parts))

    def table_path(self, table: str, run_id: str) -> Path:
        return self.path(table, f"run_id={run_id}", "part.parquet")

    def marker_path(self, run_id: str) -> Path:
        return self.path(MARKERS, f"{run_id}.json")

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.root)
        remove_stale_temps(self.root / MARKERS)

    def record(self, outcome: RunOutcome, run: ExpandedRun) -> dict[str, Any]:
        """Store one outcome: its tables first, then its marker; returns the marker."""
        files: dict[str, dict[str, Any]] = {}
        tables = outcome.tables.tables() if outcome.tables is not None and outcome.status == "ok" else {}
        for table in TABLES:
            path = self.table_path(table, run.run_id)
            if table in tables:
                files[table] = write_table(path, tables[table])
            elif path.parent.exists():
                shutil.rmtree(path.parent)
        marker = {"run_id": run.run_id, "config_hash": run.config_hash, "seed": run.seed, "code": code_fingerprint(),
                  "status": outcome.status, "error": outcome.error, "traceback": outcome.traceback,
                  "wall_s": outcome.wall_s, "host": outcome.host, "finished": now(),
                  "summary": outcome.summary, "files": files}
        write_json_atomic(self.marker_path(run.run_id), marker)
        return marker

    def finished(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Markers of the runs that are complete (ok with whole tables) or recorded as failed."""
        return self.scan(run_ids)[0]

    def scan(self, run_ids: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Markers of the finished runs, and why each other run that left a marker must be redone."""
        done, damaged = {}, {}
        for run_id in run_ids:
            path = self.marker_path(run_id)
            if not path.exists():
                continue
            marker = read_json(path)
            why = "its completion marker is unreadable" if marker is None else self.damage(marker)
            if why is None:
                done[run_id] = marker
            else:
                damaged[run_id] = why
        return done, damaged

    def damage(self, marker: Mapping[str, Any]) -> str | None:
        """Why a run's marker and tables are not a trustworthy result; None when they are."""
        if marker.get("code") != code_fingerprint():   # made by other code: redo, never mix models
            return "it was made by other code"
        if marker.get("status") == "failed":
            return None
        files = marker.get("files") or {}
        if marker.get("status") != "ok" or set(files) != set(TABLES):
            return "its marker does not list every table"
        for table in TABLES:
            why = table_damage(self.table_path(table, marker["run_id"]), files[table])
            if why is not None:
                return f"table {table}: {why}"
        return None

    def write_runs(self, runs: Iterable[ExpandedRun],
                   markers: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
        frame = runs_frame(runs, markers)
        write_parquet_atomic(self.path(RUNS_FILE), frame)
        return frame

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        write_json_atomic(self.path(MANIFEST), dict(manifest))


def runs_frame(runs: Iterable[ExpandedRun], markers: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finished run, in expansion order: identity, parameters, outcome, summary keys."""
    rows, params = [], []
    for run in runs:
        marker = markers.get(run.run_id)
        if marker is None:
            continue
        params += [k for k in run.params if k not in params]
        summary = marker.get("summary") or {}
        outcome = {"seed": run.seed, "config_hash": run.config_hash,
                   **{k: marker.get(k) for k in OUTCOME[2:]}}
        rows.append({"run_id": run.run_id, "point": run.point, "replicate": run.replicate,
                     **{k: _cell(v) for k, v in run.params.items()}, **outcome,
                     **{k: summary.get(k, float("nan")) for k in SUMMARY_KEYS},
                     **{k: v for k, v in sorted(summary.items()) if k not in SUMMARY_KEYS}})
    columns = [*IDENTITY, *params, *OUTCOME, *SUMMARY_KEYS]
    frame = pd.DataFrame(rows, columns=[*columns, *_extra_columns(rows, columns)])
    for column in params:
        frame[column] = _uniform(frame[column])
    return frame


def _cell(value: Any) -> Any:
    """A parameter value as a Parquet cell: scalars as they are, lists and mappings as JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True)


def _uniform(column: pd.Series) -> pd.Series:
    """A column of one type: mixed types (other than int with float) become text."""
    kinds = {type(v) for v in column if v is not None and v == v}
    if len(kinds) > 1 and not kinds <= {int, float}:
        return column.map(lambda v: None if v is None else str(v))
    return column


def _extra_columns(rows: list[dict[str, Any]], known: list[str]) -> list[str]:
    return sorted({k for row in rows for k in row} - set(known))


class Results(NamedTuple):
    """A results folder as DataFrames; per-run tables carry the run's parameters, seed and config hash."""

    runs: pd.DataFrame
    tenants: pd.DataFrame
    tenant_groups: pd.DataFrame
    timeseries: pd.DataFrame
    latency_histograms: pd.DataFrame


def load(folder: str | Path) -> Results:
    """Read a sweep folder (``runs.parquet``) or a single-run folder (``summary.parquet``)."""
    root = Path(folder)
    if (root / RUNS_FILE).exists():
        runs = _drop_damaged(root, pd.read_parquet(root / RUNS_FILE))
        tables = [_sweep_table(root, name, runs) for name in TABLES]
    elif (root / SUMMARY_FILE).exists():
        _check_run_dir(root)
        runs = pd.read_parquet(root / SUMMARY_FILE)
        runs.insert(0, "run_id", runs["config_hash"].str[:16])
        tables = [_run_table(root, name, runs) for name in TABLES]
    else:
        raise FileNotFoundError(f"{root} holds no results ({RUNS_FILE} or {SUMMARY_FILE})")
    return Results(runs, *tables)


class DamagedResults(UserWarning):
    """Runs of a results folder whose tables do not match their completion markers; left out."""


def _drop_damaged(root: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each ok run whose tables do not match its marker marked ``damaged``, with a warning."""
    store, damaged = SweepStore(root), {}
    for run_id in runs.loc[runs["status"] == "ok", "run_id"]:
        marker = read_json(store.marker_path(run_id))
        files = (marker or {}).get("files") or {}
        why = next((f"table {t}: {w}" for t in TABLES
                    if (w := table_damage(store.table_path(t, run_id), files.get(t))) is not None), None)
        if marker is None or why is not None:
            damaged[run_id] = why or "its completion marker is unreadable"
    if damaged:
        lines = "; ".join(f"run {run_id}: {why}" for run_id, why in damaged.items())
        warnings.warn(f"{root}: left out {len(damaged)} damaged run(s) (run the sweep again to redo them): "
                      f"{lines}", DamagedResults, stacklevel=3)
        runs = runs.copy()
        runs.loc[runs["run_id"].isin(list(damaged)), "status"] = "damaged"
    return runs


def _sweep_table(root: Path, name: str, runs: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for run_id in runs.loc[runs["status"] == "ok", "run_id"]:
        frame = pd.read_parquet(root / name / f"run_id={run_id}" / "part.parquet")
        frames.append(frame.assign(run_id=run_id))
    return _with_run_columns(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), runs)


def _check_run_dir(root: Path) -> None:
    """A single run's tables must match the checksums its manifest recorded (when it recorded them)."""
    manifest = read_json(root / MANIFEST) or {}
    for filename, record in (manifest.get("files") or {}).items():
        why = table_damage(root / filename, record)
        if why is not None:
            name = manifest.get("name", root.name)
            raise ValueError(f"{root}: run {name!r} is damaged: {filename}: {why}; run it again")


def _run_table(root: Path, name: str, runs: pd.DataFrame) -> pd.DataFrame:
    frame = pd.read_parquet(root / f"{name}.parquet").assign(run_id=runs["run_id"].iloc[0])
    return _with_run_columns(frame, runs)


def _with_run_columns(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Join each row to its run's parameters, seed and config hash (not its summary numbers)."""
    if frame.empty:
        return frame
    dropped = {*SUMMARY_KEYS, "error", "host", "wall_s", *frame.columns}
    keep = ["run_id", *(c for c in runs.columns if c not in dropped)]
    return frame.merge(runs[keep], on="run_id", how="left")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a results folder."""
    manifest = read_json(Path(folder) / MANIFEST)
    if manifest is None:
        raise FileNotFoundError(f"{folder}: no readable {MANIFEST}")
    return manifest
