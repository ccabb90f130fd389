"""HugeRegion: mid-size spans packed across hugepage boundaries (tcmalloc/huge_region.h).

Spans between half a hugepage and a hugepage fit badly in the filler (one per hugepage, the rest wasted)
and badly as whole hugepages (up to half wasted). A region is 1 GiB of address space (Temeraire, OSDI 2021:
first 32 MiB, later 1 GiB) taken unbacked from the HugeAllocator; spans are placed by best fit at tcmalloc-
page granularity, so they straddle hugepage boundaries, and a hugepage of the region is backed only when a
span first touches it. Release returns the region's hugepages that hold no span at all.

Region ``r``'s free pages are range set ``FIRST_ROW + r`` (huge_allocator.py), in 4 KiB pages; ``regions``
holds the region count and each region's first vhp, in creation order (the order spans try them), and the
``REGION`` column of the per-hugepage state says which region a vhp belongs to.

Left out: tcmalloc's preference for the fullest region and its per-region backing bitmap (backing is
whatever the kernel did on touch).
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit
from clustersim.units import HPAGE_PAGES

from .huge_allocator import emit_range, end_group, rs_best_fit, rs_insert
from .huge_cache import ALLOC
from .page_space import PageState
from .page_tracker import REGION

REGION_HUGEPAGES = 512           # 1 GiB regions (tcmalloc's HugeRegion::size())
FIRST_ROW = 2                    # range-set row of region 0 (after the allocator's and the cache's)
NREGIONS = 0                     # regions[NREGIONS] is the count, regions[1 + r] region r's first vhp
NEED_ROW, NEED_SPACE = -1, -2    # region_alloc's answers when the caller must make room first
_IN_USE, _FREE_BACKED = int(PageState.IN_USE), int(PageState.FREE_BACKED)


def new_regions(capacity: int = 4) -> np.ndarray:
    """No regions yet, room for ``capacity``."""
    return np.zeros(capacity + 1, dtype=np.int64)


@njit
def region_alloc(hp, rs, rs_n, regions, npages):
    """First 4 KiB page of a best-fit range of ``npages`` in the first region that has one, in a new region
    when none has; NEED_ROW or NEED_SPACE (nothing changed) when there is no room for a new region."""
    for r in range(regions[NREGIONS]):
        start = rs_best_fit(rs, rs_n, FIRST_ROW + r, npages)
        if start >= 0:
            return start
    r = regions[NREGIONS]
    if FIRST_ROW + r >= rs.shape[0] or 1 + r >= regions.shape[0]:
        return NEED_ROW
    first_vhp = rs_best_fit(rs, rs_n, ALLOC, REGION_HUGEPAGES)
    if first_vhp < 0:
        return NEED_SPACE
    regions[1 + r] = first_vhp
    regions[NREGIONS] = r + 1
    for v in range(first_vhp, first_vhp + REGION_HUGEPAGES):
        hp[v, REGION] = r
    rs_insert(rs, rs_n, FIRST_ROW + r, first_vhp * HPAGE_PAGES, REGION_HUGEPAGES * HPAGE_PAGES)
    return rs_best_fit(rs, rs_n, FIRST_ROW + r, npages)


@inline
def region_put(hp, rs, rs_n, start, npages):
    """Take back a span of its region."""
    rs_insert(rs, rs_n, FIRST_ROW + hp[start // HPAGE_PAGES, REGION], start, npages)


@njit
def region_release_empty(counts, regions, r, budget_pages, out, ends, out_n):
    """Release region ``r``'s hugepages with no span and backed memory, in address order while the pages
    before each are under ``budget_pages``, as one group of the plan: returns the 4 KiB pages released."""
    first, pages, before, empty = regions[1 + r], 0, 0, False
    for v in range(first, first + REGION_HUGEPAGES):
        backed = counts[v, _FREE_BACKED]
        if counts[v, _IN_USE] == 0 and backed > 0:
            empty = True
            if before < budget_pages:
                emit_range(out, out_n, v * HPAGE_PAGES, HPAGE_PAGES)
                pages += backed
            before += backed
    if empty:
        end_group(ends, out_n)
    return pages
