"""HugeAllocator and HugeCache: whole hugepages for Temeraire (tcmalloc/huge_allocator.h, huge_cache.h).

HugeAllocator hands out hugepage-aligned address space that is not backed (fresh or released), best fit, and
grows the heap by mmap. HugeCache keeps empty *backed* hugepages so that a returning demand does not refault
them. Its size limit follows a 2 s window of demand (hugepages handed out): when the cache holds more than
``demand_max - demand_min`` over the window, the surplus is released (Temeraire, OSDI 2021, Sec. 4.3 and
Fig. 10: the cache absorbs the saw-tooth of a fluctuating demand, not its level).

Left out: tcmalloc's cache-limit growth on misses (MaybeGrowCacheLimit) and its off-peak tracker; the
limit here is the demand window alone.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from clustersim.units import HPAGE_PAGES

from .best_fit import BestFitFreeList

# The demand window is kept as per-epoch (min, max) pairs; 8 epochs per 2 s window bound the error of the
# window edges to a quarter second, well below the 1 s background tick.
WINDOW_EPOCHS = 8


class HugeAllocator:
    """Unbacked hugepage-aligned address space, best fit by length (tcmalloc keeps it in a treap)."""

    def __init__(self, heap) -> None:
        self.heap = heap
        self.free = BestFitFreeList()  # in hugepage (vhp) units

    def get(self, n_hp: int) -> int:
        """First vhp of ``n_hp`` contiguous unbacked hugepages; maps more heap when none fit."""
        start = self.free.take_best_fit(n_hp)
        if start is None:
            first_page = self.heap._grow_heap(n_hp * HPAGE_PAGES)
            self.free.insert(first_page // HPAGE_PAGES, self.heap.nvhp - first_page // HPAGE_PAGES)
            start = self.free.take_best_fit(n_hp)
        return start

    def put(self, start_vhp: int, n_hp: int) -> None:
        """Take back hugepages whose memory was released."""
        self.free.insert(start_vhp, n_hp)


class HugeCache:
    """Empty backed hugepages, limited by the demand window. ``clock`` returns seconds."""

    def __init__(self, heap, allocator: HugeAllocator, clock, window_s: float = 2.0) -> None:
        self.heap = heap
        self.allocator = allocator
        self.clock = clock
        self.window_s = window_s
        self.cached = BestFitFreeList()  # in hugepage (vhp) units
        self.usage_hp = 0                # hugepages handed out and not yet returned
        self._epochs: deque[list] = deque()  # [epoch index, min usage, max usage]

    @property
    def size_hp(self) -> int:
        return self.cached.free_pages

    def _record_usage(self) -> None:
        epoch = math.floor(self.clock() * WINDOW_EPOCHS / self.window_s) if self.window_s > 0 else 0
        if self._epochs and self._epochs[-1][0] == epoch:
            e = self._epochs[-1]
            e[1], e[2] = min(e[1], self.usage_hp), max(e[2], self.usage_hp)
        else:
            self._epochs.append([epoch, self.usage_hp, self.usage_hp])
        while self._epochs and self._epochs[0][0] <= epoch - WINDOW_EPOCHS:
            self._epochs.popleft()

    def limit_hp(self) -> int:
        """demand_max - demand_min over the window: the swing the cache should absorb."""
        if not self._epochs:
            return 0
        return max(e[2] for e in self._epochs) - min(e[1] for e in self._epochs)

    def get(self, n_hp: int) -> int:
        """First vhp of ``n_hp`` contiguous hugepages: cached (backed) if possible, else unbacked."""
        start = self.cached.take_best_fit(n_hp)
        if start is None:
            start = self.allocator.get(n_hp)
        self.usage_hp += n_hp
        self._record_usage()
        return start

    def put(self, start_vhp: int, n_hp: int) -> float:
        """Return empty backed hugepages; releases the surplus over the limit. Returns seconds."""
        self.usage_hp -= n_hp
        self._record_usage()
        self.cached.insert(start_vhp, n_hp)
        return self.shrink()

    def shrink(self) -> float:
        """Release cached hugepages beyond the demand limit."""
        self._record_usage()
        surplus = self.size_hp - self.limit_hp()
        return self.release(surplus)[1] if surplus > 0 else 0.0

    def release(self, n_hp: int) -> tuple[int, float]:
        """Release up to ``n_hp`` cached hugepages (largest ranges first): (4 KiB pages, seconds)."""
        ranges = []
        left = n_hp
        while left > 0 and len(self.cached):
            start, n = self.cached.take_largest()
            take = min(n, left)
            if take < n:
                self.cached.insert(start + take, n - take)
            ranges.append((start, take))
            left -= take
        if not ranges:
            return 0, 0.0
        starts = np.array([s for s, _ in ranges], dtype=np.int64) * HPAGE_PAGES
        lengths = np.array([n for _, n in ranges], dtype=np.int64) * HPAGE_PAGES
        pages, seconds = self.heap.release_ranges(starts, lengths)
        for s, n in ranges:
            self.allocator.put(s, n)
        return pages, seconds
