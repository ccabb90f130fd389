"""The figures' style: matplotlib settings per style, figure sizes for one and two columns, one palette.

``paper`` (the default of ``clustersim plot``) is for print: 8 pt serif-free text, thin lines, vector PDF
with TrueType fonts embedded (``pdf.fonttype`` 42: Type 42 fonts, which publishers' checks accept and
whose text stays selectable; matplotlib's default, Type 3, is often rejected). ``screen`` keeps seaborn's
defaults at a larger size. Sizes: a column of a two-column paper is 3.33 in wide (ACM acmart sigconf and
IEEEtran both set about 3.3-3.5 in), the full text width 7 in.

The palette maps each policy (madvise advice, swap kind, allocator, senpai knob) to one colour from the
Okabe-Ito colour-blind-safe set, so MADV_FREE is the same colour in every figure. A value the table lacks
gets a colour from the same set chosen by a hash of its name: stable across figures and runs, never by
order of appearance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl

STYLES = ("paper", "screen")
SIZES: dict[str, tuple[float, float]] = {"one-column": (3.33, 2.3), "two-column": (7.0, 2.6)}
DEFAULT_STYLE, DEFAULT_SIZE = "paper", "one-column"

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart with every common colour blindness.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
POLICY_COLOURS: dict[str, str] = {
    # release advice
    "dontneed": "#0072B2", "free": "#D55E00", "splittable": "#009E73", "free_undo": "#CC79A7", "none": "#000000",
    # swap
    "zram": "#E69F00", "zswap": "#56B4E9", "disk": "#CC79A7",
    # allocators
    "tcmalloc": "#0072B2", "temeraire": "#009E73", "jemalloc": "#D55E00", "glibc": "#E69F00",
    # senpai
    "memory.high": "#0072B2", "memory.reclaim": "#D55E00",
}
RC: dict[str, dict[str, Any]] = {
    "paper": {"pdf.fonttype": 42, "ps.fonttype": 42, "font.family": "sans-serif", "font.size": 8,
              "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 7, "legend.title_fontsize": 7,
              "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 4,
              "axes.linewidth": 0.6, "grid.linewidth": 0.4, "savefig.dpi": 300},
    "screen": {"pdf.fonttype": 42, "ps.fonttype": 42, "font.size": 11, "savefig.dpi": 150},
}


def colour(value: object) -> str:
    """The colour of one policy value: the table's, else one of OKABE_ITO chosen by a hash of its name."""
    name = str(value)
    if name in POLICY_COLOURS:
        return POLICY_COLOURS[name]
    digest = hashlib.sha256(name.encode()).digest()
    return OKABE_ITO[digest[0] % len(OKABE_ITO)]


def palette(values: Iterable[object]) -> dict[Any, str]:
    """value -> colour for the values a figure's hue shows."""
    return {v: colour(v) for v in values}


def check(style: str, size: str) -> None:
    if style not in STYLES:
        raise ValueError(f"style {style!r} -> one of {', '.join(STYLES)}")
    if size not in SIZES:
        raise ValueError(f"size {size!r} -> one of {', '.join(SIZES)}")


@contextmanager
def applied(style: str):
    """matplotlib's settings of ``style`` for the figures drawn inside the block."""
    with mpl.rc_context(RC[style]):
        yield


__all__ = ["DEFAULT_SIZE", "DEFAULT_STYLE", "OKABE_ITO", "POLICY_COLOURS", "SIZES", "STYLES", "applied", "check",
           "colour", "palette"]
