"""HugePageAwareAllocator: Temeraire, tcmalloc's hugepage-aware page heap (Hunter et al., OSDI 2021).

Composes the components as tcmalloc does (docs/temeraire.md):

- spans up to half a hugepage go to the HugePageFiller (a new hugepage from the HugeCache when none fits);
- spans between half a hugepage and a hugepage try the filler's existing hugepages, then a HugeRegion;
- spans of a hugepage or more take whole hugepages from the HugeCache; the slack of the last hugepage is
  donated to the filler, where donated hugepages are the last choice for small spans, so that the large
  span's hugepages can be reassembled when it is freed;
- ``release(N)`` at ``release_rate`` bytes/s: empty hugepages from the cache first, then whole empty
  hugepages of regions, and only if that is not enough, subrelease of partly used filler hugepages,
  limited by the skip-subrelease intervals.

Left out: the 1 GiB+ direct path, NUMA partitions, lifetime-based allocation, the cache's miss-driven
limit growth.
"""

from __future__ import annotations

import numpy as np

from clustersim.units import HPAGE_PAGES, PAGE_SIZE, parse_rate

from .base import HeapAllocator
from .huge_cache import HugeAllocator, HugeCache
from .huge_page_filler import TC_PAGE_PAGES, TC_PAGES_PER_HUGEPAGE, HugePageFiller, PageTracker
from .huge_region import REGION_HUGEPAGES, HugeRegion
from .options import BASE_OPTIONS, Option
from .page_space import PageState

OPTIONS: dict[str, Option] = {
    "release_rate": Option(0.0, "bytes/s released by the background thread; 0, the open-source default, "
                           "releases only via the cache", lo=0),
    "skip_subrelease_short_s": Option(60.0, "current tcmalloc's short skip-subrelease interval; 0 disables "
                                      "skipping", lo=0),
    "skip_subrelease_long_s": Option(300.0, "current tcmalloc's long skip-subrelease interval; 0 disables "
                                     "skipping", lo=0),
    "cache_window_s": Option(2.0, "HugeCache demand window (Temeraire Sec. 4.3)", lo=0),
    **BASE_OPTIONS,
}

_FILLER, _REGION, _LARGE = 0, 1, 2


class HugePageAwareAllocator(HeapAllocator):
    """Temeraire. ``release_rate`` in bytes/s (0, the open-source default, releases only via the cache)."""

    kind = "temeraire"
    OPTIONS = OPTIONS

    def __init__(self, process, *, release_rate: float | str = OPTIONS["release_rate"].default,
                 skip_subrelease_short_s: float = OPTIONS["skip_subrelease_short_s"].default,
                 skip_subrelease_long_s: float = OPTIONS["skip_subrelease_long_s"].default,
                 cache_window_s: float = OPTIONS["cache_window_s"].default,
                 release_advice: str = OPTIONS["release_advice"].default,
                 hugepage_advice: str = OPTIONS["hugepage_advice"].default,
                 collapse: str = OPTIONS["collapse"].default, clock=None) -> None:
        super().__init__(process, release_advice=release_advice, hugepage_advice=hugepage_advice,
                         collapse=collapse, clock=clock)
        self.release_rate_bytes_s = OPTIONS["release_rate"].check(parse_rate(release_rate, "release_rate"),
                                                                  "release_rate")
        for name, value in (("skip_subrelease_short_s", skip_subrelease_short_s),
                            ("skip_subrelease_long_s", skip_subrelease_long_s),
                            ("cache_window_s", cache_window_s)):
            OPTIONS[name].check(value, name)
        self.huge_allocator = HugeAllocator(self)
        self.cache = HugeCache(self, self.huge_allocator, self.now, cache_window_s)
        self.filler = HugePageFiller(self, self.now, skip_subrelease_short_s, skip_subrelease_long_s)
        self.regions: list[HugeRegion] = []
        self._owner: dict[int, tuple] = {}   # first page of a live span -> how to free it
        self._credit_pages = 0.0
        self._pending_s = 0.0

    # ----------------------------------------------------------------------------------- placement

    def _round_pages(self, npages: np.ndarray) -> np.ndarray:
        return -(-npages // TC_PAGE_PAGES) * TC_PAGE_PAGES

    def _place(self, npages: int) -> int:
        if npages >= HPAGE_PAGES:
            return self._alloc_large(npages)
        n_tc = npages // TC_PAGE_PAGES
        got = self.filler.try_get(n_tc)
        if got is None and n_tc > TC_PAGES_PER_HUGEPAGE // 2:
            return self._alloc_region(npages)
        if got is None:
            pt = PageTracker(self.cache.get(1))
            self.filler.contribute(pt, donated=False)
            got = self.filler.try_get(n_tc)
        pt, start_tc = got
        start = pt.vhp * HPAGE_PAGES + start_tc * TC_PAGE_PAGES
        self._owner[start] = (_FILLER, pt, start_tc, n_tc)
        return start

    def _alloc_region(self, npages: int) -> int:
        for region in self.regions:
            start = region.try_get(npages)
            if start is not None:
                break
        else:
            region = HugeRegion(self, self.huge_allocator.get(REGION_HUGEPAGES))
            self.regions.append(region)
            start = region.try_get(npages)
        self._owner[start] = (_REGION, region)
        return start

    def _alloc_large(self, npages: int) -> int:
        n_hp = -(-npages // HPAGE_PAGES)
        first_vhp = self.cache.get(n_hp)
        tail_tc = (npages - (n_hp - 1) * HPAGE_PAGES) // TC_PAGE_PAGES
        tail = None
        if tail_tc < TC_PAGES_PER_HUGEPAGE:
            tail = PageTracker(first_vhp + n_hp - 1)
            tail.mark(0, tail_tc)
            self.filler.contribute(tail, donated=True)
        start = first_vhp * HPAGE_PAGES
        self._owner[start] = (_LARGE, n_hp, tail, tail_tc)
        return start

    def _unplace(self, start: int, npages: int) -> None:
        owner = self._owner.pop(start)
        if owner[0] == _FILLER:
            _, pt, start_tc, n_tc = owner
            if self.filler.put(pt, start_tc, n_tc):
                self._return_hugepage(pt)
        elif owner[0] == _REGION:
            owner[1].put(start, npages)
        else:
            self._free_large(start, owner)

    def _free_large(self, start: int, owner: tuple) -> None:
        _, n_hp, tail, tail_tc = owner
        whole = n_hp - 1 if tail is not None else n_hp
        if whole:
            self._pending_s += self.cache.put(start // HPAGE_PAGES, whole)
        if tail is not None and self.filler.put(tail, 0, tail_tc):
            self._return_hugepage(tail)

    def _return_hugepage(self, pt: PageTracker) -> None:
        """An emptied filler hugepage goes to the cache; a subreleased one is released whole instead."""
        if pt.released:
            pages = np.array([pt.vhp * HPAGE_PAGES], dtype=np.int64)
            self._pending_s += self.release_ranges(pages, np.array([HPAGE_PAGES]))[1]
            self.cache.usage_hp -= 1
            self.huge_allocator.put(pt.vhp, 1)
        else:
            self._pending_s += self.cache.put(pt.vhp, 1)

    def _on_alloc_batch(self) -> float:
        return 0.0

    def alloc(self, span_ids, span_bytes) -> float:
        seconds = super().alloc(span_ids, span_bytes)
        self.filler.record_demand()
        return seconds

    def _on_free_batch(self) -> float:
        self.filler.record_demand()
        seconds, self._pending_s = self._pending_s, 0.0
        return seconds

    # ----------------------------------------------------------------------------------- release

    def _background(self, now_s: float, dt_s: float) -> float:
        if self.release_advice == "none":
            return 0.0
        seconds = self.cache.shrink()
        if self.release_rate_bytes_s == 0:
            return seconds
        budget = self.release_rate_bytes_s * dt_s / PAGE_SIZE + self._credit_pages
        released, spent = self.release(budget)
        self._credit_pages = min(budget - released, 0.0)
        return seconds + spent

    def release(self, budget_pages: float) -> tuple[int, float]:
        """ReleaseAtLeastNPages: cache, then empty region hugepages, then filler subrelease."""
        released, seconds = self.cache.release(int(-(-budget_pages // HPAGE_PAGES)))
        for region in self.regions:
            if released >= budget_pages:
                break
            n, spent = region.release_empty_hugepages(budget_pages - released)
            released, seconds = released + n, seconds + spent
        if released < budget_pages:
            want_tc = int(-(-(budget_pages - released) // TC_PAGE_PAGES))
            n, spent = self.filler.release_pages(want_tc)
            released, seconds = released + n, seconds + spent
        return released, seconds

    def filler_slack(self) -> float:
        """Free backed bytes over backed bytes of the filler's hugepages (tcmalloc's filler stats)."""
        vhps = self.filler.member_vhps()
        if len(vhps) == 0:
            return 0.0
        free = int(self._vhp_counts[vhps, PageState.FREE_BACKED].sum())
        return free / (len(vhps) * HPAGE_PAGES)
