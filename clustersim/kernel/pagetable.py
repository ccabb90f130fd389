"""Page-table state of every mapping on a node, as numpy arrays indexed by vhp (2 MiB slot) and page.

A row is one vhp: 512 page states, the pageblock each present page lives in, and per-vhp facts: PMD-mapped
or not, the THP folio backing it (kept after a PMD split until the deferred split) and how many of
its subpages are still mapped (``fmapped``; pages faulted later into a deferred row are separate 4 KiB pages),
whether a PTE table exists, THP advice, LRU recency. Rows of one mapping are contiguous; freed rows are
reused first fit.
Counts per state are kept per row so node-wide passes (khugepaged, reclaim, statistics) never scan pages.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..jit import inline, njit
from ..units import HPAGE_PAGES


def uniq(a: np.ndarray, return_counts: bool = False):
    """np.unique for the common case of already sorted input, in one compiled pass (numpy's sorts)."""
    values, counts = _uniq(a)
    return (values, counts) if return_counts else values


def count_states(flat_state: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Pages in each state among ``flat``: np.bincount(flat_state[flat], minlength=NSTATES)."""
    return _count_states(flat_state, flat)


def pages_in(flat_state: np.ndarray, flat: np.ndarray, a: int, b: int) -> np.ndarray:
    """The pages of ``flat`` in state ``a`` or ``b`` (pass the same state twice for one), in order."""
    return _pages_in(flat_state, flat, a, b)


def in_sorted(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Mask of the values found in ``members`` (sorted): np.isin without its sort."""
    return _in_sorted(values, members)


@njit
def _in_sorted(values, members):
    out = np.zeros(values.shape[0], dtype=np.bool_)
    for i in range(values.shape[0]):
        out[i] = contains_sorted(members, values[i])
    return out


@njit
def contains_sorted(members, x) -> bool:
    """Whether ``x`` is one of the sorted ``members`` (a binary search)."""
    j = np.searchsorted(members, x)
    return j < members.shape[0] and members[j] == x


def in_rows(flat: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mask of the flat pages whose row is one of ``rows`` (sorted): np.isin(flat // HPAGE_PAGES, rows)."""
    return _in_rows(flat, rows)




@njit
def is_sorted(a) -> bool:
    """Whether ``a`` is in non-decreasing order."""
    for i in range(1, a.shape[0]):   # noqa: SIM110 (numba compiles loops, not generators)
        if a[i] < a[i - 1]:
            return False
    return True


@njit
def _uniq(a):
    if not is_sorted(a):
        a = np.sort(a)
    values = np.empty_like(a)
    counts = np.empty(a.shape[0], dtype=np.int64)
    k = -1
    for i in range(a.shape[0]):
        if k < 0 or a[i] != values[k]:
            k += 1
            values[k] = a[i]
            counts[k] = 1
        else:
            counts[k] += 1
    return values[: k + 1], counts[: k + 1]


@njit
def _count_states(flat_state, flat):
    out = np.zeros(NSTATES, dtype=np.int64)
    for f in flat:
        out[flat_state[f]] += 1
    return out


@njit
def _pages_in(flat_state, flat, a, b):
    out = np.empty(flat.shape[0], dtype=np.int64)
    k = 0
    for f in flat:
        s = flat_state[f]
        if s in (a, b):
            out[k] = f
            k += 1
    return out[:k]


@njit
def _in_rows(flat, rows):
    out = np.zeros(flat.shape[0], dtype=np.bool_)
    if rows.shape[0] == 0:
        return out
    if is_sorted(flat):   # the pages of one row are a slice: two binary searches per row, none per page
        for r in rows:
            lo = np.searchsorted(flat, r * HPAGE_PAGES)
            out[lo:np.searchsorted(flat, (r + 1) * HPAGE_PAGES)] = True
        return out
    for i in range(flat.shape[0]):
        out[i] = contains_sorted(rows, flat[i] // HPAGE_PAGES)
    return out


@njit
def uniq_rows(flat):
    """Sorted distinct rows (vhps) of flat page indices: uniq(flat // HPAGE_PAGES) without the temporary."""
    rows = np.empty(flat.shape[0], dtype=np.int64)
    ordered = True
    for i in range(flat.shape[0]):
        rows[i] = flat[i] // HPAGE_PAGES
        if i and rows[i] < rows[i - 1]:
            ordered = False
    if not ordered:
        rows = np.sort(rows)
    k = 0
    for i in range(rows.shape[0]):
        if k == 0 or rows[i] != rows[k - 1]:
            rows[k] = rows[i]
            k += 1
    return rows[:k]


# Page states. ZERO: present, holds zeros (a THP subpage never written, or zeroed by UNSPLITTABLE).
# DATA: present with written data. LAZY: MADV_FREE'd, clean, data kept until reclaim discards it.
# SWAP: swapped out, data on the device. QUEUED: MADV_SPLITTABLE'd, present until reclaim zaps it.
# CACHE: a page-cache page of a file.
NONE, ZERO, DATA, LAZY, SWAP, QUEUED, CACHE = range(7)
NSTATES = 7
PRESENT_STATES = (ZERO, DATA, LAZY, QUEUED, CACHE)
HOLDS_DATA = np.array([False, False, True, True, True, True, True])
IS_PRESENT = np.array([False, True, True, True, False, True, True])
PRESENT_I32 = IS_PRESENT.astype(np.int32)

# Per-vhp THP advice. STRADDLE: the vhp is split between VMAs by a partial madvise, so no PMD can map it.
ADV_NONE, ADV_HUGEPAGE, ADV_NOHUGEPAGE, ADV_STRADDLE = range(4)


class PageTable:
    """Structure-of-arrays page table for all processes and files of one node."""

    def __init__(self, capacity: int = 64, nblocks: int = 1 << 31) -> None:
        self.nrows = 0
        self.holes: list[tuple[int, int]] = []
        # A page's pageblock id is only ever an index, so it is kept in the narrowest type that holds the
        # node's blocks and -1: int16 up to 64 GiB (32,768 blocks), which halves the largest per-page array.
        self.block_dtype = np.int16 if nblocks <= np.iinfo(np.int16).max + 1 else np.int32
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        self.cap = cap
        self.state = np.zeros((cap, HPAGE_PAGES), dtype=np.uint8)
        self.block = np.full((cap, HPAGE_PAGES), -1, dtype=self.block_dtype)
        self.cnt = np.zeros((cap, NSTATES), dtype=np.int32)
        self.npres = np.zeros(cap, dtype=np.int32)          # present pages per row (sum of cnt columns)
        self.region = np.full(cap, -1, dtype=np.int32)
        self.memcg = np.full(cap, -1, dtype=np.int32)
        self.pmd = np.zeros(cap, dtype=bool)
        self.folio = np.full(cap, -1, dtype=np.int32)
        self.fmapped = np.zeros(cap, dtype=np.int32)
        self.deferred = np.zeros(cap, dtype=bool)
        self.pt = np.zeros(cap, dtype=bool)
        self.pt_block = np.full(cap, -1, dtype=np.int32)
        self.advice = np.zeros(cap, dtype=np.uint8)
        self.full = np.zeros(cap, dtype=bool)
        self.atime = np.zeros(cap, dtype=np.float64)
        self.active = np.zeros(cap, dtype=bool)

    def _grow(self, need: int) -> None:
        old = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        cap = max(need, 2 * self.cap)
        self._alloc(cap)
        for name, arr in old.items():
            getattr(self, name)[: len(arr)] = arr

    # --- rows --------------------------------------------------------------------------------------------
    def alloc_rows(self, n: int) -> int:
        """First row of ``n`` contiguous free rows (first fit over holes, else at the end)."""
        for i, (start, length) in enumerate(self.holes):
            if length >= n:
                self.holes[i] = (start + n, length - n)
                if length == n:
                    del self.holes[i]
                return start  # free_rows left these rows empty with NONE counts
        start = self.nrows
        if start + n > self.cap:
            self._grow(start + n)
        self.nrows = start + n
        self.cnt[start:start + n] = 0
        self.cnt[start:start + n, NONE] = HPAGE_PAGES
        return start

    def free_rows(self, start: int, n: int) -> None:
        """Give rows back; they must already be empty (no present, swapped or folio state)."""
        sl = slice(start, start + n)
        assert not self.cnt[sl, 1:].any() and (self.folio[sl] < 0).all() and not self.pt[sl].any()
        assert not self.fmapped[sl].any()
        self.state[sl] = NONE
        self.block[sl] = -1
        self.cnt[sl] = 0
        self.cnt[sl, NONE] = HPAGE_PAGES
        self.region[sl] = -1
        self.memcg[sl] = -1
        self.pmd[sl] = False
        self.deferred[sl] = False
        self.advice[sl] = ADV_NONE
        self.full[sl] = False
        self.active[sl] = False
        self.holes.append((start, n))
        self.holes.sort()
        merged: list[tuple[int, int]] = []
        for s, ln in self.holes:
            if merged and merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + ln)
            else:
                merged.append((s, ln))
        self.holes = merged

    # --- views ---------------------------------------------------------------------------------------
    @property
    def flat_state(self) -> np.ndarray:
        return self.state.reshape(-1)

    @property
    def flat_block(self) -> np.ndarray:
        return self.block.reshape(-1)

    def present(self, rows: np.ndarray | slice) -> np.ndarray:
        """Present pages per row (mapped by PTE or PMD)."""
        return self.npres[rows]

    def footprint(self, rows: np.ndarray | slice) -> np.ndarray:
        """Pages each row holds and charges: its whole folio while one exists, the 4 KiB pages mapped
        outside the folio, and its PTE table."""
        if isinstance(rows, slice):
            rows = np.arange(self.cap)[rows]
        return _footprint(self.folio, self.npres, self.fmapped, self.pt, rows)

    # --- state changes ---------------------------------------------------------------------------------
    def set_states(self, flat: np.ndarray, new: int | np.ndarray) -> np.ndarray:
        """Set the states of distinct pages at flat indices (row*512+col), keeping per-row counts; returns
        the old states."""
        old = np.empty(len(flat), dtype=np.uint8)
        if isinstance(new, np.ndarray):
            _set_each(self.flat_state, self.cnt, self.npres, PRESENT_I32, flat, new.astype(np.uint8), old)
        else:
            _set_all(self.flat_state, self.cnt, self.npres, PRESENT_I32, flat, new, old)
        return old

    def move_states(self, flat: np.ndarray, was: int, new: int) -> None:
        """set_states() for distinct pages all known to be in state ``was`` (REQUIRES): the per-row counts
        move without the old states being read (node.check() verifies the counts)."""
        _move_all(self.flat_state, self.cnt, self.npres, PRESENT_I32, flat, was, new)

    def fill_rows(self, rows: np.ndarray, was: int, new: int) -> None:
        """move_states() of every page of whole rows, all known to be in state ``was`` (REQUIRES; a THP
        fault fills rows that were wholly unmapped): a row at a time, no page list."""
        _fill_rows(self.state, self.cnt, self.npres, PRESENT_I32, rows, was, new)

    def pages_of(self, rows: np.ndarray) -> np.ndarray:
        """Flat indices of every page of the given rows."""
        return (rows[:, None] * HPAGE_PAGES + np.arange(HPAGE_PAGES)).reshape(-1)

    def state_total(self, rows: np.ndarray, states: tuple[int, ...]) -> int:
        """Pages of ``rows`` in ``states``, from the per-row counts: cnt[rows][:, states].sum() without its
        two copies (reclaim asks this of a memcg's rows at every priority, as get_scan_count reads LRU sizes)."""
        return int(_state_total(self.cnt, np.asarray(rows, dtype=np.int64), state_mask(tuple(states))))

    def pages_in_state(self, rows: np.ndarray, states: tuple[int, ...], limit: int | None = None) -> np.ndarray:
        """Flat indices of pages of ``rows`` whose state is one of ``states``, row by row in the given order
        and ascending within a row; only the first ``limit`` of them if given (reclaim's batch)."""
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        limit = len(rows) * HPAGE_PAGES if limit is None else limit
        return _pages_in_rows(self.state, self.cnt, np.asarray(rows, dtype=np.int64), state_mask(tuple(states)),
                              limit)


@cache
def state_mask(states: tuple[int, ...]) -> np.ndarray:
    """A flag per state value (0-255): set for ``states``. The compiled loops test a page's state with one
    load; the page table's states and the allocators' page states both use it. Do not modify the result."""
    mask = np.zeros(256, dtype=np.bool_)
    mask[list(states)] = True
    return mask


@inline
def row_total(cnt, r, mask):
    """Pages of row ``r`` in the states flagged in ``mask``, from its per-state counts."""
    total = 0
    for st in range(cnt.shape[1]):
        if mask[st]:
            total += cnt[r, st]
    return total


@njit
def _state_total(cnt, rows, mask):
    total = 0
    for r in rows:
        total += row_total(cnt, r, mask)
    return total


@njit
def _pages_in_rows(state, cnt, rows, mask, limit):
    """Flat indices of the pages of ``rows`` (in the given row order) whose state is flagged in ``mask``,
    ascending within a row, the first ``limit`` of them: np.nonzero(np.isin(state[rows], states)) in one
    pass over the pages, sized from the per-row counts."""
    out = np.empty(min(_state_total(cnt, rows, mask), max(limit, 0)), dtype=np.int64)
    k = 0
    for r in rows:
        for c in range(HPAGE_PAGES):
            if mask[state[r, c]]:
                if k == out.shape[0]:
                    return out
                out[k] = r * HPAGE_PAGES + c
                k += 1
    return out


@njit
def row_footprint(folio, npres, fmapped, has_pt, r):
    """Pages row r holds and charges (PageTable.footprint of one row)."""
    return (HPAGE_PAGES if folio[r] >= 0 else 0) + npres[r] - fmapped[r] + has_pt[r]


@njit
def set_page(fs, cnt, npres, present, f, new):
    """Set page f's state to ``new``, moving its row's per-state and present counts; returns the old state."""
    r = f // HPAGE_PAGES
    o = fs[f]
    cnt[r, o] -= 1
    cnt[r, new] += 1
    npres[r] += present[new] - present[o]
    fs[f] = new
    return o


@njit
def _footprint(folio, npres, fmapped, has_pt, rows):
    out = np.empty(rows.shape[0], dtype=np.int64)
    for i in range(rows.shape[0]):
        out[i] = row_footprint(folio, npres, fmapped, has_pt, rows[i])
    return out


@njit
def _set_all(fs, cnt, npres, present, flat, new, old):
    for i in range(flat.shape[0]):
        old[i] = set_page(fs, cnt, npres, present, flat[i], new)


@njit
def _set_each(fs, cnt, npres, present, flat, new, old):
    for i in range(flat.shape[0]):
        old[i] = set_page(fs, cnt, npres, present, flat[i], new[i])


@njit
def _move_all(fs, cnt, npres, present, flat, was, new):
    gain = present[new] - present[was]
    for i in range(flat.shape[0]):
        f = flat[i]
        r = f // HPAGE_PAGES
        cnt[r, was] -= 1
        cnt[r, new] += 1
        npres[r] += gain
        fs[f] = new


@njit
def _fill_rows(state, cnt, npres, present, rows, was, new):
    gain = HPAGE_PAGES * (present[new] - present[was])
    for r in rows:
        assert cnt[r, was] == HPAGE_PAGES, "fill_rows: a page of the row is not in the state given"
        state[r, :] = new
        cnt[r, was] -= HPAGE_PAGES
        cnt[r, new] += HPAGE_PAGES
        npres[r] += gain


@njit
def disjoint_ascending(first, n) -> bool:
    """Each range starts at or after the end of the one before (its pages come out sorted and distinct)."""
    for i in range(1, first.shape[0]):   # noqa: SIM110 (numba compiles loops, not generators)
        if first[i] < first[i - 1] + n[i - 1]:
            return False
    return True


@njit
def expand_ranges(first, n):
    """Sorted distinct flat pages of ranges given as first flat page and page count (n >= 0); ranges out of
    order or overlapping are merged."""
    disjoint = disjoint_ascending(first, n)
    if not disjoint:
        order = np.argsort(first, kind="mergesort")
        first, n = first[order], n[order]
        disjoint = disjoint_ascending(first, n)
    pages = np.empty(n.sum(), dtype=np.int64)
    k = 0
    for i in range(first.shape[0]):
        for j in range(n[i]):
            pages[k + j] = first[i] + j
        k += n[i]
    return pages if disjoint else np.unique(pages)


@njit
def rollup(npres, pmd, cnt, rows):
    """smaps_rollup counts over rows: (present pages, PMD-mapped rows, lazyfree pages, swapped pages)."""
    rss, thp, lazy, swap = 0, 0, 0, 0
    for r in rows:
        rss += npres[r]
        thp += pmd[r]
        lazy += cnt[r, LAZY]
        swap += cnt[r, SWAP]
    return rss, thp, lazy, swap


@njit
def swapped_and_rows(flat_state, cnt, first, n):
    """Swapped pages (sorted, distinct) and sorted distinct rows of the ranges, read in place: only rows
    whose count says they hold a swapped page are read page by page."""
    if not disjoint_ascending(first, n):
        order = np.argsort(first, kind="mergesort")
        pages = expand_ranges(first[order], n[order])
        first, n = pages, np.ones(pages.shape[0], dtype=np.int64)
    swapped = np.empty(n.sum(), dtype=np.int64)
    rows = np.empty(n.sum() // HPAGE_PAGES + 2 * first.shape[0], dtype=np.int64)
    k = m = 0
    for i in range(first.shape[0]):
        start, end = first[i], first[i] + n[i]
        while start < end:
            r = start // HPAGE_PAGES
            stop = min(end, (r + 1) * HPAGE_PAGES)
            if m == 0 or rows[m - 1] != r:
                rows[m] = r
                m += 1
            if cnt[r, SWAP]:
                for f in range(start, stop):
                    if flat_state[f] == SWAP:
                        swapped[k] = f
                        k += 1
            start = stop
    return swapped[:k], rows[:m]
