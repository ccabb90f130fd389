"""Best-fit free runs: free page ranges with address-ordered best fit and coalescing of neighbours, compiled.

The free-span structure of tcmalloc's legacy page heap (large spans in a set ordered by (length, address),
gperftools src/page_heap.cc) and of dlmalloc/glibc large bins: the smallest free run that fits, the lowest
address among equal lengths. Two ordered maps in one sorted-blocks buffer (sorted_blocks.py) hold the runs:
by (length, start) for the fit, by start for coalescing (the run ending where a freed range starts, the run
starting where it ends), as tcmalloc's page map finds a span's neighbours. Each run carries a ``dirty``
flag meaning "may still hold backed pages"; merging ORs the flags, so a release pass can skip runs known to
be clean.

The page heaps hand a tick's spans to the batch loops here (``place_best_fit``, ``insert_runs``) in one call;
``BestFitFreeList`` wraps the same buffer for callers that take one range at a time.

Left out: tcmalloc's exact-size lists for short spans (they also give best fit) and its normal/returned split
(here one run can mix backed and released pages; the page states say which).
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit

from .sorted_blocks import (
    before,
    extra_offset,
    find,
    insert,
    items,
    key_at,
    key_count,
    last_pos,
    lower_bound,
    new_buffer,
    remove,
    reserve,
    set_val,
    val_at,
    view,
)

# The by-size map orders runs by one int key, length << START_BITS | start: the order of (length, start)
# pairs. Page indices and lengths stay below 2**31 (8 TiB of heap).
START_BITS = 32
START_MASK = (1 << START_BITS) - 1
MAX_PAGES = 1 << 31
BY_SIZE, BY_START = 0, 1     # maps: (length, start) -> 0;  start -> length << 1 | clean
FREE_PAGES = 0               # extra word: pages in all runs
INSERTS_PER_RUN_CHANGE = 2   # an insert or a fit adds at most one run to each map


# --- compiled operations on a view ------------------------------------------------------------------------
@inline
def add_run(v, start, n, dirty):
    """Record the free run [start, start+n) (no free neighbour)."""
    insert(v, BY_SIZE, n << START_BITS | start, 0)
    insert(v, BY_START, start, n << 1 | (0 if dirty else 1))
    v.extra[FREE_PAGES] += n


@inline
def drop_run(v, start):
    """Forget the run starting at ``start``: (length, dirty)."""
    packed = remove(v, BY_START, start)
    n = packed >> 1
    remove(v, BY_SIZE, n << START_BITS | start)
    v.extra[FREE_PAGES] -= n
    return n, (packed & 1) == 0


@inline
def insert_run(v, start, n, dirty):
    """Add the free range [start, start+n), merged with free neighbours; returns the merged run."""
    p, i = lower_bound(v, BY_START, start)
    p, i = before(v, BY_START, p, i)
    if p >= 0:
        prev = key_at(v, BY_START, p, i)
        if prev + (val_at(v, BY_START, p, i) >> 1) == start:
            pn, pd = drop_run(v, prev)
            start, n, dirty = prev, n + pn, dirty or pd
    if find(v, BY_START, start + n)[0] >= 0:
        nn, nd = drop_run(v, start + n)
        n, dirty = n + nn, dirty or nd
    add_run(v, start, n, dirty)
    return start, n


@inline
def take_best_fit(v, n):
    """Remove the smallest free run of at least ``n`` pages (lowest address on ties); its head is returned
    and the tail stays free, as dirty as the run was. -1 when nothing fits."""
    p, i = lower_bound(v, BY_SIZE, n << START_BITS)
    if p == v.nblocks[BY_SIZE]:
        return -1
    start = key_at(v, BY_SIZE, p, i) & START_MASK
    length, dirty = drop_run(v, start)
    if length > n:
        add_run(v, start + n, length - n, dirty)
    return start


# --- compiled entry points on a buffer --------------------------------------------------------------------
@njit
def place_best_fit(buf, npages, out, first):
    """Best fit for spans ``first``, ``first + 1``, ... in order, writing their starts to ``out``; returns
    the index of the first span nothing fits (len(npages) when all were placed)."""
    v = view(buf)
    for k in range(first, npages.shape[0]):
        start = take_best_fit(v, npages[k])
        if start < 0:
            return k
        out[k] = start
    return npages.shape[0]


@njit
def insert_runs(buf, starts, lengths, dirty):
    """``insert_run`` for each range in order."""
    v = view(buf)
    for k in range(starts.shape[0]):
        insert_run(v, starts[k], lengths[k], dirty)


@njit
def _insert_one(buf, start, n, dirty):
    return insert_run(view(buf), start, n, dirty)


@njit
def _take_best_fit_one(buf, n):
    return take_best_fit(view(buf), n)


@njit
def _take_largest(buf):
    v = view(buf)
    p, i = last_pos(v, BY_SIZE)
    start = key_at(v, BY_SIZE, p, i) & START_MASK
    return start, drop_run(v, start)[0]


@njit
def runs(buf, dirty_only):
    """(starts, lengths) of the runs in address order; only those that may hold backed pages if
    ``dirty_only``."""
    starts, packed = items(view(buf), BY_START)
    if dirty_only:
        keep = (packed & 1) == 0
        starts, packed = starts[keep], packed[keep]
    return starts, packed >> 1


@njit
def mark_clean(buf, starts):
    """Record that the runs starting at ``starts`` hold no backed pages any more."""
    v = view(buf)
    for k in range(starts.shape[0]):
        p, i = find(v, BY_START, starts[k])
        assert p >= 0, "mark_clean: no free run starts there"
        set_val(v, BY_START, p, i, val_at(v, BY_START, p, i) | 1)


class BestFitFreeList:
    """Free runs of a page index space (``buf``, a sorted-blocks buffer the batch loops take directly)."""

    def __init__(self) -> None:
        self.buf = new_buffer(2, 1)
        self._free_pages_at = extra_offset(self.buf) + FREE_PAGES

    def __len__(self) -> int:
        return key_count(self.buf, BY_START)

    @property
    def free_pages(self) -> int:
        return int(self.buf[self._free_pages_at])

    def reserve(self, run_changes: int) -> None:
        """Make room for ``run_changes`` inserts or fits before a compiled loop runs."""
        self.buf = reserve(self.buf, INSERTS_PER_RUN_CHANGE * run_changes)

    def insert(self, start: int, n: int, dirty: bool = True) -> tuple[int, int]:
        """Add the free range [start, start+n), merged with free neighbours; returns the merged range."""
        assert start >= 0 and n > 0 and start + n <= MAX_PAGES, "page indices must stay below 2**31"
        self.reserve(1)
        s, length = _insert_one(self.buf, start, n, dirty)
        return int(s), int(length)

    def take_best_fit(self, n: int) -> int | None:
        """Remove the smallest free run of at least ``n`` pages (lowest address on ties); its head is
        returned and the tail stays free. None when nothing fits."""
        self.reserve(1)
        start = _take_best_fit_one(self.buf, n)
        return None if start < 0 else int(start)

    def take_largest(self) -> tuple[int, int]:
        """Remove the longest free run (highest address on ties): (start, length)."""
        assert len(self), "take_largest: no free run"
        start, n = _take_largest(self.buf)
        return int(start), int(n)

    def runs(self, dirty_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(starts, lengths) of the free runs in address order; only those that may hold backed pages
        if ``dirty_only``."""
        return runs(self.buf, dirty_only)

    def mark_clean(self, starts: np.ndarray) -> None:
        """Record that the runs starting at ``starts`` hold no backed pages any more."""
        mark_clean(self.buf, np.asarray(starts, dtype=np.int64))
