"""Vectorised helpers over page ranges: expand ranges to page indices and fold indices back into runs.

Allocators hand the kernel batches of (start, length) ranges; these helpers keep that work in numpy so that
no Python loop runs per 4 KiB page.
"""

from __future__ import annotations

import numpy as np

from clustersim.units import HPAGE_PAGES

EMPTY = np.zeros(0, dtype=np.int64)


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """All page indices covered by the ranges [starts[i], starts[i] + lengths[i]), in range order."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and not (lengths > 0).all():
        starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    total = int(lengths.sum())
    if total == 0:
        return EMPTY
    # Each index is the one before plus 1, except at the head of a range, which jumps from the end of the range
    # before: one cumulative sum over these steps builds every index (several times cheaper than np.repeat).
    steps = np.ones(total, dtype=np.int64)
    steps[0] = starts[0]
    steps[np.cumsum(lengths[:-1])] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(steps, out=steps)


def uniform_runs(pages: np.ndarray, lengths: np.ndarray, values: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut expanded ranges (``pages``, from ``expand_ranges(_, lengths)``) into runs of consecutive pages
    that share one value and one vhp: (starts, lengths, value) of each run. REQUIRES: len(pages) > 0."""
    cut = (pages & (HPAGE_PAGES - 1)) == 0
    cut[0] = True
    cut[np.cumsum(lengths[:-1])] = True  # zero-length ranges cut where the next range starts anyway
    cut[1:] |= values[1:] != values[:-1]
    heads = np.flatnonzero(cut)
    return pages[heads], np.diff(heads, append=len(pages)), values[heads]


def runs_of(pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold page indices into maximal runs of consecutive pages: (starts, lengths), in input order."""
    if len(pages) == 0:
        return EMPTY, EMPTY
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(pages) - 1]))
    starts = pages[first]
    return starts, pages[last] - starts + 1


def merge_adjacent(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``runs_of(expand_ranges(starts, lengths))`` computed per range rather than per page: empty ranges
    dropped, and a range that starts where the one before ends merged into it."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if not (lengths > 0).all():
        starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    if len(starts) < 2:
        return starts, lengths
    joins = starts[1:] == starts[:-1] + lengths[:-1]
    if not joins.any():
        return starts, lengths
    heads = np.flatnonzero(np.concatenate(([True], ~joins)))
    lasts = np.append(heads[1:] - 1, len(starts) - 1)
    return starts[heads], starts[lasts] + lengths[lasts] - starts[heads]
