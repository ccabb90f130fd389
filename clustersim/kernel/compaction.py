"""Memory compaction: migrate movable pages out of sparse pageblocks so whole blocks become free.

Follows mm/compaction.c in spirit: the migration scanner takes the sparsest movable blocks, the free scanner
fills holes in the densest ones; blocks holding any unmovable page cannot be emptied, so compaction fails
when only such blocks are sparse. Direct compaction (THP faults per `defrag`, khugepaged, MADV_COLLAPSE)
stalls the caller for every page moved, and after a failure is deferred: the next 1 << compact_defer_shift
attempts are skipped, the shift growing by one per failure up to COMPACT_MAX_DEFER_SHIFT and reset by a
success (compaction_deferred / defer_compaction / compaction_defer_reset, K20). kcompactd's proactive mode
(compaction_proactiveness) runs in the background when the fragmentation score passes its high mark, with
the low mark floored at 5, does a bounded amount of work per wake-up, and sleeps 64 times longer after a
wake-up that did not lower the score (K21). Left out: async vs sync modes (the model's one direct attempt
stands for the sync-priority one whose failure defers), skip bits, compact_order_failed (one order only),
zones.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .mm import KCOMPACTD_INTERVAL_S, MM
from .page_alloc import MOVABLE
from .pagetable import IS_PRESENT

# kcompactd works in bounded rounds per wake-up (each round up to 1/64 of the node's blocks) so that one
# wake-up cannot monopolise a simulated second.
PROACTIVE_ROUNDS = 8
PROACTIVE_ROUND_BLOCKS_DIV = 64
COMPACT_MAX_DEFER_SHIFT = 6          # include/linux/compaction.h
PROACTIVE_WMARK_FLOOR = 5            # fragmentation_score_wmark(): the low mark is at least 5
PROACTIVE_WMARK_LEEWAY = 10          # the high mark is the low mark + 10, at most 100


def plan(mm: MM, want_blocks: int) -> np.ndarray:
    """Blocks to empty: the sparsest movable ones whose pages fit into the holes of the denser ones.

    Goal: free ``want_blocks`` pageblocks moving as few pages as possible. Proxy: sort partly used movable
    blocks by use; take a prefix as sources while the remaining blocks' free room can absorb them.
    """
    phys = mm.phys
    movable = np.flatnonzero((phys.used > 0) & (phys.used < HPAGE_PAGES) & ~phys.thp & (phys.unmov == 0)
                             & (phys.mt == MOVABLE))
    if len(movable) < 2 or want_blocks <= 0:
        return movable[:0]
    order = movable[np.argsort(phys.used[movable], kind="stable")]
    used = phys.used[order].astype(np.int64)
    moved = np.cumsum(used)
    room_after = np.cumsum((HPAGE_PAGES - used)[::-1])[::-1]   # room in blocks i..end
    room_rest = np.append(room_after[1:], 0)                   # room in blocks after i
    fits = moved <= room_rest
    k = int(np.argmin(fits)) if not fits.all() else len(fits)
    return order[: min(k, want_blocks)]


def compact(mm: MM, want_blocks: int) -> tuple[int, float]:
    """Free up to ``want_blocks`` pageblocks by migration; returns (blocks freed, seconds of work)."""
    sources = plan(mm, want_blocks)
    if len(sources) == 0:
        return 0, 0.0
    pt = mm.pt
    flat = _present_in_blocks(pt.flat_block, pt.flat_state, IS_PRESENT, pt.npres, pt.nrows, sources,
                              mm.phys.nblocks, int(mm.phys.used[sources].sum()))
    mm.phys.free_pages(pt.flat_block[flat])
    # The freed sources are now whole free blocks; order-0 allocation fills partial blocks first, which
    # plan() checked can absorb every moved page.
    new_blocks = mm.phys.alloc_pages(len(flat))
    assert not np.isin(new_blocks, sources).any(), "compaction moved pages back into a source block"
    pt.flat_block[flat] = new_blocks
    mm.vmstat["pgmigrate_success"] += len(flat)
    return len(sources), len(flat) * mm.costs.migrate_page_s


@njit
def _present_in_blocks(flat_block, flat_state, is_present, npres, nrows, sources, nblocks, used):
    """The present pages of the first ``nrows`` rows that live in one of the pageblocks ``sources``, in
    ascending order (the migration scanner's pages), in one pass over the block ids of the rows that have
    present pages (``npres``), with a flag per block. A present page holds a page frame of its own, so there
    are at most ``used`` (the sources' used frames) of them."""
    member = np.zeros(nblocks, dtype=np.bool_)
    for b in sources:
        member[b] = True
    out = np.empty(used, dtype=np.int64)
    k = 0
    for r in range(nrows):
        if npres[r] == 0:
            continue
        for f in range(r * HPAGE_PAGES, (r + 1) * HPAGE_PAGES):
            b = flat_block[f]
            if b >= 0 and member[b] and is_present[flat_state[f]]:
                assert k < used, "compaction: more present pages in the source blocks than used frames"
                out[k] = f
                k += 1
    return out[:k]


def compaction_deferred(mm: MM) -> bool:
    """Skip this attempt? Counts it; after 1 << shift considered attempts the next one runs."""
    limit = 1 << mm.compact_defer_shift
    mm.compact_considered += 1
    if mm.compact_considered >= limit:
        mm.compact_considered = limit
        return False
    return True


def defer_compaction(mm: MM) -> None:
    """A failed attempt: skip the next 1 << shift attempts, the shift growing up to its maximum."""
    mm.compact_considered = 0
    mm.compact_defer_shift = min(mm.compact_defer_shift + 1, COMPACT_MAX_DEFER_SHIFT)


def compaction_defer_reset(mm: MM) -> None:
    """A successful attempt: no deferral."""
    mm.compact_considered = 0
    mm.compact_defer_shift = 0


def direct_compact(mm: MM, want_blocks: int) -> tuple[int, float]:
    """Compaction in the allocating context: counted as compact_stall, success or fail; a deferred attempt
    does no work and counts as a stall that failed, as __alloc_pages_direct_compact() counts it."""
    mm.vmstat["compact_stall"] += 1
    if compaction_deferred(mm):
        mm.compact_deferred += 1
        mm.vmstat["compact_fail"] += 1
        return 0, 0.0
    freed, cost = compact(mm, want_blocks)
    if freed:
        compaction_defer_reset(mm)
    else:
        defer_compaction(mm)
    mm.vmstat["compact_success" if freed else "compact_fail"] += 1
    return freed, cost


def score_wmarks(proactiveness: int) -> tuple[int, int]:
    """fragmentation_score_wmark(): (low, high) marks of the fragmentation score."""
    low = max(100 - proactiveness, PROACTIVE_WMARK_FLOOR)
    return low, min(low + PROACTIVE_WMARK_LEEWAY, 100)


def proactive(mm: MM) -> float:
    """kcompactd's proactive compaction: above the high mark, compact until the score is at most the low
    mark, in at most PROACTIVE_ROUNDS rounds of a 1/PROACTIVE_ROUND_BLOCKS_DIV share of the blocks."""
    p = mm.vm.compaction_proactiveness
    if p == 0:
        return 0.0
    low, high = score_wmarks(p)
    if mm.phys.fragmentation_score() <= high:
        return 0.0
    total = 0.0
    for _ in range(PROACTIVE_ROUNDS):
        if mm.phys.fragmentation_score() <= low:
            break
        freed, cost = compact(mm, max(1, mm.phys.nblocks // PROACTIVE_ROUND_BLOCKS_DIV))
        total += cost
        if not freed:
            break
    return total


def kcompactd(mm: MM, now: float) -> float:
    """One kcompactd wake-up at ``now``: proactive compaction, then the next wake-up; a wake-up that did not
    lower the score sleeps 1 << COMPACT_MAX_DEFER_SHIFT intervals. Returns seconds of work."""
    before = mm.phys.fragmentation_score()
    ran = mm.vm.compaction_proactiveness > 0 and before > score_wmarks(mm.vm.compaction_proactiveness)[1]
    cost = proactive(mm)
    backoff = ran and mm.phys.fragmentation_score() >= before
    mm.next_kcompactd = now + KCOMPACTD_INTERVAL_S * ((1 << COMPACT_MAX_DEFER_SHIFT) if backoff else 1)
    return cost
