"""madvise(): DONTNEED, FREE, the THP advice, COLD/PAGEOUT, COLLAPSE and the 2015 proposals.

Semantics by profile: docs/kernel.md, docs/linux-rules.md K10/K14; costs follow docs/calibration.md's piecewise
model (per call, per page, INVLPG up to tlb_single_page_flush_ceiling, THP splits). DONTNEED inside a THP
splits the PMD and defers the folio split; a whole PMD frees its block. FREE (4.12+) makes pages lazyfree and
keeps a whole THP intact; a partial range splits the folio at once, unless the lazy_free_split proposal
defers that to reclaim. On linux-4.5 without swap FREE is DONTNEED. SPLITTABLE queues the range and changes
nothing else; UNSPLITTABLE dequeues and zeroes what is still queued. FREE_UNDO re-pins surviving lazyfree
pages and reports the lost ones.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .errors import KernelError
from .huge_memory import defer_split, split_folio, split_pmd
from .khugepaged import khugepaged_register
from .memory import charging, unmap_pages
from .mm import MM, Task
from .mman import MADV
from .pagetable import (
    ADV_HUGEPAGE,
    ADV_NOHUGEPAGE,
    ADV_NONE,
    ADV_STRADDLE,
    DATA,
    LAZY,
    NONE,
    PRESENT_I32,
    QUEUED,
    SWAP,
    ZERO,
    contains_sorted,
    in_rows,
    is_sorted,
    uniq,
    uniq_rows,
)
from .vma import Region
from .vmscan import pageout_range


def whole_rows(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows touched by distinct pages ``flat`` and whether each is wholly covered."""
    return _whole_rows(flat)


@njit
def _whole_rows(flat):
    if not is_sorted(flat):
        flat = np.sort(flat)
    rows = np.empty(flat.shape[0], dtype=np.int64)
    whole = np.empty(flat.shape[0], dtype=np.bool_)
    k, run = -1, 0
    for f in flat:
        r = f // HPAGE_PAGES
        if k < 0 or r != rows[k]:
            if k >= 0:
                whole[k] = run == HPAGE_PAGES
            k += 1
            rows[k], run = r, 0
        run += 1
    if k >= 0:
        whole[k] = run == HPAGE_PAGES
    return rows[: k + 1], whole[: k + 1]


def call_cost(mm: MM, p: Task, ranges: int, pte_pages: int, per_page_s: float, pmds: int = 0) -> float:
    """Cost of ``ranges`` calls covering ``pte_pages`` present PTEs in all (pages spread evenly) and ``pmds``
    whole PMD mappings. Only a call that finds nothing mapped costs the bare syscall floor; one that finds a
    PMD pays the walk and flush base too (calibration: whole-THP DONTNEED 5.65 us, FREE 1.3 us per call,
    of which the PMD work is zap_thp_s or lazyfree_pmd_s)."""
    c = mm.costs
    if ranges == 0:
        return 0.0
    per = pte_pages / ranges
    if per:
        cost = ranges * c.madvise_pages_s(round(per), per_page_s)
    else:
        walked = min(ranges, pmds)
        cost = ranges * c.syscall_s + walked * c.madvise_base_s
    if p.threads > 1:
        cost += ranges * c.remote_shootdown_s
    return cost


def dontneed(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """Zap the pages now; whole PMDs free their block, partial ones split the PMD and defer the folio."""
    pt, c = mm.pt, mm.costs
    rows, whole = whole_rows(flat)
    pmd = pt.pmd[rows]
    partial_thp = rows[pmd & ~whole]
    whole_thp = rows[pmd & whole]
    if len(partial_thp):
        split_pmd(mm, partial_thp)
        defer_split(mm, partial_thp)
    # Pages of whole PMDs are zapped with the PMD, not PTE by PTE.
    pte_pages, mapped = _zap_targets(pt.flat_state, PRESENT_I32, flat, whole_thp)
    pte_pages = int(pte_pages)
    with charging(mm, rows):
        unmap_pages(mm, mapped)
    cost = call_cost(mm, p, ranges, pte_pages, c.zap_page_s, pmds=len(whole_thp))
    return cost + len(whole_thp) * c.zap_thp_s + len(partial_thp) * c.split_pmd_s


def free(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """MADV_FREE: lazyfree (4.12+, or 4.5 with swap) or, on 4.5 without swap, exactly DONTNEED."""
    if mm.profile.lazyfree_needs_swap and not mm.swap.enabled:
        return dontneed(mm, p, flat, ranges)
    pt, c = mm.pt, mm.costs
    rows, whole = whole_rows(flat)
    folio = pt.folio[rows] >= 0
    partial_thp = rows[folio & ~whole]
    cost = 0.0
    if len(partial_thp) and not mm.profile.lazy_free_split:
        cost += len(partial_thp) * (c.split_pmd_s + c.split_folio_s)
        split_folio(mm, partial_thp)
    st = pt.flat_state[flat]
    swapped = flat[st == SWAP]
    if len(swapped):
        with charging(mm, uniq_rows(swapped)):
            unmap_pages(mm, swapped)
    mark = flat[(st == DATA) | (st == ZERO) | (st == QUEUED)]
    pt.set_states(mark, LAZY)
    mm.vmstat["pglazyfree"] += len(mark)
    p.memcg.counters["pglazyfree"] += len(mark)
    on_pmd = pt.pmd[rows] & whole
    pte_pages = int(np.count_nonzero(~in_rows(mark, rows[on_pmd])))
    cost += call_cost(mm, p, ranges, pte_pages, c.lazyfree_page_s, pmds=int(on_pmd.sum()))
    return cost + int(on_pmd.sum()) * c.lazyfree_pmd_s


def splittable(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """MADV_SPLITTABLE: queue present pages on the memcg's list; no zap, no split, no page-table walk."""
    pt = mm.pt
    st = pt.flat_state[flat]
    swapped = flat[st == SWAP]
    if len(swapped):
        with charging(mm, uniq_rows(swapped)):
            unmap_pages(mm, swapped)
    pt.set_states(flat[(st == DATA) | (st == ZERO) | (st == LAZY)], QUEUED)
    return ranges * (mm.costs.syscall_s + mm.costs.madvise_base_s)


def unsplittable(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """MADV_UNSPLITTABLE: dequeue what reclaim left and zero it (no fault, THP kept); the rest refaults."""
    pt, c = mm.pt, mm.costs
    queued = flat[pt.flat_state[flat] == QUEUED]
    pt.set_states(queued, ZERO)
    return ranges * (c.syscall_s + c.madvise_base_s) + len(queued) * c.zero_page_s


def free_undo(mm: MM, p: Task, flat: np.ndarray, npages: np.ndarray) -> tuple[float, np.ndarray]:
    """MADV_FREE_UNDO: lazyfree pages become pinned data again; returns cost and lost pages per range.

    ``flat`` holds each range's pages in call order (``npages`` per range; ranges may overlap): a range's
    lost pages are those of its pages that reclaim discarded.
    """
    pt, c = mm.pt, mm.costs
    st = pt.flat_state[flat]
    lost_before = np.concatenate([[0], np.cumsum(st == NONE)])
    ends = np.cumsum(npages)
    lost = (lost_before[ends] - lost_before[ends - npages]).astype(np.int64)
    lazy = uniq(flat[st == LAZY])
    pt.set_states(lazy, DATA)
    cost = len(npages) * (c.syscall_s + c.madvise_base_s) + len(lazy) * c.ad_bit_update_s
    return cost, lost


def set_thp_advice(mm: MM, region: Region, flat: np.ndarray, advice: MADV) -> float:
    """MADV_HUGEPAGE/NOHUGEPAGE: per vhp; a vhp only partly covered is split between VMAs (no PMD)."""
    pt = mm.pt
    rows, whole = whole_rows(flat)
    value = ADV_HUGEPAGE if advice == MADV.HUGEPAGE else ADV_NOHUGEPAGE
    current = pt.advice[rows]
    pt.advice[rows[whole]] = value
    mixed = rows[~whole & (current != value)]
    pt.advice[mixed] = ADV_STRADDLE
    if advice == MADV.HUGEPAGE:
        khugepaged_register(mm, region)
    return mm.costs.syscall_s + mm.costs.madvise_base_s


def cold(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """MADV_COLD: deactivate the range so reclaim takes it first."""
    rows = uniq_rows(flat)
    mm.pt.active[rows] = False
    mm.pt.atime[rows] = -np.inf
    return ranges * (mm.costs.syscall_s + mm.costs.madvise_base_s)


def pageout(mm: MM, p: Task, flat: np.ndarray, ranges: int) -> float:
    """MADV_PAGEOUT: reclaim the range now (swap anon if a device has room; drop lazyfree)."""
    cost = pageout_range(mm, p, flat)
    return cost + ranges * (mm.costs.syscall_s + mm.costs.madvise_base_s)


def check_advice(mm: MM, advice: object) -> MADV:
    """EINVAL for an advice unknown or not offered by this kernel profile."""
    try:
        advice = MADV(advice)
    except ValueError:
        raise KernelError("EINVAL", f"advice {advice!r} is not a madvise advice") from None
    if not mm.profile.supports(advice):
        raise KernelError("EINVAL", f"MADV_{advice.name} is not supported by profile {mm.profile.name}"
                          + _proposal_hint(advice))
    return advice


def _proposal_hint(advice: MADV) -> str:
    hints = {MADV.SPLITTABLE: "madv_splittable", MADV.UNSPLITTABLE: "madv_splittable",
             MADV.FREE_UNDO: "madv_free_undo"}
    if advice in hints:
        return f" (it needs proposals=['{hints[advice]}'])"
    return ""


__all__ = ["ADV_NONE", "check_advice", "cold", "dontneed", "free", "free_undo", "pageout", "set_thp_advice",
           "splittable", "unsplittable"]


@njit
def _zap_targets(flat_state, present, flat, whole_thp):
    """(present pages outside the rows ``whole_thp`` (sorted), the pages not NONE) of ``flat``."""
    mapped = np.empty(flat.shape[0], dtype=np.int64)
    pte_pages, k = 0, 0
    for f in flat:
        s = flat_state[f]
        if s == NONE:
            continue
        mapped[k] = f
        k += 1
        if present[s]:
            pte_pages += not contains_sorted(whole_thp, f // HPAGE_PAGES)
    return pte_pages, mapped[:k]
