"""Capacity planning: for each alternative, the densest value of a knob that meets every SLO.

``plan`` reads a plan file (``planfile``), advances one bracket-then-bisect search per alternative
(``search``) and runs each probe (one value of one alternative) as its seeds' runs. The runs are expanded,
validated, stored and resumed exactly as a sweep's (``experiments.sweepfile.expand``, ``SweepStore``,
``choose_runner``), in ``DIR/runs``: a run complete there is never run again, so a second ``plan`` call
re-runs nothing complete and an interrupted one resumes. Each round sends the next probe of every
unfinished alternative to the runner together, so the runner has work for all its workers.

Writes, only under ``DIR``: ``best.parquet``, ``probes.parquet``, ``report.md``, ``plan.pdf``/``plan.png``,
``manifest.json``, and the runs folder (``clustersim.load(DIR / "runs")`` reads it like a sweep's).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clustersim.experiments.errors import ConfigError, problem
from clustersim.experiments.results import (
    MANIFEST,
    RUNS_FILE,
    SUMMARY_FILE,
    SweepStore,
    code_fingerprint,
    now,
    package_version,
)
from clustersim.experiments.runners import Runner, choose_runner
from clustersim.experiments.store import inside, write_bytes_atomic, write_json_atomic, write_parquet_atomic
from clustersim.experiments.sweepfile import ExpandedRun, SweepSpec, expand
from clustersim.experiments.worker import RunTask, SimulateSpec, resolve_simulate, simulate_spec
from clustersim.figures.planplot import plot_plan

from .planfile import Plan, Slo, load_plan
from .planreport import report_md
from .search import SearchOutcome, search

RUNS_DIR = "runs"
Notes = Callable[[str], None]


@dataclass
class PlanResult:
    """A finished plan: ``best`` (one row per alternative), ``probes`` (one row per alternative, value and
    seed), ``nonmonotone`` (each passing value found denser than a failing one) and the run counts."""

    best: pd.DataFrame
    probes: pd.DataFrame
    nonmonotone: pd.DataFrame
    out: Path
    runs: int
    executed: int

    @property
    def reused(self) -> int:
        return self.runs - self.executed

    @property
    def failed(self) -> int:
        return int((self.probes["status"] == "failed").sum()) if len(self.probes) else 0


@dataclass
class _Probe:
    alternative: int
    value: int
    runs: list[ExpandedRun]


def plan(source: str | Path | Mapping[str, Any], out: str | Path, *, workers: int | None = None,
         dask: str | None = None, simulate: SimulateSpec | None = None, notes: Notes | None = None) -> PlanResult:
    """Run the plan file (or mapping) ``source`` into ``out``; raises ConfigError before any run.

    Args:
        source: plan file path, or a mapping in plan-file form (a relative ``base`` is then relative to the
            working directory).
        out: the plan's folder; created if needed; nothing is written outside it.
        workers: processes; 1 runs in this process; default the core count.
        dask: a Dask scheduler address, or ``local`` for a LocalCluster of ``workers`` workers.
        simulate: the simulation (``module:function`` or picklable callable); default the fleet's.
        notes: called with one line per round of probes (how many runs, how many were complete).
    """
    spec = load_plan(source)
    sim = simulate_spec(simulate)
    resolve_simulate(sim)
    root = Path(out)
    check_plan_out(root)
    store = SweepStore(root / RUNS_DIR)
    store.prepare()
    runner = choose_runner(workers, dask)
    probes, outcomes, markers, executed = _search_all(spec, store, runner, sim, notes)
    all_runs = [r for p in probes for r in p.runs]
    store.write_runs(all_runs, markers)
    store.write_manifest(_manifest(source, spec, all_runs, runner, "runs"))
    result = _tables(spec, probes, outcomes, markers, store, root, len(all_runs), executed)
    write_outputs(spec, result, root, _manifest(source, spec, all_runs, runner, "plan"))
    return result


def check_plan_out(out: Path) -> None:
    """A plan writes a folder of its own: not a file, a single run's folder or a sweep's."""
    why = None
    if out.exists() and not out.is_dir():
        why = "a folder (this is a file)"
    elif (out / SUMMARY_FILE).exists() or (out / RUNS_FILE).exists():
        why = "a folder for a plan's results (this one holds a run's or a sweep's; use another)"
    if why:
        raise ConfigError([problem(("--out",), str(out), why)], "the results folder")


def _search_all(spec: Plan, store: SweepStore, runner: Runner, sim: SimulateSpec, notes: Notes | None
                ) -> tuple[list[_Probe], dict[int, SearchOutcome], dict[str, dict[str, Any]], int]:
    """Advance every alternative's search a probe per round until all have ended."""
    s = spec.spec.search
    searches = {i: search(s.low, s.high, s.goal) for i in range(len(spec.alternatives))}
    pending = {i: next(gen) for i, gen in searches.items()}
    probes: list[_Probe] = []
    outcomes: dict[int, SearchOutcome] = {}
    markers: dict[str, dict[str, Any]] = {}
    executed, round_no = 0, 0
    while pending:
        batch = [_Probe(i, v, probe_runs(spec, i, v)) for i, v in sorted(pending.items())]
        round_no += 1
        executed += _run_batch(batch, store, runner, sim, markers, notes, round_no)
        probes += batch
        following = {}
        for probe in batch:
            ok = probe_passes(spec.spec.slo, [run_values(store, markers[r.run_id], spec.spec.slo)
                                              for r in probe.runs])
            try:
                following[probe.alternative] = searches[probe.alternative].send(ok)
            except StopIteration as stop:
                outcomes[probe.alternative] = stop.value
        pending = following
    return probes, outcomes, markers, executed


def probe_runs(spec: Plan, alternative: int, value: int) -> list[ExpandedRun]:
    """The runs of one probe: the alternative's overrides and the knob's value, one run per seed."""
    params = {**spec.alternatives[alternative], spec.spec.search.key: value}
    sweep = SweepSpec(name=f"{spec.spec.name}-{alternative}-{value}", base={}, seeds=spec.spec.seeds,
                      grid={k: [v] for k, v in params.items()})
    return expand(sweep, spec.base)


def _run_batch(batch: list[_Probe], store: SweepStore, runner: Runner, sim: SimulateSpec,
               markers: dict[str, dict[str, Any]], notes: Notes | None, round_no: int) -> int:
    """Run the batch's runs that are not complete in the store; returns how many ran."""
    runs = {r.run_id: r for p in batch for r in p.runs}
    done, _redone = store.scan(runs)
    markers.update(done)
    todo = [r for i, r in runs.items() if i not in done]
    if notes is not None:
        notes(f"round {round_no}: {len(batch)} probe(s), {len(runs)} runs: {len(runs) - len(todo)} complete "
              f"(skipped), {len(todo)} to run")
    for outcome in runner.run([RunTask(r.run_id, r.config, sim) for r in todo]):
        markers[outcome.run_id] = store.record(outcome, runs[outcome.run_id])
    return len(todo)


def run_values(store: SweepStore, marker: Mapping[str, Any], slos: list[Slo]) -> dict[str, float]:
    """Each SLO's metric in one run (NaN when the run failed or the tenant has no row)."""
    out: dict[str, float] = {}
    tenants = None
    for slo in slos:
        value = float("nan")
        if marker.get("status") == "ok" and slo.tenant is None:
            value = float((marker.get("summary") or {}).get(slo.metric, float("nan")))
        elif marker.get("status") == "ok":
            if tenants is None:
                tenants = pd.read_parquet(store.table_path("tenants", marker["run_id"]))
            rows = tenants.loc[tenants["tenant"] == slo.tenant, slo.metric]
            value = float(rows.iloc[0]) if len(rows) else float("nan")
        out[slo.label] = value
    return out


def failing(slos: list[Slo], per_seed: list[dict[str, float]]) -> list[Slo]:
    """The SLOs that do not hold over these seeds' values."""
    return [slo for slo in slos if not slo.holds([v[slo.label] for v in per_seed])]


def probe_passes(slos: list[Slo], per_seed: list[dict[str, float]]) -> bool:
    return not failing(slos, per_seed)


def _tables(spec: Plan, probes: list[_Probe], outcomes: dict[int, SearchOutcome],
            markers: dict[str, dict[str, Any]], store: SweepStore, root: Path, runs: int,
            executed: int) -> PlanResult:
    slos, key = spec.spec.slo, spec.spec.search.key
    labels = list(dict.fromkeys(slo.label for slo in slos))
    rows, values = [], {}
    for probe in sorted(probes, key=lambda p: (p.alternative, p.value)):
        per_seed = [run_values(store, markers[r.run_id], slos) for r in probe.runs]
        values[(probe.alternative, probe.value)] = per_seed
        ok = probe_passes(slos, per_seed)
        for run, vals in zip(probe.runs, per_seed, strict=True):
            marker = markers[run.run_id]
            rows.append({"alternative": probe.alternative, **_cells(spec.alternatives[probe.alternative]),
                         key: probe.value, "seed": run.seed, **{label: vals[label] for label in labels},
                         "slo_ok": all(slo.met(vals[slo.label]) for slo in slos), "probe_ok": ok,
                         "status": marker.get("status"), "error": marker.get("error"), "run_id": run.run_id})
    best = [_best_row(spec, i, outcomes[i], values, labels) for i in range(len(spec.alternatives))]
    odd = [{"alternative": i, **_cells(spec.alternatives[i]), "failing_value": f, "passing_value": p}
           for i in range(len(spec.alternatives)) for f, p in outcomes[i].nonmonotone]
    columns = ["alternative", *spec.keys, "failing_value", "passing_value"]
    return PlanResult(pd.DataFrame(best), pd.DataFrame(rows), pd.DataFrame(odd, columns=columns), root, runs,
                      executed)


def _best_row(spec: Plan, i: int, outcome: SearchOutcome, values: Mapping[tuple[int, int], Any],
              labels: list[str]) -> dict[str, Any]:
    slos = spec.spec.slo
    at = outcome.next_value   # the first failing value: low when even low fails, None at the limit
    binding = ", ".join(s.describe() for s in failing(slos, values[(i, at)])) if at is not None else ""
    best_vals = values.get((i, outcome.best), []) if outcome.best is not None else []
    means = {label: float(np.mean([v[label] for v in best_vals])) if best_vals else float("nan")
             for label in labels}
    return {"alternative": i, **_cells(spec.alternatives[i]),
            "best_value": float(outcome.best) if outcome.best is not None else float("nan"),
            "next_value": float(outcome.next_value) if outcome.next_value is not None else float("nan"),
            "binding_slo": binding, "at_limit": outcome.at_limit, "nonmonotone": bool(outcome.nonmonotone),
            **means}


def _cells(params: Mapping[str, Any]) -> dict[str, Any]:
    """Alternative values as table cells: scalars as they are, lists and mappings as JSON text."""
    return {k: v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v, sort_keys=True)
            for k, v in params.items()}


def write_outputs(spec: Plan, result: PlanResult, root: Path, manifest: dict[str, Any]) -> None:
    """best.parquet, probes.parquet, report.md and plan.pdf/png, each written atomically inside ``root``."""
    write_parquet_atomic(inside(root, root / "best.parquet"), result.best)
    write_parquet_atomic(inside(root, root / "probes.parquet"), result.probes)
    write_parquet_atomic(inside(root, root / "nonmonotone.parquet"), result.nonmonotone)
    write_bytes_atomic(inside(root, root / "report.md"), report_md(spec, result).encode())
    plot_plan(root, spec.spec.search.key, [(s.label, s.metric, s.bound) for s in spec.spec.slo],
              spec.keys, inside(root, root / "plan.png"))
    write_json_atomic(inside(root, root / MANIFEST), {**manifest, "end": now(), "runs": result.runs,
                                                     "executed": result.executed})


def _manifest(source: str | Path | Mapping[str, Any], spec: Plan, runs: list[ExpandedRun], runner: Runner,
              kind: str) -> dict[str, Any]:
    """What reproduces the plan: its file and spec, the runs' expansion and configs, code and host."""
    out: dict[str, Any] = {"plan_file": str(source) if isinstance(source, str | Path) else None,
                           "plan": spec.spec.model_dump(mode="json"), "alternatives": spec.alternatives,
                           "version": package_version(), "code": code_fingerprint(),
                           "python": platform.python_version(), "runner": runner.describe()}
    if kind == "runs":
        out["expansion"] = [{"run_id": r.run_id, "params": r.params, "seed": r.seed,
                             "config_hash": r.config_hash} for r in runs]
        out["configs"] = {r.config_hash: {k: v for k, v in r.config.items() if k not in ("name", "seed")}
                          for r in runs}
    return out
