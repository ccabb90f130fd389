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

from ..units import HPAGE_PAGES
from .pagetable import uniq

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
        used = self.used[blocks]
        partial = (used > 0) & (used < HPAGE_PAGES) & ~self.thp[blocks]
        unmov = self.unmov[blocks] > 0
        self.partial_movable[blocks] = partial & ~unmov
        self.partial_unmovable[blocks] = partial & unmov
        free = used == 0
        nfree = int(np.count_nonzero(free))
        if nfree:
            self.free_hint = min(self.free_hint, int(blocks[free].min()))
        self.nfree_blocks += nfree - free_before

    def _free_among(self, blocks: np.ndarray) -> int:
        return int(np.count_nonzero(self.used[blocks] == 0))

    def _lowest_free(self, k: int) -> np.ndarray:
        """The ``k`` entirely free blocks of lowest address (all of them if fewer), ascending.

        Scans from free_hint in growing windows, so taking a few free blocks costs what they need, not a
        pass over every block of a large node (the buddy allocator pops its free lists likewise).
        """
        found, start, width = [], self.free_hint, 256
        while k > 0 and start < self.nblocks:
            window = np.flatnonzero(self.used[start:start + width] == 0)[:k] + start
            found.append(window)
            k -= len(window)
            start, width = start + width, 4 * width
        if not found:   # none asked for, or the hint is past the last block
            return np.empty(0, dtype=np.int64)
        blocks = found[0] if len(found) == 1 else np.concatenate(found)
        # Every block scanned before the first free one found is in use; with none found, all scanned are.
        self.free_hint = int(blocks[0]) if len(blocks) else min(start, self.nblocks)
        return blocks

    def fragmentation_score(self) -> float:
        """Share of free pages (percent) that sit outside free pageblocks (unusable for order 9)."""
        if self.nr_free == 0:
            return 0.0
        in_free_blocks = self.free_blocks * HPAGE_PAGES
        return 100.0 * (self.nr_free - in_free_blocks) / self.nr_free

    # --- allocation ------------------------------------------------------------------------------------
    def alloc_pages(self, n: int, movable: bool = True) -> np.ndarray:
        """Blocks for ``n`` order-0 pages (one entry per page), or an empty array if memory is short."""
        if n <= 0:
            return np.empty(0, dtype=np.int32)
        if n > self.nr_free:
            return np.empty(0, dtype=np.int32)
        own, other = ((self.partial_movable, self.partial_unmovable) if movable
                      else (self.partial_unmovable, self.partial_movable))
        first = int(own.argmax())   # stops at the first partly used block
        if own[first] and HPAGE_PAGES - int(self.used[first]) >= n:   # it has room for all (a page table)
            return self._fill(np.array([first]), np.array([n], dtype=np.int32), n, movable, 0)
        order = np.flatnonzero(own)
        room = HPAGE_PAGES - self.used[order]
        short = n - int(room.sum())
        free_before = 0
        if short > 0:   # break free blocks, then fall back to the other migratetype's blocks
            free = self._lowest_free(-(-short // HPAGE_PAGES))   # only the free blocks the fill reaches
            free_before = len(free)   # the fill takes from each of them
            parts = [order, free]
            if len(free) * HPAGE_PAGES < short:
                parts.append(np.flatnonzero(other))
            order = np.concatenate(parts)
            room = HPAGE_PAGES - self.used[order]
        # Fill in order: every block before the one where the running room reaches n is filled up, that
        # one takes the rest (each block listed has room, so none is skipped).
        filled = np.cumsum(room)
        last = int(np.searchsorted(filled, n))
        blocks, counts = order[: last + 1], room[: last + 1].astype(np.int32)
        counts[-1] = n - (filled[last] - room[last])
        return self._fill(blocks, counts, n, movable, free_before)

    def _fill(self, blocks: np.ndarray, counts: np.ndarray, n: int, movable: bool, free_before: int) -> np.ndarray:
        """Take ``counts`` pages (int32) of each of ``blocks``; ``free_before`` of them were free."""
        self.used[blocks] += counts
        if not movable:
            self.unmov[blocks] += counts
        self.nr_free -= n
        self._changed(blocks, free_before)
        return np.repeat(blocks.astype(np.int32), counts)

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
        touched, counts = uniq(blocks, return_counts=True)
        counts = counts.astype(np.int32)
        self.used[touched] -= counts
        assert self.used[touched].min() >= 0, "freed pages never allocated"
        if not movable:
            self.unmov[touched] -= counts
            assert self.unmov[touched].min() >= 0, "freed unmovable pages never allocated"
        self.nr_free += len(blocks)
        self._changed(touched, 0)   # each block held the pages freed from it, so none was free before

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
