"""Seaborn figures of a results folder: a metric against a parameter, or latency CDFs.

Figures read only what a run or sweep stored (``clustersim.experiments.load``); they never re-run. Points
are means over seeds with a 95% confidence interval (``errorbar=('ci', 95)``, bootstrap seeded so figures are
reproducible). Axes carry units from the metric table in ``clustersim.experiments.metrics``. Latency CDFs
are rebuilt from the log-bucketed histograms: counts summed per run over the selected tenants, accumulated
over buckets, one curve per hue value with its band over runs. Every figure is written as PDF and PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from clustersim.experiments.metrics import metric
from clustersim.experiments.results import Results, load
from clustersim.experiments.store import write_bytes_atomic

KINDS = ("line", "bar", "cdf")
CI = ("ci", 95)
BOOTSTRAP_SEED = 0
FORMATS = (".pdf", ".png")
DPI = 150


class PlotError(ValueError):
    """A plot request the stored results cannot answer; the message lists what is available."""


def plot(results: str | Path, *, out: str | Path, x: str | None = None, y: str | None = None,
         hue: str | None = None, col: str | None = None, kind: str = "line",
         tenant: str | None = None) -> list[Path]:
    """Draw ``y`` against ``x`` (or latency CDFs) from the results folder; returns the PDF and PNG paths."""
    if kind not in KINDS:
        raise PlotError(f"kind {kind!r} -> one of {', '.join(KINDS)}")
    data = load(results)
    grid = _cdf(data, hue, col, tenant) if kind == "cdf" else _summary(data, x, y, hue, col, kind, tenant)
    return save(grid.figure, Path(out))


def save(figure: Any, out: Path) -> list[Path]:
    """Write ``figure`` as ``out``'s stem + .pdf and .png, each atomically."""
    paths = []
    for suffix in FORMATS:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix[1:], dpi=DPI, bbox_inches="tight")
        path = out.with_suffix(suffix)
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    plt.close(figure)
    return paths


def _rows(data: Results, tenant: str | None) -> pd.DataFrame:
    """Fleet-wide rows (one per ok run), or one tenant's rows joined to its run's parameters."""
    if tenant is None:
        return data.runs[data.runs["status"] == "ok"]
    rows = data.tenants[data.tenants["tenant"] == tenant] if len(data.tenants) else data.tenants
    if rows.empty:
        names = sorted(data.tenants["tenant"].unique()) if len(data.tenants) else []
        raise PlotError(f"tenant {tenant!r} -> one of {', '.join(names)}")
    return rows


def _need(frame: pd.DataFrame, role: str, column: str | None, required: bool = True) -> None:
    if column is None and required:
        raise PlotError(f"--{role} is required for this kind of plot")
    if column is not None and column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise PlotError(f"--{role} {column!r} -> a column of the results: {columns}")


def _order(frame: pd.DataFrame, column: str | None) -> list[Any] | None:
    """Non-numeric values in the order the sweep file lists them (expansion order)."""
    if column is None or pd.api.types.is_numeric_dtype(frame[column]):
        return None
    by = "point" if "point" in frame.columns else column
    return frame.sort_values(by, kind="stable")[column].drop_duplicates().tolist()


def _summary(data: Results, x: str | None, y: str | None, hue: str | None, col: str | None, kind: str,
             tenant: str | None) -> Any:
    frame = _rows(data, tenant)
    for role, column, required in (("x", x, True), ("y", y, True), ("hue", hue, False), ("col", col, False)):
        _need(frame, role, column, required)
    shown = metric(str(y))
    frame = frame.assign(**{str(y): frame[y] * shown.scale})
    common = {"data": frame, "x": x, "y": y, "hue": hue, "col": col, "errorbar": CI, "seed": BOOTSTRAP_SEED,
              "hue_order": _order(frame, hue), "col_order": _order(frame, col)}
    if kind == "bar":
        grid = sns.catplot(kind="bar", order=_order(frame, x), **common)
    else:
        order = _order(frame, x)
        if order is not None:
            frame = frame.assign(**{str(x): pd.Categorical(frame[x], categories=order, ordered=True)})
            common["data"] = frame
        grid = sns.relplot(kind="line", marker="o", **common)
    grid.set_axis_labels(str(x), shown.axis_label)
    if tenant:
        grid.figure.suptitle(f"tenant {tenant}", y=1.02)
    return grid


def _cdf(data: Results, hue: str | None, col: str | None, tenant: str | None) -> Any:
    hist = data.latency_histograms
    if hist.empty:
        raise PlotError("the results hold no latency histograms")
    if tenant is not None:
        hist = hist[hist["tenant"] == tenant]
        if hist.empty:
            raise PlotError(f"tenant {tenant!r} has no latency histogram")
    for role, column in (("hue", hue), ("col", col)):
        _need(hist, role, column, required=False)
    curves = cdf_frame(hist, [c for c in (hue, col) if c is not None])
    grid = sns.relplot(kind="line", data=curves, x="latency_ms", y="cdf", hue=hue, col=col, errorbar=CI,
                       seed=BOOTSTRAP_SEED, drawstyle="steps-post", hue_order=_order(hist, hue),
                       col_order=_order(hist, col))
    grid.set(xscale="log")
    grid.set_axis_labels("Request latency (ms)", "Requests at or below (fraction)")
    return grid


def cdf_frame(hist: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per run and group: the fraction of requests at or below each bucket's upper edge."""
    keys = ["run_id", *by]
    counts = hist.groupby([*keys, "bucket"], observed=True)["count"].sum().unstack("bucket", fill_value=0)
    counts = counts.sort_index(axis=1)
    cdf = counts.cumsum(axis=1).div(counts.sum(axis=1), axis=0)
    long = cdf.stack().rename("cdf").reset_index()
    edges = hist.groupby("bucket")["hi_ms"].first()
    return long.assign(latency_ms=long["bucket"].map(edges))
