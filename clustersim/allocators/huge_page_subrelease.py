"""Filler subrelease: returning the free pages of partly used hugepages (tcmalloc/huge_page_filler.h,
ReleasePages, and tcmalloc/huge_page_subrelease.h, GetDesiredSubreleasePages).

Subrelease returns all free pages of the emptiest hugepages first, partly released ones before intact ones,
and is skipped when recent demand says the memory will be needed again: the filler keeps its used pages per
second for the longer of two intervals, and never releases below the largest per-second swing in the short
interval plus the largest per-second minimum in the long one (skip-subrelease). A hugepage that has been
subreleased joins the filler's released kind, the last choice for new spans (huge_page_filler.py).

The release itself is a syscall: ``subrelease`` only chooses, and lists the free ranges of each chosen
hugepage as one group for the caller to madvise, in order. What it counts as released is the free backed
pages of those hugepages, which is what the release will return: every free backed page of a filler
hugepage lies in one of its free ranges.

Left out: tcmalloc's demand-cap interval and its "partial rerelease" on free. The demand requirement
approximates tcmalloc's: per-second rather than per-epoch records.
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import njit

from .huge_allocator import NRANGES, end_group
from .huge_page_filler import (
    DEMAND_N,
    DONATED_KIND,
    REGULAR,
    RELEASED_KIND,
    SIZE_HP,
    USED_TC,
    filler_add,
    lists_add,
    lists_in_order,
    lists_remove,
)
from .min_max_tracker import HIGH, LOW, SLOT, track_min_max
from .page_space import PageState
from .page_tracker import MEMBER, NALLOCS, RELEASED, TC_PAGE_PAGES, TC_PAGES_PER_HUGEPAGE, USED, emit_free_ranges

_FREE_BACKED = int(PageState.FREE_BACKED)
# demand[] is a min_max_tracker table: per second, the least and the most used tcmalloc pages


def new_demand(capacity: int = 64) -> np.ndarray:
    """An empty demand record (its entry count is fill[DEMAND_N])."""
    return np.zeros((capacity, 3), dtype=np.int64)


@njit
def record_demand(demand, fill, second, horizon_s):
    """Note the filler's used pages for ``second``; forget entries older than ``horizon_s``.

    REQUIRES: room for one more entry.
    """
    fill[DEMAND_N] = track_min_max(demand, fill[DEMAND_N], second, fill[USED_TC], horizon_s)


@njit
def required_tc(demand, fill, short_s, long_s):
    """Pages recent demand says will be needed again (0 when skipping is off or nothing is recorded): the
    largest swing (max - min) of the entries less than ``short_s`` before the newest plus their largest
    minimum over ``long_s``."""
    n = fill[DEMAND_N]
    if n == 0 or (short_s <= 0 and long_s <= 0):
        return 0
    newest = demand[n - 1, SLOT]
    fluctuation, trend = 0, 0
    for i in range(n):
        if demand[i, SLOT] > newest - short_s:
            fluctuation = max(fluctuation, demand[i, HIGH] - demand[i, LOW])
        if demand[i, SLOT] > newest - long_s:
            trend = max(trend, demand[i, LOW])
    return fluctuation + trend


@njit
def _by_used(hp, cand, n):
    """``cand[:n]`` stably sorted by used pages, emptiest first (a counting sort over 0..256)."""
    tally = np.zeros(TC_PAGES_PER_HUGEPAGE + 2, dtype=np.int64)
    for j in range(n):
        tally[hp[cand[j], USED] + 1] += 1
    for u in range(1, TC_PAGES_PER_HUGEPAGE + 2):
        tally[u] += tally[u - 1]
    out = np.empty(n, dtype=np.int64)
    for j in range(n):
        u = hp[cand[j], USED]
        out[tally[u]] = cand[j]
        tally[u] += 1
    return out


@njit
def _candidates(hp, lists, nonempty, counts, kind, other, cand):
    """Trackers of ``kind`` then ``other`` (-1: none) that hold free backed pages, emptiest first; ties keep
    list order (kinds as given, lists by index, each oldest first)."""
    n = lists_in_order(hp, lists, nonempty, kind, cand, 0)
    if other >= 0:
        n = lists_in_order(hp, lists, nonempty, other, cand, n)
    m = 0
    for j in range(n):
        if counts[cand[j], _FREE_BACKED]:
            cand[m] = cand[j]
            m += 1
    return _by_used(hp, cand, m)


@njit
def subrelease(hp, lists, nonempty, fill, demand, counts, desired_tc, short_s, long_s, advice_none):
    """ReleasePages: choose up to about ``desired_tc`` tcmalloc pages of partly used hugepages to release.

    Returns (4 KiB pages, out, ends, out_n): the free ranges of each chosen hugepage form one group of
    ``out`` (see huge_allocator.end_group). Partly released hugepages come first, so that a hugepage once
    broken is emptied further before an intact one is broken; within each kind the emptiest go first,
    since their few used pages cost the least hugepage coverage. The intact ones are listed only if the
    released ones do not meet the budget; releasing those never moves an intact one.
    """
    free_backed, bound = 0, 0
    for v in range(hp.shape[0]):
        if hp[v, MEMBER]:
            free_backed += counts[v, _FREE_BACKED]
            bound += min(hp[v, NALLOCS] + 1, TC_PAGES_PER_HUGEPAGE // 2)
    out, ends = np.empty((2, bound), dtype=np.int64), np.empty(fill[SIZE_HP] + 1, dtype=np.int64)
    out_n = np.zeros(2, dtype=np.int64)
    required = required_tc(demand, fill, short_s, long_s)
    if required:   # skip-subrelease: keep the backed pages recent demand needs
        desired_tc = min(desired_tc, max(0, fill[USED_TC] + free_backed // TC_PAGE_PAGES - required))
    if desired_tc <= 0 or free_backed == 0:
        return 0, out, ends, out_n
    released = 0
    cand = np.empty(fill[SIZE_HP], dtype=np.int64)
    for phase in range(2):
        if phase == 0:
            order = _candidates(hp, lists, nonempty, counts, RELEASED_KIND, -1, cand)
        else:
            order = _candidates(hp, lists, nonempty, counts, REGULAR, DONATED_KIND, cand)
        for v in order:
            if released >= desired_tc * TC_PAGE_PAGES:
                return released, out, ends, out_n
            out_n[NRANGES] = emit_free_ranges(hp, v, out, out_n[NRANGES])
            end_group(ends, out_n)
            released += counts[v, _FREE_BACKED]
            lists_remove(hp, lists, nonempty, v)
            hp[v, RELEASED] = 1
            if advice_none:   # nothing changes state: the tracker's holes decide, as on any re-add
                filler_add(hp, lists, nonempty, counts, v)
            else:             # its free pages are now released, lazyfree or queued
                lists_add(hp, lists, nonempty, RELEASED_KIND, v)
    return released, out, ends, out_n
