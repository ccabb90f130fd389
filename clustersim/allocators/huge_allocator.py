"""Free range sets for Temeraire's hugepage-granular components (tcmalloc/huge_allocator.h, huge_region.h).

HugeAllocator keeps the heap's unbacked hugepage-aligned address space, HugeCache its empty backed hugepages,
and each HugeRegion the free 4 KiB pages of its 1 GiB: all three hand out a range by *best fit* (the
shortest free range that is long enough, the lowest address among equally short ones; tcmalloc's
HugeAllocator keeps a treap ordered this way, its RangeTracker scans for the same choice) and coalesce a
returned range with free neighbours. HugeCache's release also takes the *longest* range first (the highest
address among equally long ones).

One row ``k`` of ``rs[k]`` is one set, held twice in sorted arrays: ``rs[k, START]`` / ``rs[k, LEN]``
ordered by address (to find the neighbours a returned range merges with) and ``rs[k, KEY]`` ordered by
``length << 40 | start`` (best fit is the first key at or after ``n << 40``, the longest range is the last
key). ``rs_n[k]`` holds the set's range count and free total. Both orders are kept by a binary search and a
shift of the entries after it, which is cheap for the few hundred ranges a set holds. The caller keeps
every row's capacity at least its count plus the ranges a call can add.
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit

from .bisection import first_at_least

START, LEN, KEY = 0, 1, 2        # planes of rs[k]
NRANGES, NGROUPS = 0, 1          # out_n[] of a release plan
COUNT, TOTAL = 0, 1              # columns of rs_n[k]
START_BITS = 40                  # page indices stay below 2**40 (4 PiB of heap)
START_MASK = (1 << START_BITS) - 1


def new_plan(ranges: int, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An empty release plan: (out, ends, out_n)."""
    return np.zeros((2, ranges), dtype=np.int64), np.zeros(groups, dtype=np.int64), np.zeros(2, dtype=np.int64)


def new_range_sets(rows: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty range sets: (rs, rs_n)."""
    return np.zeros((rows, 3, capacity), dtype=np.int64), np.zeros((rows, 2), dtype=np.int64)


@inline
def _bisect(rs, k, plane, count, x):
    """First index i < count with rs[k, plane, i] >= x (count if none)."""
    return first_at_least(rs[k, plane], 0, count, x)


@njit
def _shift(rs, k, plane, i, count, by):
    """Move entries [i, count) of a plane by ``by`` (+1 opens slot i, -1 closes it)."""
    if by > 0:
        for j in range(count, i, -1):
            rs[k, plane, j] = rs[k, plane, j - 1]
    else:
        for j in range(i, count - 1):
            rs[k, plane, j] = rs[k, plane, j + 1]


@inline
def _key_add(rs, k, nkeys, start, n):
    """Insert the key of range (start, n) among the first ``nkeys`` keys of set ``k``."""
    key = n << START_BITS | start
    i = _bisect(rs, k, KEY, nkeys, key)
    _shift(rs, k, KEY, i, nkeys, 1)
    rs[k, KEY, i] = key


@inline
def _key_drop(rs, k, nkeys, start, n):
    """Remove the key of range (start, n) from the first ``nkeys`` keys of set ``k``."""
    _shift(rs, k, KEY, _bisect(rs, k, KEY, nkeys, n << START_BITS | start), nkeys, -1)


@njit
def rs_insert(rs, rs_n, k, start, n):
    """Add the free range [start, start+n) to set ``k``, merged with the free ranges it touches."""
    count = nkeys = rs_n[k, COUNT]
    i = _bisect(rs, k, START, count, start)
    after_prev = i > 0 and rs[k, START, i - 1] + rs[k, LEN, i - 1] == start
    before_next = i < count and rs[k, START, i] == start + n
    if after_prev:
        _key_drop(rs, k, nkeys, rs[k, START, i - 1], rs[k, LEN, i - 1])
        nkeys -= 1
    if before_next:
        _key_drop(rs, k, nkeys, rs[k, START, i], rs[k, LEN, i])
        nkeys -= 1
    if after_prev and before_next:   # one range from the previous range's start to the next one's end
        rs[k, LEN, i - 1] += n + rs[k, LEN, i]
        _shift(rs, k, START, i, count, -1)
        _shift(rs, k, LEN, i, count, -1)
        count -= 1
        i -= 1
    elif after_prev:
        rs[k, LEN, i - 1] += n
        i -= 1
    elif before_next:
        rs[k, START, i] = start
        rs[k, LEN, i] += n
    else:
        _shift(rs, k, START, i, count, 1)
        _shift(rs, k, LEN, i, count, 1)
        rs[k, START, i] = start
        rs[k, LEN, i] = n
        count += 1
    _key_add(rs, k, nkeys, rs[k, START, i], rs[k, LEN, i])
    rs_n[k, COUNT] = count
    rs_n[k, TOTAL] += n


@inline
def _take(rs, rs_n, k, start, length, n):
    """Allocate the first ``n`` of the free range at ``start`` (``length`` long): its tail stays free."""
    count = rs_n[k, COUNT]
    _key_drop(rs, k, count, start, length)
    i = _bisect(rs, k, START, count, start)
    if length > n:   # the tail keeps the range's place in address order
        rs[k, START, i] = start + n
        rs[k, LEN, i] = length - n
        _key_add(rs, k, count - 1, start + n, length - n)
    else:
        _shift(rs, k, START, i, count, -1)
        _shift(rs, k, LEN, i, count, -1)
        rs_n[k, COUNT] = count - 1
    rs_n[k, TOTAL] -= n


@inline
def rs_best_fit(rs, rs_n, k, n):
    """Take ``n`` from the shortest range of set ``k`` that holds them (lowest start on ties): its start,
    or -1 when no range is long enough (nothing changes then)."""
    count = rs_n[k, COUNT]
    j = _bisect(rs, k, KEY, count, n << START_BITS)
    if j == count:
        return -1
    key = rs[k, KEY, j]
    start = key & START_MASK
    _take(rs, rs_n, k, start, key >> START_BITS, n)
    return start


@inline
def rs_take_largest(rs, rs_n, k):
    """Remove the longest range of set ``k`` (highest start on ties): (start, length). REQUIRES: non-empty."""
    key = rs[k, KEY, rs_n[k, COUNT] - 1]
    start, length = key & START_MASK, key >> START_BITS
    _take(rs, rs_n, k, start, length, length)
    return start, length


# ----------------------------------------------------------------------------------- release plans
# What a compiled call decides to release is handed back as a plan: ranges (first 4 KiB page, 4 KiB pages)
# in ``out[:, :out_n[NRANGES]]``, cut into groups that end at ``ends[:out_n[NGROUPS]]``. Each group is one
# release call of the heap (HeapAllocator.release_ranges), made in order once the compiled call returns.

@inline
def emit_range(out, out_n, start, n):
    """Append the range [start, start+n) (4 KiB pages) to the current group."""
    out[0, out_n[NRANGES]], out[1, out_n[NRANGES]] = start, n
    out_n[NRANGES] += 1


@inline
def end_group(ends, out_n):
    """Close the current group of ranges."""
    ends[out_n[NGROUPS]] = out_n[NRANGES]
    out_n[NGROUPS] += 1
