"""Node.check() and memory.stat: recount everything from the page table and compare with the counters.

The invariants: every page is in exactly one place (a pageblock's count equals the pages that name it: mapped
4 KiB pages, THP folios, PTE tables, boot kernel memory, the compressed swap store); per-row state counts
match the states; swap slots match swapped pages; each memcg's usage equals the footprint of its pages plus
its zswap pool share, summed over its subtree; no counter is negative.
"""

from __future__ import annotations

import math

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from .memcg import Memcg
from .mm import MM
from .pagetable import CACHE, DATA, IS_PRESENT, LAZY, NSTATES, PRESENT_STATES, QUEUED, SWAP, ZERO, uniq


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
    assert (used == phys.used).all(), "pageblock use != pages that live there"
    assert phys.nr_free == phys.total_pages - int(phys.used.sum()), "free pages are not conserved"
    assert (phys.used >= 0).all() and (phys.used <= HPAGE_PAGES).all(), "pageblock count out of range"
    partial = (phys.used > 0) & (phys.used < HPAGE_PAGES) & ~phys.thp
    assert (phys.partial_movable == (partial & (phys.unmov == 0))).all(), "partial movable flags are stale"
    assert (phys.partial_unmovable == (partial & (phys.unmov > 0))).all(), "partial unmovable flags are stale"
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
        expect = int(local[members].sum()) + _local_zswap(mm, m)
        assert m.usage == expect, f"memcg {m.path!r}: usage {m.usage} != charged pages {expect}"
        assert m.swap_usage == int(swap[members].sum()), f"memcg {m.path!r}: swap usage mismatch"
        assert m.usage >= 0 and m.swap_usage >= 0


def _local_zswap(mm: MM, m: Memcg) -> int:
    """zswap pool pages charged to m's subtree."""
    sw = mm.swap
    if sw.kind != "zswap":
        return 0
    return sum(math.ceil(sw.pool_stored.get(d.idx, 0) / sw.ratio) for d in m.subtree())


def memcg_stat(mm: MM, m: Memcg) -> dict[str, int]:
    """memory.stat for m's subtree, sizes in bytes, Linux field names."""
    pt, n = mm.pt, mm.pt.nrows
    rows = np.flatnonzero(np.isin(pt.memcg[:n], [d.idx for d in m.subtree()]))
    c = pt.cnt[rows]
    is_file = c[:, CACHE] > 0
    anon_rows = rows[~is_file]
    anon_fp = np.where(pt.folio[anon_rows] >= 0, HPAGE_PAGES, pt.present(anon_rows))
    active = pt.active[rows]
    anon_plain = c[:, ZERO] + c[:, DATA] + c[:, QUEUED]
    lazy_on_file = not mm.profile.lazyfree_needs_swap
    lazy = c[:, LAZY]
    stat = {
        "anon": int(anon_fp.sum()),
        "file": int(c[:, CACHE].sum()),
        "anon_thp": int(pt.pmd[rows].sum()) * HPAGE_PAGES,
        "pagetables": int(pt.pt[rows].sum()),
        "swap": int(c[:, SWAP].sum()),
        "zswap": _local_zswap(mm, m),
        "active_anon": int(anon_plain[active].sum()),
        "inactive_anon": int(anon_plain[~active].sum()) + (0 if lazy_on_file else int(lazy.sum())),
        "active_file": int(c[active, CACHE].sum()),
        "inactive_file": int(c[~active, CACHE].sum()) + (int(lazy.sum()) if lazy_on_file else 0),
        "lazyfree": int(lazy.sum()),
    }
    out = {k: v * PAGE_SIZE for k, v in stat.items()}
    for counter in ("pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
                    "workingset_refault_anon", "pswpin", "pswpout"):
        out[counter] = mm.memcgs.stat_counter(m, counter)
    return out
