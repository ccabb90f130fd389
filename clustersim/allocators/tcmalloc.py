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

import numpy as np

from clustersim.jit import njit
from clustersim.units import PAGE_SIZE, parse_rate

from .base import HeapAllocator
from .best_fit import BestFitFreeList, insert_runs, place_best_fit
from .options import BASE_OPTIONS, Option, parse_switch
from .page_space import PageState
from .ranges import VHP_SHIFT

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

    def _place_batch(self, npages: np.ndarray) -> np.ndarray:
        starts = np.empty(len(npages), dtype=np.int64)
        done = 0
        while True:
            self.free_list.reserve(len(npages) - done)
            done = place_best_fit(self.free_list.buf, npages, starts, done)
            if done == len(npages):
                return starts
            # Nothing fits: grow the heap by mmap (PageHeap::GrowHeap) and add the new space as one clean
            # free run, merged with a free run ending at the old top; best fit then runs again.
            base = self._grow_heap(int(npages[done]))
            self.free_list.insert(base, self._top_page - base, dirty=False)

    def _unplace_batch(self, starts: np.ndarray, npages: np.ndarray) -> None:
        self.free_list.reserve(len(starts))
        insert_runs(self.free_list.buf, starts, npages, True)

    # ----------------------------------------------------------------------------------- release

    def _budget_pages(self, dt_s: float) -> float:
        """This pass's release budget: rate x elapsed, minus refaulted memory when discounting."""
        budget = self.release_rate_bytes_s * dt_s / PAGE_SIZE + self._credit_pages
        reused = self.reused_released_pages - self._reused_seen
        self._reused_seen = self.reused_released_pages
        if self.refault_discount:
            budget -= reused
        return budget

    def _candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Free spans that may hold backed pages, in the order this pass releases them (``_release_order``)."""
        starts, lengths = self.free_list.runs(dirty_only=True)
        # The split mask reads every vhp's counts; only the option that orders by it needs it.
        split = self._split_vhps() if self.prefer_split_hugepages else _NO_VHPS
        return _release_order(starts, lengths, self._cursor, self.prefer_long_spans,
                              self.prefer_split_hugepages, split)

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

    def _release_spans(self, ranges: tuple[np.ndarray, np.ndarray], budget: float) -> tuple[int, float]:
        """Release whole free spans in the given order until at least ``budget`` pages are released.

        The spans are taken RELEASE_SCAN_RANGES at a time, each step one batch of madvise calls.
        """
        released, seconds = 0, 0.0
        all_starts, all_lengths = ranges
        for i in range(0, len(all_starts), RELEASE_SCAN_RANGES):
            starts = all_starts[i:i + RELEASE_SCAN_RANGES]
            lengths = all_lengths[i:i + RELEASE_SCAN_RANGES]
            backed = np.cumsum(self.free_backed_in(starts, lengths))
            # Whole spans up to the first at which the backed pages reach what is left of the budget.
            upto = min(int(np.searchsorted(backed, budget - released)) + 1, len(starts))
            n, spent = self.release_ranges(starts[:upto], lengths[:upto])
            released += n
            seconds += spent
            self.free_list.mark_clean(starts[:upto])
            self._cursor = int(starts[upto - 1] + lengths[upto - 1])
            if released >= budget:
                break
        return released, seconds


_NO_VHPS = np.zeros(0, dtype=bool)


@njit
def _release_order(starts, lengths, cursor, long_first, split_first, split):
    """The order of a release pass over the dirty free spans ``starts``/``lengths`` (address order).

    Default: address order from a cursor that rotates between passes, oblivious to hugepage boundaries
    as the legacy heap's round robin over its free lists is. The founding-thread options reorder: longer
    spans first (``long_first``), then spans with an end on an already split hugepage first
    (``split_first``; ``split`` says per vhp); both sorts are stable, so address order from the cursor
    breaks ties.
    """
    k = np.searchsorted(starts, cursor)   # the first span starting at or after the cursor
    order = np.concatenate((np.arange(k, starts.shape[0]), np.arange(0, k)))
    if long_first:
        order = order[np.argsort(-lengths[order], kind="mergesort")]
    if split_first:
        first_vhp = starts[order] >> VHP_SHIFT
        last_vhp = (starts[order] + lengths[order] - 1) >> VHP_SHIFT
        unsplit = np.empty(order.shape[0], dtype=np.int64)
        for j in range(order.shape[0]):
            unsplit[j] = 0 if split[first_vhp[j]] or split[last_vhp[j]] else 1
        order = order[np.argsort(unsplit, kind="mergesort")]
    return starts[order], lengths[order]
