"""The figure of a plan: each SLO metric against the searched knob, one line per alternative.

Drawn from the plan's stored ``probes.parquet`` and ``best.parquet`` only (never re-runs): the mean over
seeds with the range over seeds as a band (``errorbar=("pi", 100)``: with a handful of seeds the range says
more than an interval would), the SLO bound as a dashed line and each alternative's chosen value as a star.
Units and scales from the metric table, as in ``plot.py``. Written as PDF and PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from clustersim.experiments.metrics import metric

from .plot import save

SPREAD = ("pi", 100)   # the range over seeds
PANEL_IN = 4.2


def alternative_labels(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """One label per row: the alternative's values joined by `` / `` (its index when it has none)."""
    if not keys:
        return frame["alternative"].map(lambda i: f"alternative {i}")
    return frame[list(keys)].astype(str).agg(" / ".join, axis=1)


def plot_plan(root: str | Path, key: str, slos: Sequence[tuple[str, str, float]], keys: Sequence[str],
              out: str | Path) -> list[Path]:
    """One panel per SLO (label, metric, bound) of the plan stored in ``root``; returns the PDF and PNG paths."""
    root = Path(root)
    probes = pd.read_parquet(root / "probes.parquet")
    best = pd.read_parquet(root / "best.parquet")
    probes["alternative_label"] = alternative_labels(probes, keys)
    best["alternative_label"] = alternative_labels(best, keys)
    order = list(dict.fromkeys(best["alternative_label"]))
    palette = dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))
    fig, axes = plt.subplots(1, len(slos), figsize=(PANEL_IN * len(slos), PANEL_IN), squeeze=False)
    for ax, (label, name, bound) in zip(axes[0], slos, strict=True):
        _panel(ax, probes, best, key, label, name, bound, palette)
    handles, texts = axes[0][0].get_legend_handles_labels()
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, texts, title=" / ".join(keys) or None, loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(3, max(1, len(order))), frameon=False)
    fig.tight_layout()
    return save(fig, Path(out))


def _panel(ax: plt.Axes, probes: pd.DataFrame, best: pd.DataFrame, key: str, label: str, name: str,
           bound: float, palette: dict[str, tuple[float, float, float]]) -> None:
    shown = metric(name)
    data = probes.assign(y=probes[label] * shown.scale)
    sns.lineplot(data=data, x=key, y="y", hue="alternative_label", hue_order=list(palette), palette=palette,
                 errorbar=SPREAD, marker="o", ax=ax)
    ax.axhline(bound * shown.scale, color="black", linestyle="--", linewidth=1, label="SLO")
    means = data.groupby(["alternative_label", key])["y"].mean()
    for _, row in best.iterrows():
        value = row["best_value"]
        if np.isnan(value) or (row["alternative_label"], int(value)) not in means.index:
            continue
        ax.plot([value], [means[(row["alternative_label"], int(value))]], marker="*", markersize=14,
                color=palette[row["alternative_label"]], markeredgecolor="black", linestyle="none")
    low, high = ax.get_ylim()
    if high - low < 1e-9 * max(1.0, abs(high)):     # a metric constant over every probe (often 0 OOM kills)
        ax.set_ylim(low - 1, high + 1)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{label} ({shown.unit})")
    ax.set_title(label)
