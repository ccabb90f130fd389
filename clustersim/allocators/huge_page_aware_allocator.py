"""HugePageAwareAllocator: Temeraire, tcmalloc's hugepage-aware page heap (Hunter et al., OSDI 2021).

Composes the components as tcmalloc does (docs/temeraire.md); their state is numpy arrays and each batch of
spans is placed or freed by one compiled call (huge_page_placement.py):

- the HugePageFiller packs spans up to half a hugepage (and mid-size ones that fit) into partly used
  hugepages: per-hugepage trackers (page_tracker.py) on lists by longest free range and allocation count
  (huge_page_filler.py);
- HugeRegions pack mid-size spans across hugepage boundaries (huge_region.py);
- the HugeCache holds empty backed hugepages within its demand window, the HugeAllocator the unbacked
  address space (huge_cache.py, over the range sets of huge_allocator.py);
- ``release(N)`` at ``release_rate`` bytes/s: empty hugepages from the cache first, then whole empty
  hugepages of regions, and only if that is not enough, subrelease of partly used filler hugepages,
  limited by the skip-subrelease intervals (huge_page_subrelease.py).

The compiled calls choose; this class makes the syscalls they imply, in the order chosen: the mmap that
grows the heap when placement runs out of address space, and one release call per planned group.

Left out: the 1 GiB+ direct path, NUMA partitions, lifetime-based allocation, the cache's miss-driven
limit growth.
"""

from __future__ import annotations

import math

import numpy as np

from clustersim.units import HPAGE_PAGES, PAGE_SIZE, parse_rate

from .base import HeapAllocator
from .huge_allocator import COUNT, NGROUPS, NRANGES, TOTAL, new_plan, new_range_sets, rs_insert
from .huge_cache import ALLOC, CACHE, NEPOCHS, WINDOW_EPOCHS, cache_shrink, new_window
from .huge_page_filler import DEMAND_N, new_lists
from .huge_page_placement import place_spans, release_whole, unplace_spans
from .huge_page_subrelease import new_demand, record_demand, subrelease
from .huge_region import FIRST_ROW, NEED_ROW, NREGIONS, REGION_HUGEPAGES, new_regions
from .options import BASE_OPTIONS, Option, ReleaseAdvice
from .page_space import PageState
from .page_tracker import MEMBER, RELEASED, TC_PAGE_PAGES, new_hugepages

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


def _grown(a: np.ndarray, axis: int, size: int, fill: int = 0) -> np.ndarray:
    """``a`` with ``axis`` enlarged to ``size`` (new entries ``fill``)."""
    shape = list(a.shape)
    shape[axis] = size
    out = np.full(shape, fill, dtype=a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


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
        self.skip_short_s, self.skip_long_s = float(skip_subrelease_short_s), float(skip_subrelease_long_s)
        self.cache_window_s = float(cache_window_s)
        self._hp = new_hugepages(len(self._vhp_counts))                # per-hugepage trackers and flags
        self._lists, self._nonempty, self._fill = new_lists()            # the filler's tracker lists
        self._demand = new_demand()                                      # the filler's used pages per second
        self._rs, self._rs_n = new_range_sets(FIRST_ROW + 2, 64)         # allocator, cache, regions
        self._epochs, self._cache_n = new_window()                       # the cache's demand window
        self._regions = new_regions(2)
        self._out, self._ends, self._out_n = new_plan(64, 16)           # releases a call decided
        self._rs_bound = 0
        self._credit_pages = 0.0
        self._pending_s = 0.0

    # ----------------------------------------------------------------------------------- room

    def _epoch(self) -> int:
        """The cache window's epoch now (constant over a batch)."""
        return math.floor(self.now() * WINDOW_EPOCHS / self.cache_window_s) if self.cache_window_s > 0 else 0

    def _reserve(self, new_ranges: int, plan_ranges: int, plan_groups: int) -> None:
        """Room for a call that adds up to ``new_ranges`` to any range set and plans up to ``plan_ranges``
        ranges in ``plan_groups`` groups; the demand records can take one entry more each."""
        self._rs_bound += new_ranges   # an upper bound of every range set's count after the call
        if self._rs_bound + 1 > self._rs.shape[2]:
            self._rs_bound = int(self._rs_n[:, COUNT].max()) + new_ranges
            if self._rs_bound + 1 > self._rs.shape[2]:
                self._rs = _grown(self._rs, 2, max(self._rs_bound + 1, 2 * self._rs.shape[2]))
        if plan_ranges > self._out.shape[1]:
            self._out = _grown(self._out, 1, max(plan_ranges, 2 * self._out.shape[1]))
        if plan_groups > len(self._ends):
            self._ends = _grown(self._ends, 0, max(plan_groups, 2 * len(self._ends)))
        if self._cache_n[NEPOCHS] + 1 >= len(self._epochs):
            self._epochs = _grown(self._epochs, 0, 2 * len(self._epochs))
        out_n = self._out_n
        out_n[NRANGES] = out_n[NGROUPS] = 0

    def _map_hugepages(self, n_hp: int) -> None:
        """HugeAllocator's growth: mmap at least ``n_hp`` hugepages more of heap, free for the allocator."""
        first_vhp = self._grow_heap(n_hp * HPAGE_PAGES) // HPAGE_PAGES
        self._reserve(1, 0, 0)
        rs_insert(self._rs, self._rs_n, ALLOC, first_vhp, self.nvhp - first_vhp)
        if len(self._hp) < len(self._vhp_counts):   # the page space grew: trackers for its new vhps
            self._hp = np.concatenate((self._hp, new_hugepages(len(self._vhp_counts) - len(self._hp))))

    def _add_region_rows(self) -> None:
        """Room for twice as many regions."""
        rows = 2 * (len(self._regions) - 1)
        self._regions = _grown(self._regions, 0, rows + 1)
        self._rs = _grown(self._rs, 0, FIRST_ROW + rows)
        self._rs_n = _grown(self._rs_n, 0, FIRST_ROW + rows)

    # ----------------------------------------------------------------------------------- placement

    def _round_pages(self, npages: np.ndarray) -> np.ndarray:
        return -(-npages // TC_PAGE_PAGES) * TC_PAGE_PAGES

    def _place_batch(self, npages: np.ndarray) -> np.ndarray:
        starts = np.empty(len(npages), dtype=np.int64)
        epoch, (second, horizon_s), done = self._epoch(), self._demand_second(), 0
        self._reserve(0, 0, 0)
        while True:
            done, need = place_spans(self._hp, self._lists, self._nonempty, self._fill, self._rs, self._rs_n,
                                     self._epochs, self._cache_n, self._regions, self._vhp_counts, npages,
                                     starts, done, epoch, self._demand, second, horizon_s)
            if done == len(npages):
                return starts
            if need == NEED_ROW:
                self._add_region_rows()
            else:
                self._map_hugepages(-need - 2)

    def _unplace_batch(self, starts: np.ndarray, npages: np.ndarray) -> None:
        n, cached = len(starts), int(self._rs_n[CACHE, COUNT])
        self._reserve(cached + 3 * n, cached + 6 * n + 2, 2 * n + 1)
        second, horizon_s = self._demand_second()
        unplace_spans(self._hp, self._lists, self._nonempty, self._fill, self._rs, self._rs_n, self._epochs,
                      self._cache_n, self._vhp_counts, starts, npages, self._epoch(), self._out, self._ends,
                      self._out_n, self._demand, second, horizon_s)
        self._pending_s = self._issue(self._out, self._ends, self._out_n, self._pending_s)[1]

    def _issue(self, out: np.ndarray, ends: np.ndarray, out_n: np.ndarray,
               seconds: float = 0.0) -> tuple[int, float]:
        """Make the planned release calls in order: (4 KiB pages released, ``seconds`` plus their cost)."""
        pages, a = 0, 0
        if out_n[NGROUPS] == 0:
            return pages, seconds
        for b in ends[: out_n[NGROUPS]].tolist():
            n, spent = self.release_ranges(out[0, a:b], out[1, a:b])
            pages, seconds, a = pages + n, seconds + spent, b
        assert a == out_n[NRANGES]
        return pages, seconds

    def _demand_second(self) -> tuple[int, float]:
        """The second the filler's demand is recorded under, and the horizon before which records are
        forgotten; makes room for one more record."""
        if self._fill[DEMAND_N] + 1 >= len(self._demand):
            self._demand = _grown(self._demand, 0, 2 * len(self._demand))
        second = int(self.now())
        return second, float(second - max(self.skip_short_s, self.skip_long_s))

    def alloc(self, span_ids, span_bytes) -> float:
        seconds = super().alloc(span_ids, span_bytes)
        if len(span_ids) == 0:   # no batch was placed, so its demand record is made here
            second, horizon_s = self._demand_second()
            record_demand(self._demand, self._fill, second, horizon_s)
        return seconds

    def _on_free_batch(self) -> float:   # the free batch recorded its demand already
        seconds, self._pending_s = self._pending_s, 0.0
        return seconds

    # ----------------------------------------------------------------------------------- release

    def _background(self, now_s: float, dt_s: float) -> float:
        if self.release_advice == "none":
            return 0.0
        cached = int(self._rs_n[CACHE, COUNT])
        self._reserve(cached + 1, cached + 1, 1)
        cache_shrink(self._rs, self._rs_n, self._epochs, self._cache_n, self._vhp_counts, self._epoch(),
                     self._out, self._ends, self._out_n)
        seconds = self._issue(self._out, self._ends, self._out_n)[1]
        if self.release_rate_bytes_s == 0:
            return seconds
        budget = self.release_rate_bytes_s * dt_s / PAGE_SIZE + self._credit_pages
        released, spent = self.release(budget)
        self._credit_pages = min(budget - released, 0.0)
        return seconds + spent

    def release(self, budget_pages: float) -> tuple[int, float]:
        """ReleaseAtLeastNPages: cache, then empty region hugepages, then filler subrelease."""
        cached, nregions = int(self._rs_n[CACHE, COUNT]), int(self._regions[NREGIONS])
        self._reserve(cached + 1, cached + 1 + REGION_HUGEPAGES * nregions, nregions + 1)
        planned = release_whole(self._rs, self._rs_n, self._vhp_counts, self._regions, float(budget_pages),
                                int(-(-budget_pages // HPAGE_PAGES)), self._out, self._ends, self._out_n)
        released, seconds = self._issue(self._out, self._ends, self._out_n)
        assert released == planned, (released, planned)
        if released < budget_pages:
            want_tc = int(-(-(budget_pages - released) // TC_PAGE_PAGES))
            planned, out, ends, out_n = subrelease(
                self._hp, self._lists, self._nonempty, self._fill, self._demand, self._vhp_counts, want_tc,
                self.skip_short_s, self.skip_long_s, self.release_advice is ReleaseAdvice.NONE)
            n, spent = self._issue(out, ends, out_n)
            assert n == planned, (n, planned)
            released, seconds = released + n, seconds + spent
        return released, seconds

    # ----------------------------------------------------------------------------------- views

    @property
    def cached_hugepages(self) -> int:
        """Empty backed hugepages in the HugeCache."""
        return int(self._rs_n[CACHE, TOTAL])

    @property
    def unbacked_hugepages(self) -> int:
        """Hugepages of address space the HugeAllocator holds (fresh or released)."""
        return int(self._rs_n[ALLOC, TOTAL])

    @property
    def region_count(self) -> int:
        return int(self._regions[NREGIONS])

    def subreleased(self, page: int) -> bool:
        """Whether the filler hugepage holding 4 KiB page ``page`` is marked subreleased."""
        return bool(self._hp[page // HPAGE_PAGES, RELEASED])

    def filler_slack(self) -> float:
        """Free backed bytes over backed bytes of the filler's hugepages (tcmalloc's filler stats)."""
        vhps = np.flatnonzero(self._hp[: self.nvhp, MEMBER])
        if len(vhps) == 0:
            return 0.0
        free = int(self._vhp_counts[vhps, PageState.FREE_BACKED].sum())
        return free / (len(vhps) * HPAGE_PAGES)
