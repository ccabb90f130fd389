"""khugepaged and MADV_COLLAPSE: collapsing a PTE-mapped 2 MiB range into a THP.

Follows mm/khugepaged.c and docs/linux-rules.md K11: every scan_sleep it scans pages_to_scan PTEs (a PMD counts 512)
round-robin over the vhps of registered VMAs, and collapses a vhp whose empty PTEs are <= max_ptes_none and
swapped PTEs <= max_ptes_swap, with at least one page present; it swaps the swapped pages in. A failed
hugepage allocation (thp_collapse_alloc_failed) puts it to sleep for alloc_sleep. The collapse makes all
512 pages resident (empty PTEs become zero-filled subpages), frees the old pages, and holds the mm briefly:
the process stalls for the copy (docs/literature.md section 5, docs/calibration.md 5). MADV_COLLAPSE does
the same synchronously for the caller, ignoring max_ptes_* and `enabled` (K11), with direct compaction.
Left out: max_ptes_shared (no fork), file/shmem collapse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..units import HPAGE_PAGES
from .compaction import direct_compact
from .huge_memory import vma_allows_thp
from .memory import charging, free_folios, free_page_tables
from .mm import MM
from .pagetable import CACHE, DATA, IS_PRESENT, LAZY, NONE, SWAP, ZERO, uniq

if TYPE_CHECKING:   # vma.py registers its mappings here
    from .vma import Region


def khugepaged_register(mm: MM, region: Region) -> None:
    """khugepaged_enter_vma(): MADV_HUGEPAGE (or enabled=always) puts the mm on khugepaged's list."""
    mm.khugepaged_regions.add(region.id)


def khugepaged_exit(mm: MM, region: Region) -> None:
    """khugepaged_exit(): an unmapped VMA leaves khugepaged's list."""
    mm.khugepaged_regions.discard(region.id)


def khugepaged_rows(mm: MM) -> np.ndarray:
    """Rows khugepaged walks: full vhps of registered VMAs that THP policy allows, in address order."""
    if mm.thp.enabled == "never" or not mm.khugepaged_regions:
        return np.empty(0, dtype=np.int64)
    rows = np.concatenate([mm.regions[r].rows for r in sorted(mm.khugepaged_regions)])
    return np.sort(rows[vma_allows_thp(mm, rows)])


def collapsible(mm: MM, rows: np.ndarray, *, limits: bool) -> np.ndarray:
    """Mask of rows khugepaged (limits=True) or MADV_COLLAPSE (limits=False) would collapse."""
    pt = mm.pt
    c = pt.cnt[rows]
    ok = ~pt.pmd[rows] & (c[:, NONE] < HPAGE_PAGES) & (c[:, CACHE] == 0)
    if limits:
        ok &= (c[:, NONE] <= mm.thp.max_ptes_none) & (c[:, SWAP] <= mm.thp.max_ptes_swap)
    return ok & vma_allows_thp(mm, rows, collapse=not limits)


def collapse(mm: MM, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Collapse rows into fresh THPs; returns (collapsed rows, failed rows, seconds of copy work per row)."""
    pt, phys = mm.pt, mm.phys
    if len(rows) == 0:
        return rows, rows, 0.0
    short = len(rows) - phys.free_blocks
    cost = 0.0
    if short > 0:
        _, cost = direct_compact(mm, short)
    k = min(len(rows), phys.free_blocks, max(0, (phys.nr_free - phys.wmark_min) // HPAGE_PAGES))
    done, failed = rows[:k], rows[k:]
    mm.vmstat["thp_collapse_alloc_failed"] += len(failed)
    if len(done) == 0:
        return done, failed, cost
    swapped_per_row = pt.cnt[done, SWAP].astype(np.int64)
    swapped = int(swapped_per_row.sum())
    present = pt.present(done)
    with charging(mm, done):
        _replace_with_folio(mm, done)
    mm.vmstat["thp_collapse_alloc"] += len(done)
    mm.vmstat["pswpin"] += swapped
    for m_idx, k_ in zip(*uniq(pt.memcg[done], return_counts=True), strict=True):
        mm.memcgs.all[int(m_idx)].counters["thp_collapse_alloc"] += int(k_)
    if swapped:   # swap_read_folio() counts PSWPIN per memcg too (count_memcg_folio_events)
        _count_memcg_rows(mm, done, swapped_per_row, "pswpin")
    c = mm.costs
    cost += len(done) * c.collapse_base_s + float(present.sum()) * c.collapse_page_s
    cost += mm.swap.swapin_cost_s(mm, 0, swapped) if swapped else 0.0
    return done, failed, cost


def _count_memcg_rows(mm: MM, rows: np.ndarray, counts: np.ndarray, counter: str) -> None:
    """Add ``counts[i]`` events to the memcg charged for ``rows[i]``."""
    memcgs = mm.pt.memcg[rows]
    for m_idx in uniq(memcgs):
        mm.memcgs.all[int(m_idx)].counters[counter] += int(counts[memcgs == m_idx].sum())


def _replace_with_folio(mm: MM, rows: np.ndarray) -> None:
    """Copy the rows' pages into new folios and free the old pages, swap slots and PTE tables."""
    pt = mm.pt
    flat = pt.pages_of(rows)
    st = pt.flat_state[flat]
    blocks = pt.flat_block[flat]
    loose = IS_PRESENT[st] & (blocks != pt.folio[flat // HPAGE_PAGES])
    mm.phys.free_pages(blocks[loose])
    swapped = flat[st == SWAP]
    if len(swapped):
        mm.swap.release(mm, swapped)
    old = rows[pt.folio[rows] >= 0]
    pt.fmapped[old] = 0
    free_folios(mm, old)
    free_page_tables(mm, rows)
    new = np.where(st == NONE, ZERO, np.where((st == SWAP) | (st == LAZY), DATA, st))
    pt.set_states(flat, new)
    fresh = mm.phys.alloc_blocks(len(rows))
    pt.folio[rows] = fresh
    pt.fmapped[rows] = HPAGE_PAGES
    pt.block[rows] = fresh[:, None]
    pt.pmd[rows] = True
    pt.deferred[rows] = False


def scan(mm: MM) -> float:
    """One khugepaged wake-up; returns khugepaged's CPU seconds. Schedules its next wake-up."""
    rows = khugepaged_rows(mm)
    per_wake = max(1, mm.thp.pages_to_scan // HPAGE_PAGES)
    mm.next_khugepaged = mm.time + mm.thp.scan_sleep
    if len(rows) == 0:
        return 0.0
    start = int(np.searchsorted(rows, mm.khugepaged_cursor))
    picked = rows[start:start + per_wake]
    if len(picked) < per_wake:           # end of the list: a full scan is done, wrap around
        mm.vmstat["khugepaged_full_scans"] += 1
        picked = np.concatenate([picked, rows[: min(per_wake - len(picked), start)]])
    mm.khugepaged_cursor = int(picked[-1]) + 1
    cand = np.sort(picked[collapsible(mm, picked, limits=True)])
    done, failed, cost = collapse(mm, cand)
    _stall_owners(mm, done, cost)
    if len(failed):
        mm.next_khugepaged = mm.time + mm.thp.alloc_sleep
    return cost


def _stall_owners(mm: MM, rows: np.ndarray, cost: float) -> None:
    """The collapse holds the mm: each owner stalls for its share of the copy work."""
    if len(rows) == 0:
        return
    owners = mm.pt.region[rows]
    for r_id, k in zip(*uniq(owners, return_counts=True), strict=True):
        p = mm.regions[int(r_id)].proc
        share = cost * k / len(rows)
        p.stall(share, "collapse")
