"""PageTracker: the allocation state of one filler hugepage (tcmalloc/huge_page_filler.h, PageTracker, over
tcmalloc/internal/range_tracker.h, RangeTracker).

A hugepage holds 256 tcmalloc pages of 8 KiB. As in tcmalloc, a 256-bit bitmap says which are used (a set
bit is a used page), with the used-page count, the allocation count and the longest free range (LFR) kept
beside it. ``tracker_get`` is RangeTracker::FindAndMark: it walks the free ranges and takes the *best fit*,
the shortest range that holds the span, the lowest-addressed of equally short ones, keeping the two longest
ranges seen so that the LFR needs no second walk.

All of Temeraire's per-hugepage state is one int64 matrix ``hp`` with a row per vhp (2 MiB slot of the
heap's page space) and the columns below; the bitmap is its last ``NWORDS`` columns, 32 bits to a word so
that every word is a non-negative int64 both compiled and as plain Python. The filler's lists link rows
through ``NEXT``/``PREV`` (huge_page_filler.py); ``REGION`` marks the vhps of a HugeRegion (huge_region.py).
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit
from clustersim.units import HPAGE_PAGES

TC_PAGES_PER_HUGEPAGE = 256        # 2 MiB / 8 KiB tcmalloc pages
TC_PAGE_PAGES = HPAGE_PAGES // TC_PAGES_PER_HUGEPAGE
WORD_BITS = 32
WORD_MASK = (1 << WORD_BITS) - 1
NWORDS = TC_PAGES_PER_HUGEPAGE // WORD_BITS

# columns of hp[vhp]
USED, NALLOCS, LONGEST = 0, 1, 2        # used tcmalloc pages, allocations, longest free range
KIND, KEY, NEXT, PREV = 3, 4, 5, 6      # the filler list holding the tracker (-1: none) and its links
DONATED, RELEASED, MEMBER = 7, 8, 9     # flags: donated tail, subreleased, in the filler at all
REGION = 10                             # index of the HugeRegion this vhp belongs to, -1 if none
BITS = 11                               # first of NWORDS bitmap words
NCOLS = BITS + NWORDS


def new_hugepages(rows: int) -> np.ndarray:
    """``rows`` hugepages of state, none in the filler or in a region."""
    hp = np.zeros((rows, NCOLS), dtype=np.int64)
    hp[:, KIND] = hp[:, NEXT] = hp[:, PREV] = hp[:, REGION] = -1
    return hp


@inline
def ctz(x):
    """Index of the lowest set bit of a non-zero 32-bit word."""
    n = 0
    if (x & 0xFFFF) == 0:
        n += 16
        x >>= 16
    if (x & 0xFF) == 0:
        n += 8
        x >>= 8
    if (x & 0xF) == 0:
        n += 4
        x >>= 4
    if (x & 0x3) == 0:
        n += 2
        x >>= 2
    if (x & 0x1) == 0:
        n += 1
    return n


@inline
def msb(x):
    """Index of the highest set bit of a non-zero 32-bit word."""
    n = 0
    if x >> 16:
        n += 16
        x >>= 16
    if x >> 8:
        n += 8
        x >>= 8
    if x >> 4:
        n += 4
        x >>= 4
    if x >> 2:
        n += 2
        x >>= 2
    if x >> 1:
        n += 1
    return n


@inline
def find_page(hp, v, i, used):
    """First page at or after ``i`` that is used (``used`` true) or free; TC_PAGES_PER_HUGEPAGE if none."""
    while i < TC_PAGES_PER_HUGEPAGE:
        w = i >> 5
        word = hp[v, BITS + w]
        if not used:
            word = ~word & WORD_MASK
        word &= (WORD_MASK << (i & 31)) & WORD_MASK
        if word:
            return (w << 5) + ctz(word)
        i = (w + 1) << 5
    return TC_PAGES_PER_HUGEPAGE


@inline
def _last_used_before(hp, v, i):
    """Last used page before ``i``; -1 if none."""
    while i > 0:
        w = (i - 1) >> 5
        word = hp[v, BITS + w] & ((2 << ((i - 1) & 31)) - 1)
        if word:
            return (w << 5) + msb(word)
        i = w << 5
    return -1


@inline
def _set_pages(hp, v, i, n, used):
    """Mark pages [i, i+n) used or free."""
    end = i + n
    while i < end:
        w = i >> 5
        lo, hi = i & 31, min(end - (w << 5), WORD_BITS)
        mask = ((1 << (hi - lo)) - 1) << lo
        if used:
            hp[v, BITS + w] |= mask
        else:
            hp[v, BITS + w] &= ~mask & WORD_MASK
        i = (w << 5) + hi


@inline
def tracker_reset(hp, v):
    """A fresh tracker on vhp ``v``: every page free, in no list."""
    hp[v, USED] = hp[v, NALLOCS] = hp[v, DONATED] = hp[v, RELEASED] = hp[v, MEMBER] = 0
    hp[v, LONGEST] = TC_PAGES_PER_HUGEPAGE
    hp[v, KIND] = hp[v, NEXT] = hp[v, PREV] = -1
    for w in range(NWORDS):
        hp[v, BITS + w] = 0


@inline
def _longest_free(hp, v):
    longest, i = 0, find_page(hp, v, 0, False)
    while i < TC_PAGES_PER_HUGEPAGE:
        end = find_page(hp, v, i, True)
        longest = max(longest, end - i)
        i = find_page(hp, v, end, False)
    return longest


@inline
def tracker_get(hp, v, n):
    """FindAndMark: mark the best-fit free range of ``n`` pages used; returns its first page.

    REQUIRES: hp[v, LONGEST] >= n.
    """
    best, best_len, longest, second = -1, TC_PAGES_PER_HUGEPAGE + 1, 0, 0
    i = find_page(hp, v, 0, False)
    while i < TC_PAGES_PER_HUGEPAGE:
        end = find_page(hp, v, i, True)
        length = end - i
        if length > longest:
            second, longest = longest, length
        elif length > second:
            second = length
        if n <= length < best_len:
            best, best_len = i, length
        i = find_page(hp, v, end, False)
    _set_pages(hp, v, best, n, True)
    if best_len == longest:   # the longest range shrank: the LFR is what is left of it or the runner-up
        longest = max(longest - n, second)
    hp[v, LONGEST] = longest
    hp[v, USED] += n
    hp[v, NALLOCS] += 1
    return best


@inline
def tracker_mark(hp, v, start, n):
    """Mark [start, start+n) used as one allocation (the head of a donated tail). REQUIRES: free pages."""
    _set_pages(hp, v, start, n, True)
    hp[v, LONGEST] = _longest_free(hp, v)
    hp[v, USED] += n
    hp[v, NALLOCS] += 1


@inline
def tracker_put(hp, v, start, n):
    """Free [start, start+n); the LFR grows to the merged free range if that is longer."""
    _set_pages(hp, v, start, n, False)
    merged = find_page(hp, v, start + n, True) - (_last_used_before(hp, v, start) + 1)
    hp[v, LONGEST] = max(hp[v, LONGEST], merged)
    hp[v, USED] -= n
    hp[v, NALLOCS] -= 1


@njit
def emit_free_ranges(hp, v, out, nr):
    """Append the free ranges of vhp ``v`` as (first 4 KiB page, 4 KiB pages) to ``out[:, nr:]``; returns the
    new range count."""
    base = v * HPAGE_PAGES
    i = find_page(hp, v, 0, False)
    while i < TC_PAGES_PER_HUGEPAGE:
        end = find_page(hp, v, i, True)
        out[0, nr] = base + i * TC_PAGE_PAGES
        out[1, nr] = (end - i) * TC_PAGE_PAGES
        nr += 1
        i = find_page(hp, v, end, False)
    return nr


def free_ranges(hp: np.ndarray, v: int) -> tuple[list[int], list[int]]:
    """Free ranges of vhp ``v`` in tcmalloc pages: (starts, lengths), by address."""
    out = np.zeros((2, TC_PAGES_PER_HUGEPAGE), dtype=np.int64)
    nr = emit_free_ranges(hp, v, out, 0)
    return ((out[0, :nr] - v * HPAGE_PAGES) // TC_PAGE_PAGES).tolist(), (out[1, :nr] // TC_PAGE_PAGES).tolist()
