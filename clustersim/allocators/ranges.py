"""Vectorised helpers over page ranges: expand ranges to page indices and fold indices back into runs.

Allocators hand the kernel batches of (start, length) ranges; these helpers keep that work in numpy so that
no Python loop runs per 4 KiB page.
"""

from __future__ import annotations

import numpy as np

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


def vhp_pieces(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranges cut at 2 MiB boundaries: (vhp, pages, index of its range) of every piece.

    REQUIRES: lengths > 0.
    """
    first = starts >> 9
    last = (starts + lengths - 1) >> 9
    if (first == last).all():
        return first, lengths, np.arange(len(starts))
    nvhp = last - first + 1
    vhp = expand_ranges(first, nvhp)
    which = np.repeat(np.arange(len(starts)), nvhp)
    heads = np.maximum(starts[which], vhp << 9)
    return vhp, np.minimum((starts + lengths)[which], (vhp + 1) << 9) - heads, which


def uniform_runs(pages: np.ndarray, lengths: np.ndarray, values: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut expanded ranges (``pages`` from ``expand_ranges(_, lengths)``) where ``values`` changes: the
    (starts, lengths, value) of runs of consecutive pages sharing one value. REQUIRES: len(pages) > 0."""
    total = len(pages)
    cuts = np.concatenate(([0], np.cumsum(lengths[:-1]), np.flatnonzero(values[1:] != values[:-1]) + 1))
    heads = np.unique(cuts)
    heads = heads[heads < total]
    return pages[heads], np.diff(heads, append=total), values[heads]


def runs_of(pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold page indices into maximal runs of consecutive pages: (starts, lengths), in input order."""
    if len(pages) == 0:
        return EMPTY, EMPTY
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(pages) - 1]))
    starts = pages[first]
    return starts, pages[last] - starts + 1
