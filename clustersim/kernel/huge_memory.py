"""Transparent huge pages: fault eligibility, PMD and folio splits, the deferred-split and underused shrinkers.

Follows mm/huge_memory.c and Documentation/admin-guide/mm/transhuge.rst (Linux 6.12). A partial unmap splits
only the PMD and queues the folio for deferred split; the folio keeps its pageblock and charge until the
shrinker splits it under memory pressure. Since 6.12 the same queue holds every new THP, and with
shrink_underused a THP with more than max_ptes_none zero-filled subpages is split under reclaim and its zero
subpages are freed (remapped to the shared zero page). Eligibility follows docs/linux-rules.md K9.
"""

from __future__ import annotations

import numpy as np

from ..units import HPAGE_PAGES
from .memory import charging, ensure_page_tables, unmap_pages
from .mm import MM
from .pagetable import ADV_HUGEPAGE, ADV_NONE, ZERO, uniq


def vma_allows_thp(mm: MM, rows: np.ndarray, *, collapse: bool = False) -> np.ndarray:
    """K9: THP allowed per vhp by the global `enabled` and the VMA advice (MADV_COLLAPSE ignores `enabled`).

    Vhps not wholly inside their VMA, under MADV_NOHUGEPAGE, split between VMAs, or of a process with
    PR_SET_THP_DISABLE never get a PMD.
    """
    pt = mm.pt
    adv = pt.advice[rows]
    ok = pt.full[rows] & ((adv == ADV_NONE) | (adv == ADV_HUGEPAGE))
    ok &= ~thp_disabled_rows(mm, rows, collapse=collapse)
    if collapse:
        return ok
    enabled = mm.thp.enabled
    if enabled == "never":
        return np.zeros(len(rows), dtype=bool)
    if enabled == "madvise":
        ok &= adv == ADV_HUGEPAGE
    return ok


def thp_disabled_rows(mm: MM, rows: np.ndarray, *, collapse: bool = False) -> np.ndarray:
    """PR_SET_THP_DISABLE of each row's owner (vma_thp_disabled()): True disables every VMA;
    "except_advised" spares MADV_HUGEPAGE VMAs and a forced collapse (MADV_COLLAPSE)."""
    out = np.zeros(len(rows), dtype=bool)
    if not mm.thp_disabled_pids:
        return out
    owners = [r for r in mm.regions.values() if r.proc is not None and r.proc.thp_disable is not False]
    if not owners:
        return out
    region = mm.pt.region[rows]
    out = np.isin(region, [r.id for r in owners if r.proc.thp_disable is True])
    if not collapse:
        advised = mm.pt.advice[rows] == ADV_HUGEPAGE
        out |= np.isin(region, [r.id for r in owners if r.proc.thp_disable == "except_advised"]) & ~advised
    return out


def split_pmd(mm: MM, rows: np.ndarray) -> None:
    """Replace the PMD mapping of THP rows by PTEs; the folio stays whole (thp_split_pmd)."""
    pt = mm.pt
    rows = rows[pt.pmd[rows]]
    if len(rows) == 0:
        return
    with charging(mm, rows):
        ensure_page_tables(mm, rows)
        pt.pmd[rows] = False
    mm.vmstat["thp_split_pmd"] += len(rows)
    count_task_events(mm, rows, "thp_split_pmd")


def count_task_events(mm: MM, rows: np.ndarray, counter: str) -> None:
    """Add one ``counter`` event per row to the row's owner task (``vm_events``).

    Linux counts thp_split_pmd and thp_split_page only in /proc/vmstat (count_vm_event()); memory.stat has no
    such entry. The model keeps each task's share too, so that a tenant's splits are its own. Page-cache rows
    have no owner task and count only node-wide.
    """
    if len(rows) == 0:
        return
    for r_id, k in zip(*uniq(mm.pt.region[rows], return_counts=True), strict=True):
        region = mm.regions.get(int(r_id))
        if region is not None and region.proc is not None:
            region.proc.vm_events[counter] += int(k)


def defer_split(mm: MM, rows: np.ndarray) -> None:
    """Queue partially unmapped folios for the deferred-split shrinker (thp_deferred_split_page)."""
    pt = mm.pt
    new = rows[(pt.folio[rows] >= 0) & ~pt.deferred[rows]]
    pt.deferred[new] = True
    mm.vmstat["thp_deferred_split_page"] += len(new)


def split_folio(mm: MM, rows: np.ndarray) -> None:
    """split_huge_page(): THP folios become 4 KiB pages in their block; unmapped subpages are freed."""
    pt = mm.pt
    rows = rows[pt.folio[rows] >= 0]
    if len(rows) == 0:
        return
    split_pmd(mm, rows)
    with charging(mm, rows):
        mm.phys.split_thp_block(pt.folio[rows], HPAGE_PAGES - pt.fmapped[rows])
        pt.fmapped[rows] = 0
        pt.folio[rows] = -1
        pt.deferred[rows] = False
    mm.vmstat["thp_split_page"] += len(rows)
    count_task_events(mm, rows, "thp_split_page")


def shrink_deferred(mm: MM, rows: np.ndarray, limit: int) -> int:
    """deferred_split_scan(): split up to ``limit`` queued folios, oldest first; returns pages freed."""
    pt = mm.pt
    queued = rows[pt.deferred[rows] & (pt.folio[rows] >= 0)]
    if len(queued) == 0 or limit <= 0:
        return 0
    queued = queued[np.argsort(pt.atime[queued], kind="stable")][:limit]
    before = int(pt.footprint(queued).sum())
    split_folio(mm, queued)
    return before - int(pt.footprint(queued).sum())


def underused_rows(mm: MM, rows: np.ndarray) -> np.ndarray:
    """THP folios with more than max_ptes_none zero-filled subpages (thp_underused, 6.12)."""
    pt = mm.pt
    return rows[(pt.folio[rows] >= 0) & (pt.cnt[rows, ZERO] > underused_limit(mm))]


def underused_limit(mm: MM) -> int:
    """Zero-filled subpages a folio may hold before the underused shrinker splits it: max_ptes_none, or
    all of them (no folio is underused) where the shrinker is off or the kernel predates it."""
    if not (mm.profile.shrink_underused and mm.thp.shrink_underused):
        return HPAGE_PAGES
    return mm.thp.max_ptes_none


def shrink_underused(mm: MM, rows: np.ndarray, limit: int) -> int:
    """Split underused THPs and free their zero-filled subpages; returns pages freed."""
    pt = mm.pt
    cand = underused_rows(mm, rows)
    if len(cand) == 0 or limit <= 0:
        return 0
    cand = cand[np.argsort(pt.atime[cand], kind="stable")][:limit]
    before = int(pt.footprint(cand).sum())
    split_folio(mm, cand)
    zeros = pt.pages_in_state(cand, (ZERO,))
    with charging(mm, cand):
        unmap_pages(mm, zeros)
    mm.vmstat["thp_underused_split_page"] += len(cand)
    return before - int(pt.footprint(cand).sum())
