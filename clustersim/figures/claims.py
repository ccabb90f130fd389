"""Small figures of the validation suite's kernel-level claims, in the paper style.

Fleet claims draw their figures with ``plot.plot`` from stored sweeps; a kernel scenario has no results
folder, so its claim hands its few numbers here: bars of named values, or lines over time. Colours come
from the policy palette, labels from the caller (words and units).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from . import style as styles
from .labels import value_label
from .plot import save


def bars(values: dict[str, float], ylabel: str, out: Path, size: str = styles.DEFAULT_SIZE) -> list[Path]:
    """One bar per named value (a policy's name picks its colour)."""
    with styles.applied(styles.DEFAULT_STYLE):
        fig, ax = plt.subplots(figsize=styles.SIZES[size])
        names = list(values)
        ax.bar([value_label(n) for n in names], [values[n] for n in names],
               color=[styles.colour(n) for n in names])
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        return save(fig, out)


def lines(series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str, out: Path,
          legend_title: str | None = None, size: str = styles.DEFAULT_SIZE) -> list[Path]:
    """One line per named (x, y) series."""
    with styles.applied(styles.DEFAULT_STYLE):
        fig, ax = plt.subplots(figsize=styles.SIZES[size])
        for name, (x, y) in series.items():
            ax.plot(x, y, label=value_label(name), color=styles.colour(name))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(series) > 1:
            ax.legend(title=legend_title, frameon=False)
        fig.tight_layout()
        return save(fig, out)


__all__ = ["bars", "lines"]
