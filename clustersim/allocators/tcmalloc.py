"""Legacy tcmalloc page heap (gperftools, tcmalloc before Temeraire): hugepage-oblivious best fit.

Spans are whole 8 KiB tcmalloc pages placed by address-ordered best fit over free spans
(tcmalloc/page_heap.cc: exact-size lists, then the (length, address)-ordered large set). The heap grows
by mmap. A background thread wakes every second and releases ``release_rate`` bytes per second of free
spans wherever they lie (tcmalloc/background.cc; ``ReleaseAtLeastNPages`` releases whole spans, so it
may overshoot).

The three release strategies David Rientjes proposed in the founding linux-mm thread (Nov 2015) are options:
``prefer_split_hugepages`` (release spans on hugepages that are already split first, so a scavenge breaks no
new THP), ``prefer_long_spans`` (release longer spans first, delaying scavenging of short ones that may
coalesce), ``refault_discount`` (released memory reused since the last pass is subtracted from the budget).

Left out: gperftools' free-triggered incremental scavenger (IncrementalScavenge), the aggressive-decommit
mode, and the split between normal and returned free lists (one free span may mix both; page states say
which pages are backed).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

import numpy as np

from clustersim.units import PAGE_SIZE, parse_rate

from .base import HeapAllocator
from .best_fit import BestFitFreeList
from .options import BASE_OPTIONS, Option, parse_switch
from .page_space import PageState

TCMALLOC_PAGE_PAGES = 2  # kPageSize = 8 KiB, the default tcmalloc page (tcmalloc/common.h)
# Ranges examined per step of a release pass: enough to meet a typical per-second budget in one step,
# small enough that a pass over a large free list does not expand all of it into page indices at once.
RELEASE_SCAN_RANGES = 64

OPTIONS: dict[str, Option] = {
    "release_rate": Option(0.0, "bytes/s released by the background thread; 0, the open-source "
                           "default (MallocExtension::SetBackgroundReleaseRate), releases nothing", lo=0),
    "prefer_split_hugepages": Option(False, "off: the legacy heap's scavenger ignores hugepages; on: "
                                     "Rientjes' first proposal (linux-mm, Nov 2015)"),
    "prefer_long_spans": Option(False, "off: release in address order; on: Rientjes' second proposal"),
    "refault_discount": Option(False, "off: a fixed budget; on: Rientjes' third proposal"),
    **BASE_OPTIONS,
}


class LegacyPageHeap(HeapAllocator):
    """tcmalloc's legacy page heap. Options as in the module docstring; ``release_rate`` in bytes/s."""

    kind = "tcmalloc"
    OPTIONS = OPTIONS

    def __init__(self, process, *, release_rate: float | str = OPTIONS["release_rate"].default,
                 prefer_split_hugepages: bool | str = OPTIONS["prefer_split_hugepages"].default,
                 prefer_long_spans: bool | str = OPTIONS["prefer_long_spans"].default,
                 refault_discount: bool | str = OPTIONS["refault_discount"].default,
                 release_advice: str = OPTIONS["release_advice"].default,
                 hugepage_advice: str = OPTIONS["hugepage_advice"].default,
                 collapse: str = OPTIONS["collapse"].default, clock=None) -> None:
        super().__init__(process, release_advice=release_advice, hugepage_advice=hugepage_advice,
                         collapse=collapse, clock=clock)
        self.release_rate_bytes_s = OPTIONS["release_rate"].check(parse_rate(release_rate, "release_rate"),
                                                                  "release_rate")
        self.prefer_split_hugepages = parse_switch(prefer_split_hugepages, "prefer_split_hugepages")
        self.prefer_long_spans = parse_switch(prefer_long_spans, "prefer_long_spans")
        self.refault_discount = parse_switch(refault_discount, "refault_discount")
        self.free_list = BestFitFreeList()
        self._credit_pages = 0.0
        self._reused_seen = 0
        self._cursor = 0

    # ----------------------------------------------------------------------------------- placement

    def _round_pages(self, npages: np.ndarray) -> np.ndarray:
        return -(-npages // TCMALLOC_PAGE_PAGES) * TCMALLOC_PAGE_PAGES

    def _place(self, npages: int) -> int:
        start = self.free_list.take_best_fit(npages)
        if start is None:
            base = self._grow_heap(npages)
            self.free_list.insert(base, self._top_page - base, dirty=False)
            start = self.free_list.take_best_fit(npages)
        return start

    def _unplace(self, start: int, npages: int) -> None:
        self.free_list.insert(start, npages, dirty=True)

    # ----------------------------------------------------------------------------------- release

    def _budget_pages(self, dt_s: float) -> float:
        """This pass's release budget: rate x elapsed, minus refaulted memory when discounting."""
        budget = self.release_rate_bytes_s * dt_s / PAGE_SIZE + self._credit_pages
        reused = self.reused_released_pages - self._reused_seen
        self._reused_seen = self.reused_released_pages
        if self.refault_discount:
            budget -= reused
        return budget

    def _candidates(self) -> list[tuple[int, int]]:
        """Free spans that may hold backed pages, in the order this pass releases them.

        Default: address order from a cursor that rotates between passes, oblivious to hugepage
        boundaries as the legacy heap's round robin over its free lists is. The founding-thread options
        reorder: split hugepages first, then longer spans first (stable sort keeps address order on ties).
        """
        ranges = self.free_list.dirty_ranges()
        if not ranges:
            return ranges
        k = bisect_left(ranges, (self._cursor,))  # the first range starting at or after the cursor
        ranges = ranges[k:] + ranges[:k]
        if self.prefer_long_spans:
            ranges.sort(key=lambda r: -r[1])
        if self.prefer_split_hugepages:
            split = self._split_vhps()
            ranges.sort(key=lambda r: not (split[r[0] >> 9] or split[(r[0] + r[1] - 1) >> 9]))
        return ranges

    def _split_vhps(self) -> np.ndarray:
        """vhps already broken from the allocator's view: some page released, lazyfree or queued."""
        return (self.vhp_counts(PageState.RELEASED) + self.vhp_counts(PageState.LAZYFREE)
                + self.vhp_counts(PageState.QUEUED)) > 0

    def _background(self, now_s: float, dt_s: float) -> float:
        if self.release_rate_bytes_s == 0 or self.release_advice == "none":
            return 0.0
        budget = self._budget_pages(dt_s)
        if budget <= 0:
            self._credit_pages = min(budget, 0.0)
            return 0.0
        released, seconds = self._release_spans(self._candidates(), budget)
        # Overshoot (whole spans) is paid back by later passes; unspent budget does not accumulate.
        self._credit_pages = min(budget - released, 0.0)
        return seconds

    def _release_spans(self, ranges: list[tuple[int, int]], budget: float) -> tuple[int, float]:
        """Release whole free spans in the given order until at least ``budget`` pages are released."""
        released, seconds = 0, 0.0
        for i in range(0, len(ranges), RELEASE_SCAN_RANGES):
            chunk = ranges[i:i + RELEASE_SCAN_RANGES]
            starts = [s for s, _ in chunk]
            lengths = [n for _, n in chunk]
            backed = self.free_backed_in(starts, lengths)
            # Whole spans up to the first at which the backed pages reach what is left of the budget.
            upto = min(bisect_left(list(accumulate(backed)), budget - released) + 1, len(chunk))
            n, spent = self.release_ranges(starts[:upto], lengths[:upto])
            released += n
            seconds += spent
            for s in starts[:upto]:
                self.free_list.mark_clean(s)
            self._cursor = starts[upto - 1] + lengths[upto - 1]
            if released >= budget:
                break
        return released, seconds
