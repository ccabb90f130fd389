"""Physical memory as 2 MiB pageblocks: the buddy allocator's placement rules and the zone watermarks.

Each pageblock counts its pages in use and how many of them are unmovable (kernel) pages, and has a
migratetype (``mt``: MOVABLE or UNMOVABLE); a block that backs a THP is wholly in use. Pages are not tracked
one by one here: callers hold, per page, the index of the block it lives in, and hand those indices back
when they free. Follows mm/page_alloc.c (Linux 6.x): order-0 allocations are served from the smallest free
fragments first, so partly used blocks of the request's migratetype fill before a free block is broken (a
free block is taken whole and becomes the request's type); when neither is left the request falls back into
the other type's blocks by the rule of __rmqueue_claim / __rmqueue_steal (Linux 6.15, K19): claim the block
with the largest free room if its free plus compatible pages are at least half a pageblock, else steal pages
from the fullest blocks, which stay of their type and become mixed. Left out: zones, per-cpu lists, orders
between 0 and 9 (mTHP), page isolation, MIGRATE_RECLAIMABLE (reclaimable slab is treated as unmovable: both
fall back into movable blocks alike and compaction moves neither).
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES

# Boot-time slab and other unmovable kernel memory is grouped by migratetype into unmovable blocks, but
# slab fragmentation leaves those blocks partly empty; half full is an estimate, not a measurement.
KERNEL_BLOCK_FILL_PAGES = HPAGE_PAGES // 2
MOVABLE, UNMOVABLE = 0, 1
# try_to_claim_block(): a fallback claims the whole block when free + compatible pages reach half of it.
CLAIM_PAGES = HPAGE_PAGES // 2


def default_min_free_kbytes(total_bytes: int) -> int:
    """init_per_zone_wmark_min(): sqrt(lowmem_kbytes * 16), clamped to [128, 262144]."""
    return int(min(262144, max(128, math.isqrt((total_bytes // 1024) * 16))))


class PhysMem:
    """Pageblock counters and the allocation policy over them."""

    def __init__(self, total_pages: int, min_free_kbytes: int, watermark_scale_factor: int) -> None:
        assert total_pages % HPAGE_PAGES == 0, "memory must be a whole number of pageblocks"
        self.nblocks = total_pages // HPAGE_PAGES
        self.total_pages = total_pages
        self.used = np.zeros(self.nblocks, dtype=np.int32)
        self.unmov = np.zeros(self.nblocks, dtype=np.int32)
        self.thp = np.zeros(self.nblocks, dtype=bool)
        self.mt = np.zeros(self.nblocks, dtype=np.int8)   # pageblock migratetype; free blocks keep their last
        self.nr_free = total_pages
        # Fallbacks (trace event mm_page_alloc_extfrag): blocks claimed whole, pages stolen from a block of
        # the other type without claiming it.
        self.fallback_claims = 0
        self.fallback_steal_pages = 0
        # Kept up to date for the blocks each call touches, so allocation never rescans every block's
        # counters: partly used blocks of type movable / unmovable, and the number of entirely free blocks.
        self.partial_movable = np.zeros(self.nblocks, dtype=bool)
        self.partial_unmovable = np.zeros(self.nblocks, dtype=bool)
        self.nfree_blocks = self.nblocks
        self.free_hint = 0   # no entirely free block lies below this one: searches for free blocks start here
        self._seen = np.zeros(self.nblocks, dtype=np.uint8)   # scratch marks for distinct blocks in a call
        # Entries 0 and 1: no partly used movable / unmovable block lies below these, so scans start there.
        # Entries 2 and 3: how many partly used movable / unmovable blocks there are, so scans stop early.
        self.partial_hint = np.zeros(4, dtype=np.int64)
        self.wmark_min = min_free_kbytes // 4
        gap = max(self.wmark_min // 4, total_pages * watermark_scale_factor // 10000)
        self.wmark_low = self.wmark_min + gap
        self.wmark_high = self.wmark_min + 2 * gap

    # --- queries -------------------------------------------------------------------------------------
    @property
    def free_blocks(self) -> int:
        """Entirely free pageblocks: what a THP allocation needs."""
        return self.nfree_blocks

    def _changed(self, blocks: np.ndarray, free_before: int) -> None:
        """Refresh the kept flags of distinct ``blocks`` whose counters just changed."""
        nfree, lowest = _refresh(self.used, self.mt, self.thp, self.partial_movable, self.partial_unmovable,
                                 self.partial_hint, blocks)
        if nfree:
            self.free_hint = min(self.free_hint, int(lowest))
        self.nfree_blocks += int(nfree) - free_before

    def _free_among(self, blocks: np.ndarray) -> int:
        return int(np.count_nonzero(self.used[blocks] == 0))

    def _lowest_free(self, k: int) -> np.ndarray:
        """The ``k`` entirely free blocks of lowest address (all of them if fewer), ascending.

        Scans from free_hint and stops at the k-th, so taking a few free blocks costs what they need, not a
        pass over every block of a large node (the buddy allocator pops its free lists likewise).
        """
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        blocks = _lowest_free(self.used, self.free_hint, k)
        self.free_hint = int(blocks[0]) if len(blocks) else self.nblocks   # every block below is in use
        return blocks

    def mixed_blocks(self) -> int:
        """Blocks holding pages of both kinds that are not entirely unmovable: movable-type blocks with
        unmovable pages in them (polluted by a steal), and unmovable-type blocks with movable pages."""
        movable_pages = self.used - self.unmov - self.thp * HPAGE_PAGES
        return int(np.count_nonzero((self.unmov > 0) & ((self.mt == MOVABLE) | (movable_pages > 0))))

    def unmovable_blocks(self) -> int:
        """Blocks holding at least one unmovable page: compaction can empty none of them."""
        return int(np.count_nonzero(self.unmov > 0))

    def fragmentation_score(self) -> float:
        """Share of free pages (percent) that sit outside free pageblocks (unusable for order 9)."""
        if self.nr_free == 0:
            return 0.0
        in_free_blocks = self.free_blocks * HPAGE_PAGES
        return 100.0 * (self.nr_free - in_free_blocks) / self.nr_free

    # --- allocation ------------------------------------------------------------------------------------
    def alloc_pages(self, n: int, movable: bool = True) -> np.ndarray:
        """Blocks for ``n`` order-0 pages (one entry per page), or an empty array if memory is short.

        Partly used blocks of the request's migratetype are filled first, lowest address first; then the
        lowest entirely free blocks are broken; then the other migratetype's blocks are claimed or stolen
        from (K19).
        """
        if n <= 0 or n > self.nr_free:
            return np.empty(0, dtype=np.int32)
        pages, free_taken, hint, claims, stolen = _alloc_order0(
            self.used, self.unmov, self.mt, self.thp, self.partial_movable, self.partial_unmovable,
            self.partial_hint, n, movable, self.free_hint)
        self.fallback_claims += int(claims)
        self.fallback_steal_pages += int(stolen)
        self.nr_free -= n
        self.nfree_blocks -= int(free_taken)
        self.free_hint = int(hint)
        return pages

    def alloc_blocks(self, k: int) -> np.ndarray:
        """Up to ``k`` entirely free pageblocks for THPs, lowest address first."""
        if k <= 0:
            return np.empty(0, dtype=np.int32)
        blocks = self._lowest_free(k).astype(np.int32)
        self.used[blocks] = HPAGE_PAGES
        self.thp[blocks] = True
        self.mt[blocks] = MOVABLE
        self.nr_free -= HPAGE_PAGES * len(blocks)
        self._changed(blocks, len(blocks))
        return blocks

    def reserve_kernel(self, pages: int, rng: np.random.Generator) -> None:
        """Boot-time unmovable memory, scattered over randomly chosen blocks at KERNEL_BLOCK_FILL_PAGES."""
        nblk = min(self.nblocks, -(-pages // KERNEL_BLOCK_FILL_PAGES))
        if pages <= 0 or nblk == 0:
            return
        blocks = np.sort(rng.choice(self.nblocks, size=nblk, replace=False))
        per = np.full(nblk, pages // nblk, dtype=np.int32)
        per[: pages % nblk] += 1
        free_before = self._free_among(blocks)
        self.used[blocks] += per
        self.unmov[blocks] += per
        self.mt[blocks] = UNMOVABLE
        self.nr_free -= pages
        self._changed(blocks, free_before)

    # --- freeing -------------------------------------------------------------------------------------
    def free_pages(self, blocks: np.ndarray, movable: bool = True) -> None:
        """Return order-0 pages, given the block of each page."""
        if len(blocks) == 0:
            return
        ok, nfree, lowest = _free_order0(self.used, self.unmov, self.mt, self.thp, self.partial_movable,
                                         self.partial_unmovable, self.partial_hint, blocks, movable, self._seen)
        assert ok, "freed pages never allocated"
        self.nr_free += len(blocks)
        self.nfree_blocks += int(nfree)   # each block held the pages freed from it, so none was free before
        if nfree:
            self.free_hint = min(self.free_hint, int(lowest))

    def free_blocks_thp(self, blocks: np.ndarray) -> None:
        """Free whole THP folios."""
        if len(blocks) == 0:
            return
        assert self.thp[blocks].all(), "freeing a THP block that holds no THP"
        self.used[blocks] = 0
        self.thp[blocks] = False
        self.nr_free += HPAGE_PAGES * len(blocks)
        self._changed(blocks, 0)

    def split_thp_block(self, block: np.ndarray, unmapped: np.ndarray) -> None:
        """A THP folio becomes order-0 pages in place; its ``unmapped`` pages go back to the free lists."""
        self.thp[block] = False
        self.used[block] -= unmapped.astype(np.int32)
        self.nr_free += int(unmapped.sum())
        self._changed(block, 0)


# --- compiled loops over the blocks a call touches ------------------------------------------------------
@njit
def _flag(used, mt, thp, pm, pu, hint, b) -> None:
    """Refresh block b's partly-used flags from its counters and type; keep each kind's count (hint[2:])
    and lower its scan hint (hint[:2])."""
    hint[2] -= pm[b]
    hint[3] -= pu[b]
    partial = 0 < used[b] < HPAGE_PAGES and not thp[b]
    pm[b] = partial and mt[b] == MOVABLE
    pu[b] = partial and mt[b] == UNMOVABLE
    hint[2] += pm[b]
    hint[3] += pu[b]
    if pm[b]:
        hint[0] = min(hint[0], b)
    if pu[b]:
        hint[1] = min(hint[1], b)


@njit
def _refresh(used, mt, thp, pm, pu, hint, blocks):
    """_flag() for distinct blocks; returns (how many are entirely free, the lowest free one)."""
    nfree, lowest = 0, used.shape[0]
    for b in blocks:
        _flag(used, mt, thp, pm, pu, hint, b)
        if used[b] == 0:
            nfree += 1
            lowest = min(lowest, b)
    return nfree, lowest


@njit
def _lowest_free(used, start, k):
    out = np.empty(k, dtype=np.int64)
    m, b = 0, start
    while m < k and b < used.shape[0]:
        if used[b] == 0:
            out[m] = b
            m += 1
        b += 1
    return out[:m]


@njit
def _take(used, unmov, mt, thp, pm, pu, hint, b, out, got, n, movable):
    """Fill block b with as many of the remaining pages as it has room for; returns the pages placed."""
    k = min(HPAGE_PAGES - used[b], n - got)
    used[b] += k
    if not movable:
        unmov[b] += k
    out[got:got + k] = b
    _flag(used, mt, thp, pm, pu, hint, b)
    return got + k


@njit
def _fill_partial(used, unmov, mt, thp, pm, pu, hint, kind, out, got, n, movable):
    """Fill the partly used blocks of one type (0 movable, 1 unmovable) in address order from its hint; the
    first one found becomes the hint."""
    flags = pm if kind == 0 else pu
    left = hint[2 + kind]   # partly used blocks of this kind not yet visited
    if left == 0:
        return got
    b = hint[kind]
    while not flags[b]:
        b += 1
    hint[kind] = b
    while got < n and left:
        if flags[b]:
            left -= 1
            got = _take(used, unmov, mt, thp, pm, pu, hint, b, out, got, n, movable)
        b += 1
    return got


@njit
def _claimable(used, unmov, flags, movable):
    """The other type's partly used block with the most free pages among those whose free plus compatible
    pages reach CLAIM_PAGES (try_to_claim_block), or -1. Compatible: for a movable request the block's
    movable pages, for an unmovable one its unmovable pages."""
    best, room = -1, 0
    for b in range(used.shape[0]):
        if not flags[b]:
            continue
        free = HPAGE_PAGES - used[b]
        alike = used[b] - unmov[b] if movable else unmov[b]
        if free + alike >= CLAIM_PAGES and free > room:
            best, room = b, free
    return best


@njit
def _steal(used, unmov, mt, thp, pm, pu, hint, other, out, got, n, movable):
    """__rmqueue_steal(): pages from the other type's partly used blocks, fullest first (the smallest free
    fragments), without changing their type. Returns (pages placed, pages stolen)."""
    flags = pm if other == 0 else pu
    cand = np.flatnonzero(flags)
    order = cand[np.argsort(-used[cand], kind="mergesort")]   # fullest first, lowest address on ties
    start = got
    for b in order:
        if got >= n:
            break
        got = _take(used, unmov, mt, thp, pm, pu, hint, b, out, got, n, movable)
    return got, got - start


@njit
def _alloc_order0(used, unmov, mt, thp, pm, pu, hint, n, movable, free_hint):
    """Place n order-0 pages: own migratetype's partly used blocks, then free blocks from ``free_hint``, then
    fallback (claim a block of the other type, repeatedly; else steal), each in address order. Returns (block
    per page, free blocks broken, new free hint, blocks claimed, pages stolen)."""
    own = 0 if movable else 1
    out = np.empty(n, dtype=np.int32)
    got = _fill_partial(used, unmov, mt, thp, pm, pu, hint, own, out, 0, n, movable)
    free_taken = 0
    if got < n:
        first_free, b, nb = used.shape[0], free_hint, used.shape[0]
        while got < n and b < nb:
            if used[b] == 0:
                first_free = min(first_free, b)
                mt[b] = own   # a whole free block is claimed outright (order >= pageblock_order)
                got = _take(used, unmov, mt, thp, pm, pu, hint, b, out, got, n, movable)
                free_taken += 1
            b += 1
        free_hint = first_free
    claims, stolen = 0, 0
    other_flags = pm if own == 1 else pu
    while got < n:
        b = _claimable(used, unmov, other_flags, movable)
        if b < 0:
            break
        mt[b] = own
        claims += 1
        got = _take(used, unmov, mt, thp, pm, pu, hint, b, out, got, n, movable)
    if got < n:
        got, stolen = _steal(used, unmov, mt, thp, pm, pu, hint, 1 - own, out, got, n, movable)
    return out, free_taken, free_hint, claims, stolen


@njit
def _free_order0(used, unmov, mt, thp, pm, pu, hint, blocks, movable, seen):
    """Give back one page per entry of ``blocks``; returns (counters stayed >= 0, blocks now entirely
    free, the lowest of them)."""
    for b in blocks:
        used[b] -= 1
        if not movable:
            unmov[b] -= 1
    ok, nfree, lowest = True, 0, used.shape[0]
    for b in blocks:
        if seen[b]:
            continue
        seen[b] = 1
        ok = ok and used[b] >= 0 and unmov[b] >= 0
        _flag(used, mt, thp, pm, pu, hint, b)
        if used[b] == 0:
            nfree += 1
            lowest = min(lowest, b)
    for b in blocks:
        seen[b] = 0
    return ok, nfree, lowest
