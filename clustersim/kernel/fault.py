"""Write faults: the THP fault, 4 KiB anonymous faults, swap-in, and reuse of lazyfree pages.

Follows mm/memory.c handle_mm_fault(): a vhp whose PMD is empty (no PTE table yet) and whose VMA allows THP
gets a THP fault (do_huge_pmd_anonymous_page): one pageblock, 512 pages charged, subpages not written hold
zeros. It needs a free pageblock; `defrag` decides whether the fault may compact directly (stalling) or
falls back to 4 KiB pages at once (thp_fault_fallback). A vhp that already has a PTE table takes 4 KiB
faults until khugepaged collapses it. A swapped page is a major fault (swap-in). A lazyfree page that
reclaim did not discard is reused by the write with no fault: only its dirty bit is set.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .compaction import direct_compact
from .huge_memory import vma_allows_thp
from .memcg import INF
from .memory import charging, ensure_page_tables, lru_add_pages, lru_add_ranges, map_pages
from .mm import MM, Task
from .pagetable import (
    ADV_HUGEPAGE,
    DATA,
    LAZY,
    NONE,
    NSTATES,
    SWAP,
    ZERO,
    count_states,
    disjoint_ascending,
    expand_ranges,
    in_rows,
    in_sorted,
    pages_in,
    uniq,
    uniq_rows,
)
from .slowpath import over_high, reserve
from .vmscan import memcg_reclaim


def touch(mm: MM, p: Task, flat: np.ndarray) -> float:
    """Write the pages at ``flat`` (sorted, distinct); returns the seconds the task spent."""
    if not p.alive or len(flat) == 0:
        return 0.0
    # One count of the states instead of a mask per state: most writes find no lazyfree, zero-filled or
    # swapped page at all, and their branches are skipped without scanning the pages again.
    return _write(mm, p, flat, count_states(mm.pt.flat_state, flat))


def touch_ranges(mm: MM, p: Task, first: np.ndarray, n: np.ndarray) -> float:
    """touch() of the pages of ranges given as first flat page and page count (as expand_ranges takes them).

    Disjoint ranges, as a batch of allocator spans is, are read in place in address order: one compiled pass
    counts their states and lists the pages to fault, and the recency stamp is per range, so the batch's
    pages are never listed one by one. Overlapping ranges are expanded (and merged) first.
    """
    if not p.alive:
        return 0.0
    pt = mm.pt
    first, n, disjoint, nstate, need, rows = _scan_ranges(pt.flat_state, first, n)
    if not disjoint:
        return touch(mm, p, expand_ranges(first, n))
    total = int(nstate.sum())
    if total == 0:
        return 0.0
    cost = total * mm.costs.write_page_s
    if nstate[LAZY]:
        cost += _reuse_lazy(mm, _ranges_in(pt.flat_state, first, n, LAZY))
    if nstate[ZERO]:
        pt.set_states(_ranges_in(pt.flat_state, first, n, ZERO), DATA)
    if len(need):
        cost += _fault(mm, p, need, swapped=bool(nstate[SWAP]), rows=rows)
    lru_add_ranges(mm, first, n)
    return cost


def _write(mm: MM, p: Task, flat: np.ndarray, nstate: np.ndarray) -> float:
    """touch() of ``flat`` whose pages in each state are ``nstate`` (count_states)."""
    pt = mm.pt
    cost = len(flat) * mm.costs.write_page_s
    if nstate[LAZY]:
        cost += _reuse_lazy(mm, pages_in(pt.flat_state, flat, LAZY, LAZY))
    if nstate[ZERO]:
        pt.set_states(pages_in(pt.flat_state, flat, ZERO, ZERO), DATA)
    swapped = bool(nstate[SWAP])
    if nstate[NONE] + nstate[SWAP] == len(flat):
        cost += _fault(mm, p, flat, swapped=swapped)
    elif nstate[NONE] or swapped:
        cost += _fault(mm, p, pages_in(pt.flat_state, flat, NONE, SWAP if swapped else NONE), swapped=swapped)
    lru_add_pages(mm, flat)
    return cost


@njit
def _scan_ranges(flat_state, first, n):
    """The ranges in address order (first, n), whether they are disjoint, and when they are, the pages per
    state, the NONE and SWAP pages in order and their sorted distinct rows (uniq_rows of them); overlapping
    ranges are not read."""
    counts = np.zeros(NSTATES, dtype=np.int64)
    if not disjoint_ascending(first, n):
        order = np.argsort(first, kind="mergesort")
        first, n = first[order], n[order]
        if not disjoint_ascending(first, n):
            return first, n, False, counts, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    need = np.empty(n.sum(), dtype=np.int64)
    rows = np.empty(n.sum() // HPAGE_PAGES + 2 * first.shape[0], dtype=np.int64)   # <= pages // 512 + 2
    k = m = 0                                                                      # rows per range
    for i in range(first.shape[0]):
        for f in range(first[i], first[i] + n[i]):
            s = flat_state[f]
            counts[s] += 1
            if s in (NONE, SWAP):
                need[k] = f
                k += 1
                r = f // HPAGE_PAGES
                if m == 0 or rows[m - 1] != r:
                    rows[m] = r
                    m += 1
    return first, n, True, counts, need[:k], rows[:m]


@njit
def _ranges_in(flat_state, first, n, state):
    """The pages of disjoint ascending ranges that are in ``state``, in order."""
    out = np.empty(n.sum(), dtype=np.int64)
    k = 0
    for i in range(first.shape[0]):
        for f in range(first[i], first[i] + n[i]):
            if flat_state[f] == state:
                out[k] = f
                k += 1
    return out[:k]


def _reuse_lazy(mm: MM, lazy: np.ndarray) -> float:
    """A write to a surviving lazyfree page: set the dirty bit per PTE, or once per PMD for a THP."""
    pt = mm.pt
    pt.set_states(lazy, DATA)
    rows = lazy // HPAGE_PAGES
    on_pmd = pt.pmd[rows]
    updates = int(np.count_nonzero(~on_pmd)) + len(uniq(rows[on_pmd]))
    return updates * mm.costs.ad_bit_update_s


def _fault(mm: MM, p: Task, need: np.ndarray, *, swapped: bool, rows: np.ndarray | None = None) -> float:
    """Fault in ``need`` (sorted NONE/SWAP pages; ``swapped`` whether any is SWAP; ``rows`` their
    uniq_rows if the caller has them). Only present pages change state under reclaim, so these pages keep
    their states throughout."""
    pt = mm.pt
    if rows is None:
        rows, unmapped = _rows_to_fault(pt.cnt, need)
    else:
        unmapped = _unmapped_rows(pt.cnt, rows)
    cost = 0.0
    cand = _thp_candidates(mm, unmapped)
    if len(cand):
        got, need, c = _thp_faults(mm, p, cand, need)
        cost += c
        if len(got):
            rows = rows[~in_sorted(rows, got)]
    if len(need) and p.alive:
        cost += _small_faults(mm, p, need, rows, swapped)
    return cost


@njit
def _rows_to_fault(cnt, need):
    """Sorted distinct rows of pages ``need`` (as uniq_rows), and those of them that are wholly unmapped (the
    only ones that can take a THP fault; most faults land in rows already in use)."""
    rows = uniq_rows(need)
    return rows, _unmapped_rows(cnt, rows)


@njit
def _unmapped_rows(cnt, rows):
    """The ``rows`` that are wholly unmapped, in order."""
    unmapped = np.empty(rows.shape[0], dtype=np.int64)
    k = 0
    for r in rows:
        if cnt[r, NONE] == HPAGE_PAGES:
            unmapped[k] = r
            k += 1
    return unmapped[:k]


def _thp_candidates(mm: MM, rows: np.ndarray) -> np.ndarray:
    """Of wholly unmapped ``rows``, those whose PMD is empty and whose VMA allows a THP at fault time (K9)."""
    pt = mm.pt
    if len(rows) == 0:
        return rows
    rows = rows[~pt.pmd[rows] & (pt.folio[rows] < 0) & ~pt.pt[rows]]
    return rows[vma_allows_thp(mm, rows)]


def _direct_allowed(mm: MM, rows: np.ndarray) -> np.ndarray:
    """transhuge.rst `defrag`: which faults may reclaim and compact directly."""
    defrag = mm.thp.defrag
    madvised = mm.pt.advice[rows] == ADV_HUGEPAGE
    if defrag == "always":
        return np.ones(len(rows), dtype=bool)
    if defrag in ("madvise", "defer+madvise"):
        return madvised
    return np.zeros(len(rows), dtype=bool)


def _thp_faults(mm: MM, p: Task, cand: np.ndarray, need: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Give THPs to as many candidate rows as blocks and the memcg allow; the rest fall back to 4 KiB.
    Returns (the rows that got one, the pages of ``need`` left to fault 4 KiB, seconds)."""
    phys, cost = mm.phys, 0.0
    direct = _direct_allowed(mm, cand)
    short = len(cand) - phys.free_blocks
    if short > 0 and direct.any():
        _, c = direct_compact(mm, min(short, int(direct.sum())))
        cost += c
        p.stall(c, "compaction")
    fit = _thp_charge_room(mm, p, len(cand))
    if fit < int(direct.sum()):
        fit, c = _thp_charge_reclaim(mm, p, int(direct.sum()), fit)
        cost += c
        p.stall(c, "reclaim")
    room = phys.free_blocks
    order = np.concatenate([cand[direct], cand[~direct]])   # compacted blocks go to direct faults first
    got = np.sort(order[: min(fit, room)])
    mm.vmstat["thp_fault_fallback"] += len(cand) - len(got)
    if len(cand) - len(got) and fit < len(cand):
        mm.vmstat["thp_fault_fallback_charge"] += len(cand) - max(len(got), fit)
    if len(got) == 0:
        return got, need, cost
    pt = mm.pt
    with charging(mm, got):
        blocks = phys.alloc_blocks(len(got))
        pt.folio[got] = blocks
        pt.fmapped[got] = HPAGE_PAGES
        pt.block[got] = blocks[:, None]
        pt.pmd[got] = True
        pt.fill_rows(got, NONE, ZERO)
        on_thp = in_rows(need, got)
        pt.set_states(need[on_thp], DATA)   # the faulting writes land on the new THPs
    pt.active[got] = False
    mm.vmstat["thp_fault_alloc"] += len(got)
    p.memcg.counters["thp_fault_alloc"] += len(got)
    p.faults_thp += len(got)
    cost += len(got) * mm.costs.fault_thp_s
    cost += _after_charge(mm, p, len(got) * HPAGE_PAGES)
    return got, need[~on_thp], cost


def _thp_charge_reclaim(mm: MM, p: Task, k: int, fit: int) -> tuple[int, float]:
    """try_charge() of ``k`` THPs whose gfp allows direct reclaim (GFP_TRANSHUGE under `defrag`).

    Each THP charge over memory.max counts a `max` event and reclaims from the memcg over its limit; it
    carries __GFP_NORETRY, so when the 512 pages still do not fit it fails without OOM and the fault falls
    back to 4 KiB (docs/calibration.md scenario 6: 73 limit hits, every new 2 MiB a THP). The reclaims of the
    ``k - fit`` charges are done as one pass over the same LRU order. Returns (THPs that fit, seconds).
    """
    over = mm.memcgs.over_max(p.memcg, (k - fit) * HPAGE_PAGES)
    if over is None:
        return fit, 0.0
    over.events_local["max"] += k - fit
    short = (k - fit) * HPAGE_PAGES - max(0, int(over.max - over.usage) - fit * HPAGE_PAGES)
    sc = memcg_reclaim(mm, over, short)
    return _thp_charge_room(mm, p, k), sc.cost_s


def _thp_charge_room(mm: MM, p: Task, k: int) -> int:
    """How many 512-page charges fit now under every memory.max and above the min watermark."""
    room = (mm.phys.nr_free - mm.phys.wmark_min) // HPAGE_PAGES
    for a in p.memcg.ancestors():
        if a.max != INF:
            room = min(room, int(a.max - a.usage) // HPAGE_PAGES)
    return int(max(0, min(k, room)))


def _small_faults(mm: MM, p: Task, need: np.ndarray, rows: np.ndarray, swapped: bool) -> float:
    """4 KiB faults in chunks that fit after reclaim; swapped pages are swapped in (major faults)."""
    cost, pt, start = 0.0, mm.pt, 0
    while start < len(need) and p.alive:
        remaining = need[start:]
        if start:
            rows = uniq_rows(remaining)
        new_tables = int(np.count_nonzero(~pt.pt[rows]))
        allowed, stall = reserve(mm, p, len(remaining) + new_tables)
        cost += stall
        p.stall(stall, "reclaim")
        if allowed <= 0:
            break
        if allowed >= len(remaining) + new_tables:   # all of it fits: no prefix to search for
            chunk, chunk_rows = remaining, rows
        else:
            chunk = _fitting_prefix(mm, remaining, allowed)
            chunk_rows = uniq_rows(chunk)
        if len(chunk) == 0:
            break
        cost += _map_chunk(mm, p, chunk, chunk_rows, swapped)
        start += len(chunk)
    return cost


def _fitting_prefix(mm: MM, pages: np.ndarray, allowed: int) -> np.ndarray:
    """The longest prefix of pages whose new pages plus new PTE tables fit in ``allowed``."""
    rows = pages // HPAGE_PAGES
    first_in_row = np.ones(len(pages), dtype=bool)
    first_in_row[1:] = rows[1:] != rows[:-1]
    extra = first_in_row & ~mm.pt.pt[rows]
    total = np.cumsum(1 + extra.astype(np.int64))
    return pages[: int(np.searchsorted(total, allowed, side="right"))]


def _map_chunk(mm: MM, p: Task, chunk: np.ndarray, rows: np.ndarray, swapped: bool) -> float:
    pt = mm.pt
    swapped = chunk[pt.flat_state[chunk] == SWAP] if swapped else chunk[:0]
    cost = 0.0
    if len(swapped):
        swapin = mm.swap.swapin_cost_s(mm, p.memcg.idx, len(swapped))
        cost += swapin
        p.stall(swapin, "swapin")
        mm.vmstat["pswpin"] += len(swapped)
        mm.vmstat["workingset_refault_anon"] += len(swapped)
        p.memcg.counters["pswpin"] += len(swapped)
        p.memcg.counters["workingset_refault_anon"] += len(swapped)
        p.faults_major += len(swapped)
    with charging(mm, rows):
        ensure_page_tables(mm, rows)
        blocks = mm.phys.alloc_pages(len(chunk))
        assert len(blocks) == len(chunk), "reserve() promised room that was not there"
        map_pages(mm, chunk, DATA, blocks, all_none=len(swapped) == 0)
    fresh = len(chunk) - len(swapped)
    p.faults_4k += fresh
    cost += fresh * mm.costs.fault_4k_s + len(swapped) * mm.costs.fault_4k_s
    return cost + _after_charge(mm, p, len(chunk))


def _after_charge(mm: MM, p: Task, nr_pages: int) -> float:
    """memory.high enforcement and kswapd wake-up after memory was charged."""
    stall = over_high(mm, p, nr_pages)
    p.stall(stall, "throttle")
    return stall
