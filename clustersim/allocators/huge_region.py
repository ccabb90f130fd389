"""HugeRegion: mid-size spans packed across hugepage boundaries (tcmalloc/huge_region.h).

Spans between half a hugepage and a hugepage fit badly in the filler (one per hugepage, the rest wasted)
and badly as whole hugepages (up to half wasted). A region is 1 GiB of address space (Temeraire, OSDI 2021:
first 32 MiB, later 1 GiB) taken unbacked from the HugeAllocator; spans are placed by best fit at tcmalloc-
page granularity, so they straddle hugepage boundaries, and a hugepage of the region is backed only when a
span first touches it. Release returns the region's hugepages that hold no span at all.

Left out: tcmalloc's preference for the fullest region and its per-region backing bitmap (backing is
whatever the kernel did on touch).
"""

from __future__ import annotations

import numpy as np

from clustersim.units import HPAGE_PAGES

from .best_fit import BestFitFreeList
from .page_space import PageState

REGION_HUGEPAGES = 512  # 1 GiB regions (tcmalloc's HugeRegion::size())


class HugeRegion:
    """One 1 GiB region of the heap's page space, starting at vhp ``first_vhp``."""

    def __init__(self, heap, first_vhp: int) -> None:
        self.heap = heap
        self.first_vhp = first_vhp
        self.free = BestFitFreeList()
        self.free.insert(first_vhp * HPAGE_PAGES, REGION_HUGEPAGES * HPAGE_PAGES, dirty=False)

    def contains(self, page: int) -> bool:
        return self.first_vhp <= page // HPAGE_PAGES < self.first_vhp + REGION_HUGEPAGES

    def try_get(self, npages: int) -> int | None:
        """First 4 KiB page of a best-fit range of ``npages``, or None when the region is full."""
        return self.free.take_best_fit(npages)

    def put(self, start: int, npages: int) -> None:
        self.free.insert(start, npages)

    def release_empty_hugepages(self, budget_pages: float) -> tuple[int, float]:
        """Release hugepages of the region with no span and backed memory: (4 KiB pages, seconds)."""
        vhps = slice(self.first_vhp, self.first_vhp + REGION_HUGEPAGES)
        counts = self.heap._vhp_counts[vhps]
        empty = (counts[:, PageState.IN_USE] == 0) & (counts[:, PageState.FREE_BACKED] > 0)
        idx = np.flatnonzero(empty)
        if len(idx) == 0:
            return 0, 0.0
        backed = counts[idx, PageState.FREE_BACKED]
        keep = np.cumsum(backed) - backed < budget_pages
        idx = idx[keep]
        starts = (self.first_vhp + idx) * HPAGE_PAGES
        return self.heap.release_ranges(starts, np.full(len(idx), HPAGE_PAGES, dtype=np.int64))
