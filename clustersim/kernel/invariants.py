"""Node.check(): recount everything from the page table and compare with the counters.

The invariants: every page is in exactly one place (a pageblock's count equals the pages that name it: mapped
4 KiB pages, THP folios, PTE tables, boot kernel memory, the compressed swap store); per-row state counts
match the states; swap slots match swapped pages; each memcg's usage equals the footprint of its pages plus
its zswap pool share, summed over its subtree; no counter is negative.
"""

from __future__ import annotations

import numpy as np

from ..units import HPAGE_PAGES
from .memcg import local_zswap
from .mm import MM
from .page_alloc import MOVABLE, UNMOVABLE
from .pagetable import IS_PRESENT, NSTATES, PRESENT_STATES, SWAP, uniq
from .slab import all_blocks


def check_node(mm: MM) -> None:
    _check_rows(mm)
    _check_blocks(mm)
    _check_charges(mm)
    assert mm.swap.used == int(mm.pt.cnt[: mm.pt.nrows, SWAP].sum()), "swap slots != swapped pages"
    assert 0 <= mm.swap.used <= max(mm.swap.capacity, 0), "swap usage outside the device"
    assert all(v >= 0 for v in mm.vmstat.values()), "a vmstat counter is negative"


def _check_rows(mm: MM) -> None:
    pt, n = mm.pt, mm.pt.nrows
    state = pt.state[:n]
    recount = np.stack([(state == s).sum(axis=1) for s in range(NSTATES)], axis=1)
    assert (recount == pt.cnt[:n]).all(), "per-row state counts do not match the page states"
    assert (pt.npres[:n] == recount[:, list(PRESENT_STATES)].sum(axis=1)).all(), "present count per row is off"
    folio = pt.folio[:n] >= 0
    assert not (pt.pmd[:n] & ~folio).any(), "a PMD maps no folio"
    assert not (pt.pmd[:n] & pt.pt[:n]).any(), "a PMD-mapped vhp also has a PTE table"
    assert not (pt.deferred[:n] & (~folio | pt.pmd[:n])).any(), "deferred split queue holds a PMD or no folio"
    present = IS_PRESENT[state]
    blocks = pt.block[:n]
    assert (blocks[present] >= 0).all(), "a present page has no pageblock"
    assert (blocks[~present] == -1).all(), "a page that is not present names a pageblock"
    of_folio = present & (blocks == pt.folio[:n][:, None])
    assert (of_folio.sum(axis=1) == pt.fmapped[:n]).all(), "mapped folio subpages != fmapped"


def _check_blocks(mm: MM) -> None:
    pt, n, phys = mm.pt, mm.pt.nrows, mm.phys
    loose = IS_PRESENT[pt.state[:n]] & (pt.block[:n] != pt.folio[:n][:, None])
    used = mm.boot_used.astype(np.int64).copy()
    used += np.bincount(pt.block[:n][loose], minlength=phys.nblocks)
    folio_blocks = pt.folio[:n][pt.folio[:n] >= 0]
    assert len(uniq(folio_blocks)) == len(folio_blocks), "two folios share a pageblock"
    assert phys.thp[folio_blocks].all() and phys.thp.sum() == len(folio_blocks), "THP blocks != folios"
    used[folio_blocks] += HPAGE_PAGES
    used += np.bincount(pt.pt_block[:n][pt.pt[:n]], minlength=phys.nblocks)
    used += np.bincount(mm.swap.ram_blocks, minlength=phys.nblocks)
    used += np.bincount(all_blocks(mm), minlength=phys.nblocks)
    assert (used == phys.used).all(), "pageblock use != pages that live there"
    assert phys.nr_free == phys.total_pages - int(phys.used.sum()), "free pages are not conserved"
    assert (phys.used >= 0).all() and (phys.used <= HPAGE_PAGES).all(), "pageblock count out of range"
    partial = (phys.used > 0) & (phys.used < HPAGE_PAGES) & ~phys.thp
    assert (phys.partial_movable == (partial & (phys.mt == MOVABLE))).all(), "partial movable flags are stale"
    assert (phys.partial_unmovable == (partial & (phys.mt == UNMOVABLE))).all(), "partial unmovable flags are stale"
    assert phys.nfree_blocks == int((phys.used == 0).sum()), "free block count is stale"
    assert not (phys.used[:phys.free_hint] == 0).any(), "a free block lies below free_hint"
    assert not phys.partial_movable[:phys.partial_hint[0]].any(), "a partly used block lies below its hint"
    assert not phys.partial_unmovable[:phys.partial_hint[1]].any(), "a partly used block lies below its hint"
    assert phys.partial_hint[2] == phys.partial_movable.sum(), "partly used movable block count is stale"
    assert phys.partial_hint[3] == phys.partial_unmovable.sum(), "partly used unmovable block count is stale"
    assert len(mm.swap.ram_blocks) == mm.swap.pool_pages(), "compressed store size is off"


def _check_charges(mm: MM) -> None:
    pt, n = mm.pt, mm.pt.nrows
    nm = len(mm.memcgs.all)
    live = pt.memcg[:n] >= 0
    local = np.bincount(pt.memcg[:n][live], weights=pt.footprint(slice(0, n))[live], minlength=nm)
    swap = np.bincount(pt.memcg[:n][live], weights=pt.cnt[:n, SWAP][live], minlength=nm)
    for m in mm.memcgs.all:
        members = [d.idx for d in m.subtree()]
        expect = int(local[members].sum()) + local_zswap(mm, m)
        assert m.usage == expect, f"memcg {m.path!r}: usage {m.usage} != charged pages {expect}"
        assert m.swap_usage == int(swap[members].sum()), f"memcg {m.path!r}: swap usage mismatch"
        assert m.usage >= 0 and m.swap_usage >= 0
