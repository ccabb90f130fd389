"""Seaborn figures of a results folder: a metric against a parameter, latency CDFs, or time series.

Figures read only what a run or sweep stored (``clustersim.experiments.load``); they never re-run. Points
are means over seeds with a 95% confidence interval (``errorbar=('ci', 95)``, bootstrap seeded so figures are
reproducible); time series draw the mean over seeds with that band at each sample. Every axis and legend is
labelled in words with units from one table (labels.py), with a per-axis override; hue colours come from
the one policy palette (style.py), so a policy keeps its colour across figures. Latency CDFs are rebuilt
from the log-bucketed histograms (counts summed per run over the selected tenants, accumulated over
buckets) on a log latency axis. Every figure is written as PDF (vector, TrueType fonts embedded) and PNG,
in the ``paper`` style at one- or two-column width unless told otherwise.
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

from clustersim.experiments.results import Results, load
from clustersim.experiments.store import write_bytes_atomic

from . import style as styles
from .labels import SERIES, label, scale, value_label

KINDS = ("line", "bar", "cdf", "timeseries")
CI = ("ci", 95)
BOOTSTRAP_SEED = 0
FORMATS = (".pdf", ".png")


class PlotError(ValueError):
    """A plot request the stored results cannot answer; the message lists what is available."""


def plot(results: str | Path, *, out: str | Path, x: str | None = None, y: str | None = None,
         hue: str | None = None, col: str | None = None, kind: str = "line", tenant: str | None = None,
         style: str = styles.DEFAULT_STYLE, size: str = styles.DEFAULT_SIZE, xlabel: str | None = None,
         ylabel: str | None = None, legend_title: str | None = None) -> list[Path]:
    """Draw ``y`` against ``x`` (or latency CDFs, or ``y`` over time) from the results folder.

    ``xlabel``, ``ylabel`` and ``legend_title`` override the table's words for that axis or legend.
    Returns the PDF and PNG paths.
    """
    if kind not in KINDS:
        raise PlotError(f"kind {kind!r} -> one of {', '.join(KINDS)}")
    try:
        styles.check(style, size)
    except ValueError as err:
        raise PlotError(str(err)) from None
    data = load(results)
    with styles.applied(style):
        if kind == "cdf":
            grid = _cdf(data, hue, col, tenant, size)
        elif kind == "timeseries":
            grid = _timeseries(data, y, hue, col, tenant, size)
        else:
            grid = _summary(data, x, y, hue, col, kind, tenant, size)
        _label(grid, hue, xlabel, ylabel, legend_title)
        grid.figure.set_size_inches(*styles.SIZES[size])   # the whole figure, legend included, fits the column
        grid.tight_layout()
        return save(grid.figure, Path(out))


def save(figure: Any, out: Path) -> list[Path]:
    """Write ``figure`` as ``out``'s stem + .pdf and .png, each atomically."""
    paths = []
    for suffix in FORMATS:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix[1:])   # no bbox "tight": the page is the figure's size
        path = out.with_suffix(suffix)
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    plt.close(figure)
    return paths


def _label(grid: Any, hue: str | None, xlabel: str | None, ylabel: str | None, legend_title: str | None) -> None:
    """Apply the overrides and give the legend its title in words."""
    if xlabel is not None or ylabel is not None:
        grid.set_axis_labels(xlabel if xlabel is not None else grid.axes.flat[0].get_xlabel(),
                             ylabel if ylabel is not None else grid.axes.flat[0].get_ylabel())
    if grid.legend is not None and hue is not None:
        grid.legend.set_title(legend_title if legend_title is not None else label(hue))


def _facets(frame: pd.DataFrame, col: str | None, size: str) -> dict[str, float]:
    """FacetGrid height and aspect so that all panels together are the size's width."""
    width, height = styles.SIZES[size]
    ncol = frame[col].nunique() if col is not None else 1
    return {"height": height, "aspect": width / max(ncol, 1) / height}


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


def _categorical(frame: pd.DataFrame, hue: str | None, *others: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Hue (and non-numeric x/col) values as their display names, in sweep order; the hue's palette."""
    extra: dict[str, Any] = {}
    for column in (hue, *others):
        if column is None or (column != hue and pd.api.types.is_numeric_dtype(frame[column])):
            continue
        raw = _order(frame, column) or sorted(frame[column].dropna().unique().tolist())
        shown = [value_label(v) for v in raw]
        frame = frame.assign(**{column: pd.Categorical(frame[column].map(value_label), categories=shown,
                                                        ordered=True)})
        if column == hue:
            extra = {"hue_order": shown, "palette": {value_label(v): styles.colour(v) for v in raw}}
    return frame, extra


def _summary(data: Results, x: str | None, y: str | None, hue: str | None, col: str | None, kind: str,
             tenant: str | None, size: str) -> Any:
    frame = _rows(data, tenant)
    for role, column, required in (("x", x, True), ("y", y, True), ("hue", hue, False), ("col", col, False)):
        _need(frame, role, column, required)
    frame = frame.assign(**{str(y): frame[y] * scale(str(y))})
    frame, colours = _categorical(frame, hue, x, col)
    common = {"data": frame, "x": x, "y": y, "hue": hue, "col": col, "errorbar": CI, "seed": BOOTSTRAP_SEED,
              **colours, **_facets(frame, col, size)}
    if kind == "bar":
        # the palette exactly, not desaturated; a hue that is the x parameter colours bars in place
        grid = sns.catplot(kind="bar", saturation=1.0, dodge=hue is not None and hue != x, **common)
    else:
        grid = sns.relplot(kind="line", marker="o", **common)
    grid.set_axis_labels(label(str(x)), label(str(y)))
    if tenant:
        grid.figure.suptitle(f"tenant {tenant}", y=1.02)
    return grid


def _of_tenant(table: pd.DataFrame, tenant: str | None, plural: str, singular: str) -> pd.DataFrame:
    """``table``, or its rows of ``tenant``; a PlotError names what is missing when nothing is left to draw."""
    if table.empty:
        raise PlotError(f"the results hold no {plural}")
    if tenant is None:
        return table
    rows = table[table["tenant"] == tenant]
    if rows.empty:
        raise PlotError(f"tenant {tenant!r} has no {singular}")
    return rows


def _timeseries(data: Results, y: str | None, hue: str | None, col: str | None, tenant: str | None,
                size: str) -> Any:
    """``y`` (a time-series field) over time: per run the fleet's (or one tenant's) value, mean and band over
    seeds. Byte fields and processes are summed over tenants and node groups, THP coverage is recomputed
    from the sums, latency p99 is the mean of the groups' (an approximation: p99s do not add)."""
    series = _of_tenant(data.timeseries, tenant, "time series", "time series")
    _need(series, "y", y)
    if y not in SERIES:
        raise PlotError(f"--y {y!r} -> a time-series field: {', '.join(SERIES)}")
    for role, column in (("hue", hue), ("col", col)):
        _need(series, role, column, required=False)
    keys = ["run_id", "time_s", *dict.fromkeys(c for c in (hue, col) if c is not None)]
    how = {c: ("sum" if c.endswith("_bytes") or c == "processes_up" else "mean") for c in SERIES
           if c in series.columns}
    frame = series.groupby(keys, observed=True).agg(how)
    if {"anon_huge_bytes", "rss_bytes"} <= set(frame.columns):
        frame["thp_coverage"] = (frame["anon_huge_bytes"] / frame["rss_bytes"]).fillna(0.0)
    frame = frame.reset_index()
    frame[y] = frame[y] * scale(y, timeseries=True)
    frame, colours = _categorical(frame, hue, col)
    grid = sns.relplot(kind="line", data=frame, x="time_s", y=y, hue=hue, col=col, errorbar=CI,
                       seed=BOOTSTRAP_SEED, **colours, **_facets(frame, col, size))
    grid.set_axis_labels(label("time_s"), label(y, timeseries=True))
    return grid


def _cdf(data: Results, hue: str | None, col: str | None, tenant: str | None, size: str) -> Any:
    hist = _of_tenant(data.latency_histograms, tenant, "latency histograms", "latency histogram")
    for role, column in (("hue", hue), ("col", col)):
        _need(hist, role, column, required=False)
    order = {c: _order(hist, c) for c in (hue, col) if c is not None}
    curves = cdf_frame(hist, [c for c in (hue, col) if c is not None])
    for column, values in order.items():   # sweep order survives the groupby
        if values is not None:
            curves[column] = pd.Categorical(curves[column], categories=values, ordered=True)
    curves, colours = _categorical(curves, hue, col)
    grid = sns.relplot(kind="line", data=curves, x="latency_ms", y="cdf", hue=hue, col=col, errorbar=CI,
                       seed=BOOTSTRAP_SEED, drawstyle="steps-post", **colours, **_facets(curves, col, size))
    grid.set(xscale="log")
    grid.set_axis_labels(label("latency_ms"), label("cdf"))
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
