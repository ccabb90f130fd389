"""Swap devices: none, a disk (NVMe or HDD), zram (compressed pages in RAM) and zswap (a compressed pool
in RAM in front of a disk).

Sources: Documentation/admin-guide/blockdev/zram.rst, mm/zswap.c (max_pool_percent default 20), docs/literature.md
for latencies and compression ratios. zram's compressed pages are kernel memory taken from the node and not
charged to a memcg; the zswap pool is charged to the memcg of the page (memory.zswap.current counts in
memory.current), capped by memory.zswap.max and by max_pool_percent of RAM; pages it refuses go straight to
the disk behind it. Left out: same-filled page detection, writeback of old pool pages to disk, swap
readahead, per-page pool/disk placement (a memcg's swap-ins come from the pool in proportion to its share).
"""

from __future__ import annotations

import math

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from .mm import MM
from .pagetable import uniq
from .settings import SwapSettings


class SwapDevice:
    """Slots on the device, the RAM a compressed store uses, and per-memcg pool shares for zswap."""

    def __init__(self, settings: SwapSettings, total_pages: int) -> None:
        self.kind = settings.kind
        self.device = settings.device
        self.ratio = float(settings.compression_ratio)
        self.capacity = settings.size // PAGE_SIZE if self.kind != "none" else 0
        self.used = 0
        self.pool_cap = total_pages * settings.max_pool_percent // 100 if self.kind == "zswap" else 0
        self._ram = np.empty(0, dtype=np.int32)   # unmovable pages holding compressed data: the first _ram_n
        self._ram_n = 0
        self.pool_stored: dict[int, int] = {}            # zswap: pages stored in the pool, per memcg
        self.disk_stored: dict[int, int] = {}            # zswap: pages written through to disk, per memcg

    @property
    def ram_blocks(self) -> np.ndarray:
        """The pageblock of each page the compressed store occupies (a view)."""
        return self._ram[: self._ram_n]

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def pool_pages(self) -> int:
        """RAM pages the compressed store should occupy."""
        if self.kind == "zram":
            return math.ceil(self.used / self.ratio)
        if self.kind == "zswap":
            return sum(math.ceil(v / self.ratio) for v in self.pool_stored.values())
        return 0

    def swapin_cost_s(self, mm: MM, memcg_idx: int, n: int) -> float:
        """Seconds to swap ``n`` pages of one memcg back in."""
        c = mm.costs
        if self.kind == "zram":
            return n * c.swapin_zram_s
        disk_s = c.swapin_nvme_s if self.device == "nvme" else c.swapin_hdd_s
        if self.kind == "disk":
            return n * disk_s
        pool, disk = self.pool_stored.get(memcg_idx, 0), self.disk_stored.get(memcg_idx, 0)
        from_pool = round(n * pool / (pool + disk)) if pool + disk else n
        return from_pool * c.swapin_zswap_s + (n - from_pool) * disk_s

    def swapout_cost_s(self, mm: MM, n: int) -> float:
        c = mm.costs
        if self.kind in ("zram", "zswap"):
            return n * c.swapout_zram_s
        return n * (c.swapout_nvme_s if self.device == "nvme" else c.swapout_hdd_s)

    # --- slots ---------------------------------------------------------------------------------------
    def store(self, mm: MM, memcg_idx: int, n: int) -> None:
        """Take ``n`` slots for pages of one memcg (the caller checked room) and grow the RAM store."""
        self.used += n
        if self.kind == "zswap":
            m = mm.memcgs.all[memcg_idx]
            room_pool = min(self.pool_cap - self.pool_pages(),
                            min(a.zswap_max - a.zswap_usage for a in m.ancestors()))
            to_pool = int(max(0, min(n, math.floor(room_pool * self.ratio))))
            before = math.ceil(self.pool_stored.get(memcg_idx, 0) / self.ratio)
            self.pool_stored[memcg_idx] = self.pool_stored.get(memcg_idx, 0) + to_pool
            self.disk_stored[memcg_idx] = self.disk_stored.get(memcg_idx, 0) + n - to_pool
            self._charge_pool(mm, m, math.ceil(self.pool_stored[memcg_idx] / self.ratio) - before)
        self._resize_ram(mm)

    def release(self, mm: MM, flat: np.ndarray) -> None:
        """Free the slots of swapped pages (swap-in, zap or exit)."""
        n = len(flat)
        if n == 0:
            return
        self.used -= n
        assert self.used >= 0, "freed more swap slots than were used"
        if self.kind == "zswap":
            memcgs = mm.pt.memcg[flat // HPAGE_PAGES]
            for m_idx, k in zip(*uniq(memcgs, return_counts=True), strict=True):
                self._release_zswap(mm, int(m_idx), int(k))
        self._resize_ram(mm)

    def _release_zswap(self, mm: MM, m_idx: int, k: int) -> None:
        pool, disk = self.pool_stored.get(m_idx, 0), self.disk_stored.get(m_idx, 0)
        from_pool = min(pool, round(k * pool / (pool + disk))) if pool + disk else 0
        from_disk = k - from_pool
        if from_disk > disk:
            from_pool, from_disk = k - disk, disk
        before = math.ceil(pool / self.ratio)
        self.pool_stored[m_idx] = pool - from_pool
        self.disk_stored[m_idx] = disk - from_disk
        self._charge_pool(mm, mm.memcgs.all[m_idx], math.ceil(self.pool_stored[m_idx] / self.ratio) - before)

    @staticmethod
    def _charge_pool(mm: MM, m, delta: int) -> None:
        if delta:
            mm.memcgs.charge(m, delta)
            mm.memcgs.charge_zswap(m, delta)

    def _resize_ram(self, mm: MM) -> None:
        """Keep the compressed store's pages allocated as unmovable kernel memory.

        REQUIRES: the pages being swapped out were freed first, so the (smaller) compressed copy fits.
        """
        want, have = self.pool_pages(), self._ram_n
        if want > have:
            got = mm.phys.alloc_pages(want - have, movable=False)
            assert len(got) == want - have, "no room for the compressed copy"
            if want > len(self._ram):   # grown by doubling: a store of a few pages does not copy the store
                grown = np.empty(max(want, 2 * len(self._ram)), dtype=np.int32)
                grown[:have] = self._ram[:have]
                self._ram = grown
            self._ram[have:want] = got
        elif want < have:
            mm.phys.free_pages(self._ram[want:have], movable=False)
        self._ram_n = want
