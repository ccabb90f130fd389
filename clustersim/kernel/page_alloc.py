"""Physical memory as 2 MiB pageblocks: the buddy allocator's placement rules and the zone watermarks.

Each pageblock counts its pages in use and how many of them are unmovable (kernel) pages; a block that
backs a THP is wholly in use. Pages are not tracked one by one here: callers hold, per page, the index of
the block it lives in, and hand those indices back when they free. Follows mm/page_alloc.c (Linux 6.x):
order-0 allocations are served from the smallest free fragments first, so partly used blocks fill before a
free block is broken; unmovable allocations keep to unmovable blocks and steal a free block when they must
(fallback to a movable block only when nothing else is left). Left out: zones, per-cpu lists, orders
between 0 and 9 (mTHP), page isolation.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES

# Boot-time slab and other unmovable kernel memory is grouped by migratetype into unmovable blocks, but
# slab fragmentation leaves those blocks partly empty; half full is an estimate, not a measurement.
KERNEL_BLOCK_FILL_PAGES = HPAGE_PAGES // 2


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
        self.nr_free = total_pages
        # Kept up to date for the blocks each call touches, so allocation never rescans every block's
        # counters: partly used movable / unmovable blocks, and the number of entirely free blocks.
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
        nfree, lowest = _refresh(self.used, self.unmov, self.thp, self.partial_movable, self.partial_unmovable,
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
        lowest entirely free blocks are broken; then the other migratetype's partly used blocks are used.
        """
        if n <= 0 or n > self.nr_free:
            return np.empty(0, dtype=np.int32)
        pages, free_taken, hint = _alloc_order0(self.used, self.unmov, self.thp, self.partial_movable,
                                                self.partial_unmovable, self.partial_hint, n, movable,
                                                self.free_hint)
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
        self.nr_free -= pages
        self._changed(blocks, free_before)

    # --- freeing -------------------------------------------------------------------------------------
    def free_pages(self, blocks: np.ndarray, movable: bool = True) -> None:
        """Return order-0 pages, given the block of each page."""
        if len(blocks) == 0:
            return
        ok, nfree, lowest = _free_order0(self.used, self.unmov, self.thp, self.partial_movable,
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
def _flag(used, unmov, thp, pm, pu, hint, b) -> None:
    """Refresh block b's partly-used flags from its counters; keep each kind's count (hint[2:]) and lower
    its scan hint (hint[:2])."""
    hint[2] -= pm[b]
    hint[3] -= pu[b]
    partial = 0 < used[b] < HPAGE_PAGES and not thp[b]
    pm[b] = partial and unmov[b] == 0
    pu[b] = partial and unmov[b] > 0
    hint[2] += pm[b]
    hint[3] += pu[b]
    if pm[b]:
        hint[0] = min(hint[0], b)
    if pu[b]:
        hint[1] = min(hint[1], b)


@njit
def _refresh(used, unmov, thp, pm, pu, hint, blocks):
    """_flag() for distinct blocks; returns (how many are entirely free, the lowest free one)."""
    nfree, lowest = 0, used.shape[0]
    for b in blocks:
        _flag(used, unmov, thp, pm, pu, hint, b)
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
def _take(used, unmov, thp, pm, pu, hint, b, out, got, n, movable):
    """Fill block b with as many of the remaining pages as it has room for; returns the pages placed."""
    k = min(HPAGE_PAGES - used[b], n - got)
    used[b] += k
    if not movable:
        unmov[b] += k
    out[got:got + k] = b
    _flag(used, unmov, thp, pm, pu, hint, b)
    return got + k


@njit
def _fill_partial(used, unmov, thp, pm, pu, hint, kind, out, got, n, movable):
    """Fill the partly used blocks of one kind (0 movable, 1 unmovable) in address order from its hint; the
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
            got = _take(used, unmov, thp, pm, pu, hint, b, out, got, n, movable)
        b += 1
    return got


@njit
def _alloc_order0(used, unmov, thp, pm, pu, hint, n, movable, free_hint):
    """Place n order-0 pages: own migratetype's partly used blocks, then free blocks from ``free_hint``, then
    the other migratetype's partly used blocks, each in address order. Returns (block per page, free blocks
    broken, new free hint)."""
    own = 0 if movable else 1
    out = np.empty(n, dtype=np.int32)
    got = _fill_partial(used, unmov, thp, pm, pu, hint, own, out, 0, n, movable)
    free_taken = 0
    if got < n:
        first_free, b, nb = used.shape[0], free_hint, used.shape[0]
        while got < n and b < nb:
            if used[b] == 0:
                first_free = min(first_free, b)
                got = _take(used, unmov, thp, pm, pu, hint, b, out, got, n, movable)
                free_taken += 1
            b += 1
        free_hint = first_free
    if got < n:
        got = _fill_partial(used, unmov, thp, pm, pu, hint, 1 - own, out, got, n, movable)
    return out, free_taken, free_hint


@njit
def _free_order0(used, unmov, thp, pm, pu, hint, blocks, movable, seen):
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
        _flag(used, unmov, thp, pm, pu, hint, b)
        if used[b] == 0:
            nfree += 1
            lowest = min(lowest, b)
    for b in blocks:
        seen[b] = 0
    return ok, nfree, lowest
