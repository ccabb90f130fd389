"""Vectorised helpers over page ranges: expand ranges to page indices and fold indices back into runs.

Allocators hand the kernel batches of (start, length) ranges; these helpers keep that work in numpy so that
no Python loop runs per 4 KiB page.
"""

from __future__ import annotations

import numpy as np

EMPTY = np.zeros(0, dtype=np.int64)


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """All page indices covered by the ranges [starts[i], starts[i] + lengths[i]), in range order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return EMPTY
    starts = np.asarray(starts, dtype=np.int64)
    first_out = np.cumsum(lengths) - lengths
    return np.repeat(starts - first_out, lengths) + np.arange(total, dtype=np.int64)


def runs_of(pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold page indices into maximal runs of consecutive pages: (starts, lengths), in input order."""
    if len(pages) == 0:
        return EMPTY, EMPTY
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(pages) - 1]))
    starts = pages[first]
    return starts, pages[last] - starts + 1
