"""What-if: is the change from configuration A to B real or noise? Paired runs and a t interval.

Both sides run with the same N seeds (spawned from A's seed as a sweep spawns them), so seed i of A and
seed i of B share their random streams wherever the configs agree: the pairs are matched, and the
difference of a pair removes the variation the seed alone causes (common random numbers and the paired-t
interval, literature.md section 11). For every summary metric, per tenant and per tenant x node
group, with d_i = B_i - A_i over the n pairs: ``delta`` = mean(d), and the 95% confidence interval of the
mean paired difference is the Student t interval mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n) (sd with n-1
in the denominator; ``scipy.stats.t``). ``significant`` is true when the interval excludes 0. With one seed
there is no interval (NaN) and nothing is significant; when every pair differs by the same amount the
interval is that one point.

The runs are stored and resumed like a sweep's (``DIR/a``, ``DIR/b`` when ``out`` is given, else a
temporary folder), and ``compare.parquet``, ``compare.md`` and ``manifest.json`` go to ``out``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clustersim.experiments.errors import ConfigError, problem
from clustersim.experiments.metrics import metric
from clustersim.experiments.results import MANIFEST, SweepStore, code_fingerprint, now, package_version
from clustersim.experiments.runners import choose_runner
from clustersim.experiments.store import inside, write_bytes_atomic, write_json_atomic, write_parquet_atomic
from clustersim.experiments.sweepfile import ExpandedRun, SweepSpec, expand, replication_seeds
from clustersim.experiments.worker import RunTask, SimulateSpec, resolve_simulate, simulate_spec
from clustersim.results_contract import SUMMARY_KEYS

from .planreport import cell, markdown_table
from .sources import Source, resolve_side

CONFIDENCE = 0.95
COLUMNS = ("tenant", "node_group", "metric", "unit", "a_mean", "b_mean", "delta", "ci_low", "ci_high",
           "significant", "n")


def paired_ci(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean of b - a, CI low, CI high): the Student t interval of the mean paired difference."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(d.mean())
    if len(d) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return mean, mean - half, mean + half


def compare(a: Source, b: Source, seeds: int = 5, *, out: str | Path | None = None, workers: int | None = None,
            dask: str | None = None, simulate: SimulateSpec | None = None) -> pd.DataFrame:
    """Run A and B on the same ``seeds`` seeds and return the paired comparison table (module docstring)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError([problem(("--seeds",), seeds, "a count >= 1")], "compare")
    config_a, config_b = resolve_side(a, "A"), resolve_side(b, "B")
    sim = simulate_spec(simulate)
    resolve_simulate(sim)
    seed_list = replication_seeds(int(config_a.get("seed", 0) or 0), seeds)
    runs = {side: _runs(config, side, seed_list) for side, config in (("a", config_a), ("b", config_b))}
    runner = choose_runner(workers, dask)
    with tempfile.TemporaryDirectory(prefix="clustersim-compare-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        if root.exists() and not root.is_dir():
            raise ConfigError([problem(("--out",), str(root), "a folder (this is a file)")], "compare")
        frames = {side: _side_values(SweepStore(root / side), side_runs, runner, sim)
                  for side, side_runs in runs.items()}
    table = comparison(frames["a"], frames["b"])
    if out is not None:
        _write(Path(out), table, config_a, config_b, seed_list)
    return table


def _runs(config: dict[str, Any], side: str, seeds: list[int]) -> list[ExpandedRun]:
    return expand(SweepSpec(name=f"compare-{side}", base={}, seeds=seeds), config)


def _side_values(store: SweepStore, runs: list[ExpandedRun], runner: Any, sim: SimulateSpec) -> pd.DataFrame:
    """Long table of one side: seed, tenant, node_group (None for a tenant's own row), metric, value."""
    store.prepare()
    by_id = {r.run_id: r for r in runs}
    markers, _redone = store.scan(by_id)
    todo = [r for r in runs if r.run_id not in markers]
    for outcome in runner.run([RunTask(r.run_id, r.config, sim) for r in todo]):
        markers[outcome.run_id] = store.record(outcome, by_id[outcome.run_id])
    store.write_runs(runs, markers)
    failed = [f"seed {r.seed}: {markers[r.run_id].get('error')}" for r in runs
              if markers[r.run_id].get("status") != "ok"]
    if failed:
        raise RuntimeError(f"compare: {len(failed)} run(s) of {store.root.name.upper()} failed: " + "; ".join(failed))
    frames = []
    for run in runs:
        tenants = pd.read_parquet(store.table_path("tenants", run.run_id)).assign(node_group=None)
        groups = pd.read_parquet(store.table_path("tenant_groups", run.run_id))
        for frame in (tenants, groups):
            long = frame.melt(id_vars=["tenant", "node_group"], value_vars=list(SUMMARY_KEYS), var_name="metric")
            frames.append(long.assign(seed=run.seed))
    return pd.concat(frames, ignore_index=True)


def comparison(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The paired table from two long tables (seed, tenant, node_group, metric, value), paired by seed."""
    keys = ["tenant", "node_group", "metric"]
    both = a.fillna({"node_group": ""}).merge(b.fillna({"node_group": ""}), on=[*keys, "seed"], how="outer",
                                             suffixes=("_a", "_b"))
    rows = []
    order = {m: i for i, m in enumerate(SUMMARY_KEYS)}
    for (tenant, group, name), cell_rows in both.groupby(keys, sort=False):
        cell_rows = cell_rows.sort_values("seed")
        delta, low, high = paired_ci(cell_rows["value_a"].to_numpy(float), cell_rows["value_b"].to_numpy(float))
        significant = bool(not np.isnan(low) and (low > 0 or high < 0))
        rows.append({"tenant": tenant, "node_group": group or None, "metric": name, "unit": metric(name).unit,
                     "a_mean": float(cell_rows["value_a"].mean()), "b_mean": float(cell_rows["value_b"].mean()),
                     "delta": delta, "ci_low": low, "ci_high": high, "significant": significant,
                     "n": int((cell_rows["value_a"].notna() & cell_rows["value_b"].notna()).sum()),
                     "_order": order.get(name, len(order))})
    table = pd.DataFrame(rows, columns=[*COLUMNS, "_order"])
    table["_group"] = table["node_group"].notna()
    table = table.sort_values(["tenant", "_group", "node_group", "_order"], kind="stable", na_position="first")
    return table.drop(columns=["_order", "_group"]).reset_index(drop=True)


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The table in display units (coverage in %, memory in GiB), significant rows marked ``*``."""
    out = table.copy()
    scale = out["metric"].map(lambda m: metric(m).scale)
    for column in ("a_mean", "b_mean", "delta", "ci_low", "ci_high"):
        out[column] = out[column] * scale
    out["unit"] = out["metric"].map(lambda m: metric(m).unit)
    out["node_group"] = out["node_group"].fillna("(all)")
    out.insert(0, "sig", out["significant"].map(lambda s: "*" if s else ""))
    return out.drop(columns=["significant"])


def text_table(table: pd.DataFrame) -> str:
    """The readable table ``clustersim compare`` prints."""
    view = shown(table)
    for column in ("a_mean", "b_mean", "delta", "ci_low", "ci_high"):
        view[column] = view[column].map(cell)
    legend = (f"* the {CONFIDENCE:.0%} t interval of the paired difference (B - A) excludes 0; "
              f"n = paired seeds")
    return view.to_string(index=False) + "\n" + legend


def _write(root: Path, table: pd.DataFrame, config_a: Mapping[str, Any], config_b: Mapping[str, Any],
           seeds: list[int]) -> None:
    write_parquet_atomic(inside(root, root / "compare.parquet"), table)
    text = ["# Compare A and B", "",
            f"{len(seeds)} paired seeds; delta = B - A; CI: {CONFIDENCE:.0%} Student t interval of the mean paired "
            "difference; `*`: the interval excludes 0. Values in display units.", "",
            markdown_table(shown(table)), ""]
    write_bytes_atomic(inside(root, root / "compare.md"), "\n".join(text).encode())
    write_json_atomic(inside(root, root / MANIFEST), {"a": dict(config_a), "b": dict(config_b), "seeds": seeds,
                                                      "version": package_version(), "code": code_fingerprint(),
                                                      "end": now()})
