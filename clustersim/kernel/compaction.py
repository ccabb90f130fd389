"""Memory compaction: migrate movable pages out of sparse pageblocks so whole blocks become free.

Follows mm/compaction.c in spirit: the migration scanner takes the sparsest movable blocks, the free scanner
fills holes in the densest ones; blocks holding any unmovable page cannot be emptied, so compaction fails
when only such blocks are sparse. Direct compaction (THP faults per `defrag`, khugepaged, MADV_COLLAPSE)
stalls the caller for every page moved; kcompactd's proactive mode (compaction_proactiveness) runs in the
background when the fragmentation score passes its high mark. Left out: async vs sync modes, skip bits,
deferred compaction backoff, zones.
"""

from __future__ import annotations

import numpy as np

from ..units import HPAGE_PAGES
from .mm import MM
from .pagetable import IS_PRESENT

# kcompactd works in bounded rounds per wake-up (each round up to 1/64 of the node's blocks) so that one
# wake-up cannot monopolise a simulated second.
PROACTIVE_ROUNDS = 8
PROACTIVE_ROUND_BLOCKS_DIV = 64


def plan(mm: MM, want_blocks: int) -> np.ndarray:
    """Blocks to empty: the sparsest movable ones whose pages fit into the holes of the denser ones.

    Goal: free ``want_blocks`` pageblocks moving as few pages as possible. Proxy: sort partly used movable
    blocks by use; take a prefix as sources while the remaining blocks' free room can absorb them.
    """
    phys = mm.phys
    movable = np.flatnonzero((phys.used > 0) & (phys.used < HPAGE_PAGES) & ~phys.thp & (phys.unmov == 0))
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
    limit = pt.nrows * HPAGE_PAGES
    blocks = pt.flat_block[:limit]
    flat = np.flatnonzero(np.isin(blocks, sources))
    flat = flat[IS_PRESENT[pt.flat_state[flat]]]
    mm.phys.free_pages(blocks[flat])
    # The freed sources are now whole free blocks; order-0 allocation fills partial blocks first, which
    # plan() checked can absorb every moved page.
    new_blocks = mm.phys.alloc_pages(len(flat))
    assert not np.isin(new_blocks, sources).any(), "compaction moved pages back into a source block"
    pt.flat_block[flat] = new_blocks
    mm.vmstat["pgmigrate_success"] += len(flat)
    return len(sources), len(flat) * mm.costs.migrate_page_s


def direct_compact(mm: MM, want_blocks: int) -> tuple[int, float]:
    """Compaction in the allocating context: counted as compact_stall, success or fail."""
    mm.vmstat["compact_stall"] += 1
    freed, cost = compact(mm, want_blocks)
    mm.vmstat["compact_success" if freed else "compact_fail"] += 1
    return freed, cost


def proactive(mm: MM) -> float:
    """kcompactd's proactive compaction: above score 100-proactiveness+10, compact to below 100-proactiveness."""
    p = mm.vm.compaction_proactiveness
    if p == 0:
        return 0.0
    low, high = 100 - p, 100 - p + 10
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
