"""ExtentSet: one of jemalloc's extent caches (dirty, muzzy or retained), src/ecache.c and src/eset.c, compiled.

jemalloc keeps an eset's extents in one heap per page-size class, caches each heap's minimum
(``bins[i].heap_min``) and marks the non-empty classes in a bitmap; ``eset_first_fit`` rounds the request up
to its class (sz_psz_quantize_ceil), walks the non-empty classes from there and takes the smallest
minimum, so the extent handed out is the lowest-address one among all classes that surely fit; the leftover
stays in the set. An LRU list gives the purge order (``ecache_evict`` takes the oldest). Size classes: 4 per
doubling of pages.

Here the same three views are ordered maps in one sorted-blocks buffer (sorted_blocks.py): extents by
start (for coalescing), by (class, start) (each class's lowest address, kept in a ``heads`` array as
heap_min is), and by insertion sequence number (the LRU). An extent that is merged or split re-enters as
the newest. jemalloc's heaps order by (serial number, address); this model uses the address alone.

Left out: delayed coalescing of dirty extents (coalesced eagerly here), opt.lg_extent_max_active_fit.
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit

from .best_fit import MAX_PAGES
from .sorted_blocks import (
    before,
    extra_offset,
    find,
    insert,
    key_at,
    key_count,
    lower_bound,
    new_buffer,
    remove,
    reserve,
    val_at,
    view,
)

# Page-size classes: 1, 2, 3, 4, then 4 per doubling (5, 6, 7, 8, 10, 12, 14, 16, 20, ...), as jemalloc's
# psz classes with LG_SIZE_CLASS_GROUP = 2.
CLASS_PAGES: tuple[int, ...] = (1, 2, 3, *((1 << lg) + k * (1 << lg) // 4 for lg in range(2, 48)
                                           for k in range(4)))
CLASS_BITS = 32                      # by-class keys: class << CLASS_BITS | start
START_MASK = (1 << CLASS_BITS) - 1
BY_START, BY_CLASS, BY_AGE = 0, 1, 2  # start -> pages;  (class, start) -> sequence;  sequence -> start
NPAGES, NEXT_SEQ, HEADS = 0, 1, 2    # extra words: pages held, next sequence number, then heads[class]
EMPTY = 1 << 62                      # head of a class with no extent
INSERTS_PER_EXTENT_CHANGE = 3        # an insert or a fit adds at most one extent to each map


@inline
def class_floor(n):
    """Index of the largest class <= n (n >= 1), from n's top bits."""
    if n < 4:
        return n - 1
    lg = 0
    while n >> (lg + 1):
        lg += 1
    return 3 + (lg - 2) * 4 + ((n >> (lg - 2)) & 3)


@inline
def class_ceil(n):
    """Index of the smallest class >= n."""
    c = class_floor(n)
    if c < 3:
        return c
    lg = (c - 3) // 4 + 2
    pages = (1 << lg) + ((c - 3) % 4) * (1 << lg) // 4
    return c if pages == n else c + 1


_LG_MAX = (MAX_PAGES - 1).bit_length() - 1
NCLASSES = 3 + (_LG_MAX - 2) * 4 + 4   # class_floor(MAX_PAGES - 1) + 1


# --- compiled operations on a view ------------------------------------------------------------------------
@njit
def _add(v, start, n):
    """Record extent [start, start+n) as the newest (no neighbour in this set)."""
    seq = v.extra[NEXT_SEQ]
    v.extra[NEXT_SEQ] = seq + 1
    c = class_floor(n)
    insert(v, BY_START, start, n)
    insert(v, BY_CLASS, c << CLASS_BITS | start, seq)
    insert(v, BY_AGE, seq, start)
    v.extra[HEADS + c] = min(v.extra[HEADS + c], start)
    v.extra[NPAGES] += n


@njit
def _drop(v, start):
    """Remove the extent starting at ``start``; returns its pages."""
    n = remove(v, BY_START, start)
    c = class_floor(n)
    remove(v, BY_AGE, remove(v, BY_CLASS, c << CLASS_BITS | start))
    if v.extra[HEADS + c] == start:   # the class's next lowest address, as eset_remove refreshes heap_min
        p, i = lower_bound(v, BY_CLASS, c << CLASS_BITS | start)
        nxt = key_at(v, BY_CLASS, p, i) if p < v.nblocks[BY_CLASS] else EMPTY
        v.extra[HEADS + c] = nxt & START_MASK if nxt >> CLASS_BITS == c else EMPTY
    v.extra[NPAGES] -= n
    return n


@njit
def insert_extent(v, start, n):
    """Add an extent, merged with neighbours of this set; it becomes the newest. Returns the merge."""
    p, i = lower_bound(v, BY_START, start)
    p, i = before(v, BY_START, p, i)
    if p >= 0:
        prev = key_at(v, BY_START, p, i)
        if prev + val_at(v, BY_START, p, i) == start:
            n += _drop(v, prev)
            start = prev
    if find(v, BY_START, start + n)[0] >= 0:
        n += _drop(v, start + n)
    _add(v, start, n)
    return start, n


@njit
def first_fit(v, n):
    """Take ``n`` pages from the lowest-address extent among classes that surely fit; -1 if none."""
    best = EMPTY
    for c in range(class_ceil(n), NCLASSES):
        best = min(best, v.extra[HEADS + c])
    if best == EMPTY:
        return -1
    length = _drop(v, best)
    if length > n:
        _add(v, best + n, length - n)
    return best


# --- compiled entry points on a buffer --------------------------------------------------------------------
@njit
def insert_extents(buf, starts, lengths):
    """``insert_extent`` for each range in order."""
    v = view(buf)
    for k in range(starts.shape[0]):
        insert_extent(v, starts[k], lengths[k])


@njit
def evict_to(buf, limit_pages):
    """Remove the least recently inserted extents until at most ``limit_pages`` remain: their (starts,
    lengths), oldest first."""
    v = view(buf)
    starts = np.empty(v.nkeys[BY_START], dtype=np.int64)
    lengths = np.empty(v.nkeys[BY_START], dtype=np.int64)
    k = 0
    while v.extra[NPAGES] > limit_pages:
        p, i = lower_bound(v, BY_AGE, 0)
        start = val_at(v, BY_AGE, p, i)
        starts[k], lengths[k] = start, _drop(v, start)
        k += 1
    return starts[:k], lengths[:k]


@njit
def _insert_one(buf, start, n):
    return insert_extent(view(buf), start, n)


class ExtentSet:
    """Free extents of one state, with address-first fit, coalescing and LRU eviction (``buf``, a
    sorted-blocks buffer the batch loops take directly)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.buf = new_buffer(3, HEADS + NCLASSES)
        self._extra = extra_offset(self.buf)
        self.buf[self._extra + HEADS:self._extra + HEADS + NCLASSES] = EMPTY

    def __len__(self) -> int:
        return key_count(self.buf, BY_START)

    @property
    def npages(self) -> int:
        return int(self.buf[self._extra + NPAGES])

    def reserve(self, extent_changes: int) -> None:
        """Make room for ``extent_changes`` inserts or fits before a compiled loop runs."""
        self.buf = reserve(self.buf, INSERTS_PER_EXTENT_CHANGE * extent_changes)

    def insert(self, start: int, n: int) -> tuple[int, int]:
        """Add an extent, merged with neighbours of this set; it becomes the newest. Returns the merge."""
        assert start >= 0 and n > 0 and start + n <= MAX_PAGES, "page indices must stay below 2**31"
        self.reserve(1)
        s, length = _insert_one(self.buf, start, n)
        return int(s), int(length)

    def insert_many(self, starts: np.ndarray, lengths: np.ndarray) -> None:
        """``insert`` for each range in order."""
        self.reserve(len(starts))
        insert_extents(self.buf, starts, lengths)

    def evict_to(self, limit_pages: int) -> tuple[np.ndarray, np.ndarray]:
        """Remove the oldest extents until at most ``limit_pages`` remain: (starts, lengths), oldest first."""
        return evict_to(self.buf, limit_pages)
