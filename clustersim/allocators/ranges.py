"""Page ranges over a heap: move ranges to a new state, find runs of given states, count pages, cut at VMAs.

A heap keeps one state byte per 4 KiB page (``state``, int8) and per-vhp (2 MiB slot) counts of each state
(``counts[vhp, state]``, int64). The allocators hand these helpers batches of a few dozen (start, length)
ranges. Each helper is one compiled loop over the batch (clustersim.jit): the per-vhp counts let whole vhps
be taken or skipped without reading their pages, and the rest is read page by page as machine code, so a
batch costs one call, not numpy's fixed cost per range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clustersim.jit import inline, njit
from clustersim.kernel.pagetable import is_sorted, state_mask
from clustersim.units import HPAGE_PAGES, PAGE_SIZE

VHP_SHIFT = HPAGE_PAGES.bit_length() - 1
assert 1 << VHP_SHIFT == HPAGE_PAGES
# Arguments are plain ints and arrays: numba types an IntEnum member through a slow generic path (about
# 20 us a call), so the wrappers below convert states with int() before calling a compiled loop.


class Runs:
    """Runs of pages that shared an old state, as ``transition`` found them: one run lies in one vhp."""

    __slots__ = ("lengths", "old", "starts")

    def __init__(self, starts: np.ndarray, lengths: np.ndarray, old: np.ndarray) -> None:
        self.starts, self.lengths, self.old = starts, lengths, old


def as_pages(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Page indices as a 1-d int64 array (no copy when they already are one)."""
    if type(values) is np.ndarray and values.dtype == np.int64:
        return values
    return np.array(values, dtype=np.int64).reshape(-1)


def transition(state: np.ndarray, counts: np.ndarray, starts, lengths, new_state: int) -> tuple[list[int], Runs]:
    """Set the pages of the ranges [starts[i], starts[i] + lengths[i]) to ``new_state``, moving the per-vhp
    counts; returns how many pages left each state and the runs they came from, in range order."""
    moved, rs, rn, ro = _transition(state, counts, as_pages(starts), as_pages(lengths), int(new_state))
    return moved.tolist(), Runs(rs, rn, ro)


def move(state: np.ndarray, counts: np.ndarray, starts, lengths, old_state: int, new_state: int) -> int:
    """``transition`` for ranges known to be all in ``old_state`` (live spans being freed, runs being
    released): no page is read. Returns the pages moved."""
    return int(_move(state, counts, as_pages(starts), as_pages(lengths), int(old_state), int(new_state)))


def runs_in_states(state: np.ndarray, counts: np.ndarray, starts, lengths, states: tuple[int, ...]
                   ) -> tuple[list[int], list[int]]:
    """Maximal runs of consecutive pages in ``states`` within the ranges, in range order (a run that
    starts where the one before ends is merged into it): (starts, lengths).

    The per-vhp counts skip vhps holding no such page and take whole vhps holding only such pages without
    reading them; only the rest is read page by page.
    """
    rs, rn = _runs_in(state, counts, as_pages(starts), as_pages(lengths), np.array(states, dtype=np.int64),
                      state_mask(states))
    return rs.tolist(), rn.tolist()


def count_in(state: np.ndarray, counts: np.ndarray, starts, lengths, st: int) -> list[int]:
    """Pages in state ``st`` in each range: whole vhps from the per-vhp counts, ragged ends read page-wise."""
    return _count_in(state, counts, as_pages(starts), as_pages(lengths), int(st)).tolist()


def runs_with(runs: Runs, states: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Of ``transition``'s runs, those whose old state is in ``states``, adjacent ones merged."""
    rs, rn = _runs_with(runs.starts, runs.lengths, runs.old, state_mask(states))
    return rs.tolist(), rn.tolist()


# --- compiled loops -------------------------------------------------------------------------------------
@inline
def _append(out_s, out_l, k, s, n):
    """Append run (s, n) to the first k entries, merged into the last if adjacent; returns the new k."""
    if k and out_s[k - 1] + out_l[k - 1] == s:
        out_l[k - 1] += n
        return k
    out_s[k] = s
    out_l[k] = n
    return k + 1


@njit
def _vhp_pieces(starts, lengths):
    """Each range cut at vhp boundaries, ranges in order: (range index, first page, end page) per piece, so
    that a piece's counts are one vhp's."""
    n = 0
    for i in range(starts.shape[0]):
        if lengths[i] > 0:
            n += ((starts[i] + lengths[i] - 1) >> VHP_SHIFT) - (starts[i] >> VHP_SHIFT) + 1
    idx = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    j = 0
    for i in range(starts.shape[0]):
        s, stop = starts[i], starts[i] + lengths[i]
        while s < stop:
            idx[j], first[j], end[j] = i, s, min(stop, ((s >> VHP_SHIFT) + 1) << VHP_SHIFT)
            s = end[j]
            j += 1
    return idx, first, end


@njit
def _transition(state, counts, starts, lengths, new_state):
    moved = np.zeros(counts.shape[1], dtype=np.int64)
    cap = lengths.sum()
    rs = np.empty(cap, dtype=np.int64)
    rn = np.empty(cap, dtype=np.int64)
    ro = np.empty(cap, dtype=np.int8)
    k = 0
    _, first, end = _vhp_pieces(starts, lengths)
    for j in range(first.shape[0]):
        s, stop, v = first[j], end[j], first[j] >> VHP_SHIFT
        counts[v, new_state] += stop - s
        while s < stop:   # one run per stretch of one old state
            old = state[s]
            e = s + 1
            while e < stop and state[e] == old:
                e += 1
            counts[v, old] -= e - s
            moved[old] += e - s
            rs[k], rn[k], ro[k] = s, e - s, old
            k += 1
            state[s:e] = new_state
            s = e
    return moved, rs[:k], rn[:k], ro[:k]


@njit
def _move(state, counts, starts, lengths, old_state, new_state):
    _, first, end = _vhp_pieces(starts, lengths)
    for j in range(first.shape[0]):
        s, stop, v = first[j], end[j], first[j] >> VHP_SHIFT
        state[s:stop] = new_state
        counts[v, old_state] -= stop - s
        counts[v, new_state] += stop - s
    return lengths.sum()


@njit
def _runs_in(state, counts, starts, lengths, states, mask):
    cap = lengths.sum()
    out_s = np.empty(cap, dtype=np.int64)
    out_l = np.empty(cap, dtype=np.int64)
    k = 0
    _, first, end = _vhp_pieces(starts, lengths)
    for j in range(first.shape[0]):
        s, stop, v = first[j], end[j], first[j] >> VHP_SHIFT
        inside = 0
        for st in states:
            inside += counts[v, st]
        if inside == HPAGE_PAGES:
            k = _append(out_s, out_l, k, s, stop - s)
        elif inside:
            p = s
            while p < stop:
                if mask[state[p]]:
                    e = p + 1
                    while e < stop and mask[state[e]]:
                        e += 1
                    k = _append(out_s, out_l, k, p, e - p)
                    p = e
                else:
                    p += 1
    return out_s[:k], out_l[:k]


@njit
def _count_in(state, counts, starts, lengths, st):
    out = np.zeros(starts.shape[0], dtype=np.int64)
    idx, first, end = _vhp_pieces(starts, lengths)
    for j in range(first.shape[0]):
        s, stop = first[j], end[j]
        if stop - s == HPAGE_PAGES:
            out[idx[j]] += counts[s >> VHP_SHIFT, st]
        else:
            for p in range(s, stop):
                out[idx[j]] += state[p] == st
    return out


@njit
def _runs_with(rs, rn, ro, mask):
    out_s = np.empty(rs.shape[0], dtype=np.int64)
    out_l = np.empty(rs.shape[0], dtype=np.int64)
    k = 0
    for i in range(rs.shape[0]):
        if mask[ro[i]]:
            k = _append(out_s, out_l, k, rs[i], rn[i])
    return out_s[:k], out_l[:k]


@njit
def split_by_vma(starts, lengths, bounds):
    """Cut page ranges at the bounds of the heap's VMAs (``bounds``: first and end page of each, ascending):
    per piece its VMA, byte offset in the VMA and byte length, grouped by VMA in address order; within one,
    the whole ranges in batch order, then the pieces of crossing ones. Returns (the VMA of each group, byte
    offsets, byte lengths, pieces per group)."""
    lo, hi = bounds[0], bounds[1]
    seg = np.searchsorted(lo, starts, side="right") - 1
    npieces = 0
    for i in range(starts.shape[0]):
        k, end = seg[i], starts[i] + lengths[i]
        npieces += 1
        while end > hi[k]:
            k += 1
            npieces += 1
    pseg = np.empty(npieces, dtype=np.int64)
    pstart = np.empty(npieces, dtype=np.int64)
    plen = np.empty(npieces, dtype=np.int64)
    j = 0
    for i in range(starts.shape[0]):
        if starts[i] + lengths[i] <= hi[seg[i]]:
            pseg[j], pstart[j], plen[j] = seg[i], starts[i], lengths[i]
            j += 1
    for i in range(starts.shape[0]):
        k, a, end = seg[i], starts[i], starts[i] + lengths[i]
        if end <= hi[k]:
            continue
        while a < end:
            piece = min(end, hi[k]) - a
            pseg[j], pstart[j], plen[j] = k, a, piece
            j += 1
            a += piece
            k += 1
    if not is_sorted(pseg):   # a batch within one VMA (most) is grouped already
        order = np.argsort(pseg, kind="mergesort")
        pseg, pstart, plen = pseg[order], pstart[order], plen[order]
    groups = np.empty(npieces, dtype=np.int64)
    counts = np.zeros(npieces, dtype=np.int64)
    g = -1
    for j in range(npieces):
        if j == 0 or pseg[j] != pseg[j - 1]:
            g += 1
            groups[g] = pseg[j]
        counts[g] += 1
    return groups[: g + 1], (pstart - lo[pseg]) * PAGE_SIZE, plen * PAGE_SIZE, counts[: g + 1]
