"""Where Temeraire puts a span, how it takes one back, and which whole hugepages it releases, one compiled
call per batch (tcmalloc/huge_page_aware_allocator.h: New, AllocSmall, AllocLarge, AllocRawHugepages,
Delete, ReleaseAtLeastNPages).

- spans up to half a hugepage go to the HugePageFiller (a new hugepage from the HugeCache when none fits);
- spans between half a hugepage and a hugepage try the filler's existing hugepages, then a HugeRegion;
- spans of a hugepage or more take whole hugepages from the HugeCache; the slack of the last hugepage is
  donated to the filler, where donated hugepages are the last choice for small spans, so that the large
  span's hugepages can be reassembled when it is freed.

Which component holds a live span follows from its first page and length alone (a span of a hugepage or
more is large; a smaller one lies in a region's vhp or in a filler hugepage), so nothing is recorded per
span. Freeing returns an emptied filler hugepage to the cache, or, when it had been subreleased, releases it
whole and gives it back to the HugeAllocator; the releases are handed back as a plan (huge_allocator.py).

Placement may need the heap to grow, which is an mmap: ``place_spans`` then stops before the span that
needs it, untouched, and says how many hugepages it needs (or that the region table is full); the caller
makes room and calls again from that span, which then makes the same choices it would have made.

Background release takes empty hugepages from the cache first, then whole empty hugepages of regions, and
only if that is not enough subreleases partly used filler hugepages (the caller's next step).
"""

from __future__ import annotations

from clustersim.jit import inline, njit
from clustersim.units import HPAGE_PAGES

from .huge_allocator import emit_range, end_group, rs_insert
from .huge_cache import ALLOC, USAGE, cache_get, cache_put, cache_release
from .huge_page_filler import filler_contribute, filler_put, filler_try_get
from .huge_page_subrelease import record_demand
from .huge_region import NEED_SPACE, NREGIONS, REGION_HUGEPAGES, region_alloc, region_put, region_release_empty
from .page_tracker import REGION, RELEASED, TC_PAGE_PAGES, TC_PAGES_PER_HUGEPAGE, tracker_mark, tracker_reset


@inline
def need_space(n_hp):
    """The answer of a placement that needs ``n_hp`` more unbacked hugepages (NEED_ROW is the other)."""
    return -2 - n_hp


@inline
def _alloc_large(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, npages, epoch):
    """AllocRawHugepages: whole hugepages from the cache; the last one's slack is donated to the filler."""
    n_hp = -(-npages // HPAGE_PAGES)
    first_vhp = cache_get(rs, rs_n, epochs, cache_n, n_hp, epoch)
    if first_vhp < 0:
        return need_space(n_hp)
    tail_tc = (npages - (n_hp - 1) * HPAGE_PAGES) // TC_PAGE_PAGES
    if tail_tc < TC_PAGES_PER_HUGEPAGE:
        v = first_vhp + n_hp - 1
        tracker_reset(hp, v)
        tracker_mark(hp, v, 0, tail_tc)
        filler_contribute(hp, lists, nonempty, fill, counts, v, 1)
    return first_vhp * HPAGE_PAGES


@inline
def _place(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, regions, counts, npages, epoch):
    """First 4 KiB page of a span of ``npages`` (a multiple of TC_PAGE_PAGES), or a need answer."""
    if npages >= HPAGE_PAGES:
        return _alloc_large(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, npages, epoch)
    n_tc = npages // TC_PAGE_PAGES
    v, start_tc = filler_try_get(hp, lists, nonempty, fill, counts, n_tc)
    if v < 0 and n_tc > TC_PAGES_PER_HUGEPAGE // 2:   # AllocLarge: no existing hugepage fits, use a region
        start = region_alloc(hp, rs, rs_n, regions, npages)
        return need_space(REGION_HUGEPAGES) if start == NEED_SPACE else start
    if v < 0:   # AllocSmall: a new hugepage for the filler; the span is then its only candidate
        v = cache_get(rs, rs_n, epochs, cache_n, 1, epoch)
        if v < 0:
            return need_space(1)
        tracker_reset(hp, v)
        filler_contribute(hp, lists, nonempty, fill, counts, v, 0)
        v, start_tc = filler_try_get(hp, lists, nonempty, fill, counts, n_tc)
    return v * HPAGE_PAGES + start_tc * TC_PAGE_PAGES


@njit
def place_spans(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, regions, counts, npages, starts,
                first, epoch, demand, second, horizon_s):
    """Place spans ``first..`` of ``npages`` in order, writing ``starts``: (spans done, need answer or 0).
    Once all are placed, the filler's demand for ``second`` is recorded (huge_page_subrelease.py)."""
    for i in range(first, len(npages)):
        start = _place(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, regions, counts, npages[i], epoch)
        if start < 0:
            return i, start
        starts[i] = start
    record_demand(demand, fill, second, horizon_s)
    return len(npages), 0


@inline
def _return_hugepage(hp, rs, rs_n, epochs, cache_n, counts, v, epoch, out, ends, out_n):
    """An emptied filler hugepage goes to the cache; a subreleased one is released whole instead (it is
    partly unbacked already, and the cache holds backed hugepages) and goes back to the HugeAllocator."""
    if hp[v, RELEASED]:
        emit_range(out, out_n, v * HPAGE_PAGES, HPAGE_PAGES)
        end_group(ends, out_n)
        cache_n[USAGE] -= 1
        rs_insert(rs, rs_n, ALLOC, v, 1)
    else:
        cache_put(rs, rs_n, epochs, cache_n, counts, v, 1, epoch, out, ends, out_n)


@inline
def _free_filler(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, v, start_tc, n_tc, epoch,
                 out, ends, out_n):
    if filler_put(hp, lists, nonempty, fill, counts, v, start_tc, n_tc):
        _return_hugepage(hp, rs, rs_n, epochs, cache_n, counts, v, epoch, out, ends, out_n)


@njit
def unplace_spans(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, starts, npages, epoch,
                  out, ends, out_n, demand, second, horizon_s):
    """Take freed spans back in order (Delete); the releases this causes are added to the plan. Then the
    filler's demand for ``second`` is recorded."""
    for i in range(len(starts)):
        start, n = starts[i], npages[i]
        v = start // HPAGE_PAGES
        if n >= HPAGE_PAGES:   # whole hugepages back to the cache, then the donated tail's head
            n_hp = -(-n // HPAGE_PAGES)
            tail_tc = (n - (n_hp - 1) * HPAGE_PAGES) // TC_PAGE_PAGES
            has_tail = tail_tc < TC_PAGES_PER_HUGEPAGE
            whole = n_hp - 1 if has_tail else n_hp
            if whole:
                cache_put(rs, rs_n, epochs, cache_n, counts, v, whole, epoch, out, ends, out_n)
            if has_tail:
                _free_filler(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, v + n_hp - 1, 0,
                             tail_tc, epoch, out, ends, out_n)
        elif hp[v, REGION] >= 0:
            region_put(hp, rs, rs_n, start, n)
        else:
            _free_filler(hp, lists, nonempty, fill, rs, rs_n, epochs, cache_n, counts, v,
                         (start - v * HPAGE_PAGES) // TC_PAGE_PAGES, n // TC_PAGE_PAGES, epoch, out, ends, out_n)
    record_demand(demand, fill, second, horizon_s)



@njit
def release_whole(rs, rs_n, counts, regions, budget_pages, n_hp, out, ends, out_n):
    """The whole-hugepage part of ReleaseAtLeastNPages: up to ``n_hp`` cached hugepages, then the empty
    hugepages of each region while fewer than ``budget_pages`` are released. Returns the 4 KiB pages; the
    filler's subrelease (huge_page_subrelease.py) is the caller's next step if that is not enough."""
    released = cache_release(rs, rs_n, counts, n_hp, out, ends, out_n)
    for r in range(regions[NREGIONS]):
        if released >= budget_pages:
            break
        released += region_release_empty(counts, regions, r, budget_pages - released, out, ends, out_n)
    return released
