"""HugePageFiller: packs small spans into partly used hugepages (tcmalloc/huge_page_filler.h).

Each hugepage in the filler has a PageTracker (page_tracker.py): a bitmap of its 256 tcmalloc pages (8 KiB
each), its allocation count and its longest free range (LFR). ``filler_try_get(n)`` picks, among hugepages
whose LFR is at least n, the one with the *lowest* LFR, ties broken by the *most* allocations (counts chunked
logarithmically into 8 buckets), and places the span by best fit inside it. Hugepages are preferred in the
order regular, donated (tails of large allocations), released (subreleased); so donated tails stay whole
for as long as possible and subreleased hugepages are refilled last (Temeraire, OSDI 2021, Sec. 4.4).

As in tcmalloc's PageTrackerLists (tcmalloc/hinted_tracker_lists.h), each kind has one intrusive list per
(LFR, allocation chunk) pair, ordered so that the first non-empty list at or after ``n`` LFR is the best
choice, and a bitmap of the non-empty lists; a tracker is prepended when it is (re)added and the head of a
list is taken, so the most recently added tracker of the best list wins.

Subrelease, the filler's side of the background release, is in huge_page_subrelease.py.

Left out: the few/many-objects split of newer tcmalloc, sparse/dense trackers, "partial rerelease" on free,
and the separate list of partly released hugepages (released ones form one kind here).
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit

from .page_space import PageState
from .page_tracker import (
    DONATED,
    KEY,
    KIND,
    LONGEST,
    MEMBER,
    NALLOCS,
    NEXT,
    PREV,
    RELEASED,
    TC_PAGES_PER_HUGEPAGE,
    USED,
    WORD_MASK,
    ctz,
    tracker_get,
    tracker_put,
)

ALLOC_CHUNKS = 8                   # kChunks: allocation counts bucketed log2 into 8 lists per LFR
REGULAR, DONATED_KIND, RELEASED_KIND = 0, 1, 2   # tracker kinds, in order of preference for new spans
NKINDS = 3
NLISTS = (TC_PAGES_PER_HUGEPAGE + 1) * ALLOC_CHUNKS   # one list per (LFR 0..256, chunk)
NLIST_WORDS = (NLISTS + 31) // 32
HEAD, TAIL = 0, 1                  # planes of lists[kind]
USED_TC, SIZE_HP, DEMAND_N = 0, 1, 2   # fill[]: used tcmalloc pages, hugepages, demand entries
_RELEASED, _LAZYFREE, _QUEUED = int(PageState.RELEASED), int(PageState.LAZYFREE), int(PageState.QUEUED)
# Allocation counts bucketed log2 into ALLOC_CHUNKS chunks, more allocations ranking first: the low part
# of a list index, tabulated for every count a hugepage can hold. Counting allocations rather than pages
# is tcmalloc's choice: allocations of any size are about equally likely to be freed, so a hugepage with
# few large allocations is more likely to empty out than one with many small ones (huge_page_filler.h).
CHUNK_RANK = np.array([ALLOC_CHUNKS - 1 - min(ALLOC_CHUNKS - 1, max(n, 1).bit_length() - 1)
                       for n in range(TC_PAGES_PER_HUGEPAGE + 1)], dtype=np.int64)


def new_lists() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty filler lists and counters: (lists, nonempty, fill)."""
    return (np.full((NKINDS, 2, NLISTS), -1, dtype=np.int64), np.zeros((NKINDS, NLIST_WORDS), dtype=np.int64),
            np.zeros(3, dtype=np.int64))


# ----------------------------------------------------------------------------------- lists

@inline
def list_index(hp, v):
    """The list of tracker ``v``: lower LFR first, then more allocations first."""
    return hp[v, LONGEST] * ALLOC_CHUNKS + CHUNK_RANK[hp[v, NALLOCS]]


@inline
def lists_add(hp, lists, nonempty, kind, v):
    """Prepend tracker ``v`` to its list of ``kind`` (HintedTrackerLists::Add)."""
    i = list_index(hp, v)
    head = lists[kind, HEAD, i]
    hp[v, NEXT], hp[v, PREV] = head, -1
    if head >= 0:
        hp[head, PREV] = v
    else:
        lists[kind, TAIL, i] = v
        nonempty[kind, i >> 5] |= 1 << (i & 31)
    lists[kind, HEAD, i] = v
    hp[v, KIND], hp[v, KEY] = kind, i


@inline
def lists_remove(hp, lists, nonempty, v):
    """Unlink tracker ``v`` from its list (HintedTrackerLists::Remove)."""
    kind, i, nxt, prv = hp[v, KIND], hp[v, KEY], hp[v, NEXT], hp[v, PREV]
    if prv >= 0:
        hp[prv, NEXT] = nxt
    else:
        lists[kind, HEAD, i] = nxt
    if nxt >= 0:
        hp[nxt, PREV] = prv
    else:
        lists[kind, TAIL, i] = prv
    if lists[kind, HEAD, i] < 0:
        nonempty[kind, i >> 5] &= ~(1 << (i & 31)) & WORD_MASK
    hp[v, KIND] = -1


@inline
def lists_least(lists, nonempty, kind, first):
    """Head of the first non-empty list of ``kind`` at index ``first`` or later; -1 if none (GetLeast)."""
    i = first
    while i < NLISTS:
        w = i >> 5
        word = nonempty[kind, w] & ((WORD_MASK << (i & 31)) & WORD_MASK)
        if word:
            return lists[kind, HEAD, (w << 5) + ctz(word)]
        i = (w + 1) << 5
    return -1


@njit
def lists_in_order(hp, lists, nonempty, kind, out, n):
    """Append the trackers of ``kind`` to ``out[n:]``, lists in index order, each oldest first; returns the
    new count."""
    for w in range(NLIST_WORDS):
        word = nonempty[kind, w]
        while word:
            b = ctz(word)
            word &= word - 1
            v = lists[kind, TAIL, (w << 5) + b]
            while v >= 0:
                out[n] = v
                n += 1
                v = hp[v, PREV]
    return n


# ----------------------------------------------------------------------------------- filler

@inline
def still_released(counts, v):
    """Whether vhp ``v`` still holds released, lazyfree or queued pages (the allocator's page states)."""
    return counts[v, _RELEASED] + counts[v, _LAZYFREE] + counts[v, _QUEUED] > 0


@inline
def filler_add(hp, lists, nonempty, counts, v):
    """(Re)insert tracker ``v`` in the list its state says; a released hugepage whose released pages were
    all reused counts as regular again."""
    if hp[v, RELEASED] and not still_released(counts, v):
        hp[v, RELEASED] = 0
    kind = RELEASED_KIND if hp[v, RELEASED] else (DONATED_KIND if hp[v, DONATED] else REGULAR)
    lists_add(hp, lists, nonempty, kind, v)


@inline
def filler_try_get(hp, lists, nonempty, fill, counts, n):
    """Place ``n`` tcmalloc pages on an existing hugepage: (vhp, first tcmalloc page), or (-1, -1).

    Two aims, in tcmalloc's order of importance: keep free ranges long, so that later large requests fit
    without new hugepages (the LFR is the proxy for how fragmented a hugepage is, and the *lowest* LFR that
    fits breaks the fewest long ranges), and fill hugepages that already hold many allocations, so that
    the emptier ones drain and can be returned whole (allocations of any size are about equally likely to
    be freed, so counting allocations predicts emptying better than counting pages).

    The lists are ordered so that any later non-empty list can hold a span an earlier one can, and earlier
    lists are better targets: the first non-empty list at index n * ALLOC_CHUNKS or later (LFR >= n) is the
    choice, tried in the order regular, donated, released. tcmalloc: "we prefer allocating from used
    freelists rather than freshly donated", so that a large allocation's tail can be reassembled into whole
    hugepages when the allocation is freed; released hugepages come last so that subreleased memory is
    refaulted only when nothing backed can take the span.
    """
    first = n * ALLOC_CHUNKS
    v = -1
    for kind in range(NKINDS):
        v = lists_least(lists, nonempty, kind, first)
        if v >= 0:
            break
    if v < 0:
        return -1, -1
    lists_remove(hp, lists, nonempty, v)
    start = tracker_get(hp, v, n)
    hp[v, DONATED] = 0   # used for an allocation: no longer a pristine donated tail
    fill[USED_TC] += n
    filler_add(hp, lists, nonempty, counts, v)
    return v, start


@inline
def filler_contribute(hp, lists, nonempty, fill, counts, v, donated):
    """Add the hugepage of tracker ``v`` (new, or a large allocation's donated tail) to the filler."""
    hp[v, DONATED] = donated
    hp[v, MEMBER] = 1
    fill[USED_TC] += hp[v, USED]
    fill[SIZE_HP] += 1
    filler_add(hp, lists, nonempty, counts, v)


@inline
def filler_put(hp, lists, nonempty, fill, counts, v, start, n):
    """Free a span of ``n`` tcmalloc pages at ``start`` of vhp ``v``; True when the hugepage became empty
    and left the filler."""
    lists_remove(hp, lists, nonempty, v)
    tracker_put(hp, v, start, n)
    fill[USED_TC] -= n
    if hp[v, USED] == 0:
        fill[SIZE_HP] -= 1
        hp[v, MEMBER] = 0
        return True
    filler_add(hp, lists, nonempty, counts, v)
    return False
