"""khugepaged and MADV_COLLAPSE: collapsing a PTE-mapped 2 MiB range into a THP.

Follows mm/khugepaged.c and kernel-rules K11: every scan_sleep it scans pages_to_scan PTEs (a PMD counts 512)
round-robin over the vhps of registered VMAs, and collapses a vhp whose empty PTEs are <= max_ptes_none and
swapped PTEs <= max_ptes_swap, with at least one page present; it swaps the swapped pages in. A failed
hugepage allocation (thp_collapse_alloc_failed) puts it to sleep for alloc_sleep. The collapse makes all
512 pages resident (empty PTEs become zero-filled subpages), frees the old pages, and holds the mm briefly:
the process stalls for the copy (LKML 2024 collapse timings, calibration MADV_COLLAPSE). MADV_COLLAPSE does
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
from .pagetable import CACHE, DATA, IS_PRESENT, LAZY, NONE, SWAP, ZERO, uniq

if TYPE_CHECKING:
    from .node import Node


def collapsible(node: Node, rows: np.ndarray, *, limits: bool) -> np.ndarray:
    """Mask of rows khugepaged (limits=True) or MADV_COLLAPSE (limits=False) would collapse."""
    pt = node.pt
    c = pt.cnt[rows]
    ok = ~pt.pmd[rows] & (c[:, NONE] < HPAGE_PAGES) & (c[:, CACHE] == 0)
    if limits:
        ok &= (c[:, NONE] <= node.thp.max_ptes_none) & (c[:, SWAP] <= node.thp.max_ptes_swap)
    return ok & vma_allows_thp(node, rows, collapse=not limits)


def collapse(node: Node, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Collapse rows into fresh THPs; returns (collapsed rows, failed rows, seconds of copy work per row)."""
    pt, phys = node.pt, node.phys
    if len(rows) == 0:
        return rows, rows, 0.0
    short = len(rows) - phys.free_blocks
    cost = 0.0
    if short > 0:
        _, cost = direct_compact(node, short)
    k = min(len(rows), phys.free_blocks, max(0, (phys.nr_free - phys.wmark_min) // HPAGE_PAGES))
    done, failed = rows[:k], rows[k:]
    node.vmstat["thp_collapse_alloc_failed"] += len(failed)
    if len(done) == 0:
        return done, failed, cost
    swapped = int(pt.cnt[done, SWAP].sum())
    present = pt.present(done)
    with charging(node, done):
        _replace_with_folio(node, done)
    node.vmstat["thp_collapse_alloc"] += len(done)
    node.vmstat["pswpin"] += swapped
    for m_idx, k_ in zip(*uniq(pt.memcg[done], return_counts=True), strict=True):
        node.memcgs.all[int(m_idx)].counters["thp_collapse_alloc"] += int(k_)
    c = node.costs
    cost += len(done) * c.collapse_base_s + float(present.sum()) * c.collapse_page_s
    cost += node.swap.swapin_cost_s(node, 0, swapped) if swapped else 0.0
    return done, failed, cost


def _replace_with_folio(node: Node, rows: np.ndarray) -> None:
    """Copy the rows' pages into new folios and free the old pages, swap slots and PTE tables."""
    pt = node.pt
    flat = pt.pages_of(rows)
    st = pt.flat_state[flat]
    blocks = pt.flat_block[flat]
    loose = IS_PRESENT[st] & (blocks != pt.folio[flat // HPAGE_PAGES])
    node.phys.free_pages(blocks[loose])
    swapped = flat[st == SWAP]
    if len(swapped):
        node.swap.release(node, swapped)
    old = rows[pt.folio[rows] >= 0]
    pt.fmapped[old] = 0
    free_folios(node, old)
    free_page_tables(node, rows)
    new = np.where(st == NONE, ZERO, np.where((st == SWAP) | (st == LAZY), DATA, st))
    pt.set_states(flat, new)
    fresh = node.phys.alloc_blocks(len(rows))
    pt.folio[rows] = fresh
    pt.fmapped[rows] = HPAGE_PAGES
    pt.block[rows] = fresh[:, None]
    pt.pmd[rows] = True
    pt.deferred[rows] = False


def scan(node: Node) -> float:
    """One khugepaged wake-up; returns khugepaged's CPU seconds. Schedules its next wake-up."""
    rows = node.khugepaged_rows()
    per_wake = max(1, node.thp.pages_to_scan // HPAGE_PAGES)
    node.next_khugepaged = node.time + node.thp.scan_sleep
    if len(rows) == 0:
        return 0.0
    start = int(np.searchsorted(rows, node.khugepaged_cursor))
    picked = rows[start:start + per_wake]
    if len(picked) < per_wake:           # end of the list: a full scan is done, wrap around
        node.vmstat["khugepaged_full_scans"] += 1
        picked = np.concatenate([picked, rows[: min(per_wake - len(picked), start)]])
    node.khugepaged_cursor = int(picked[-1]) + 1
    cand = np.sort(picked[collapsible(node, picked, limits=True)])
    done, failed, cost = collapse(node, cand)
    _stall_owners(node, done, cost)
    if len(failed):
        node.next_khugepaged = node.time + node.thp.alloc_sleep
    return cost


def _stall_owners(node: Node, rows: np.ndarray, cost: float) -> None:
    """The collapse holds the mm: each owner stalls for its share of the copy work."""
    if len(rows) == 0:
        return
    owners = node.pt.region[rows]
    for r_id, k in zip(*uniq(owners, return_counts=True), strict=True):
        p = node.regions[int(r_id)].proc
        share = cost * k / len(rows)
        p.stall(share, "collapse")
