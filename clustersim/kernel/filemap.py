"""The page cache of regular files: reads charge their pages to the reader's memcg (mm/filemap.c).

A file is a mapping-less region of the node's page table whose pages are clean CACHE pages. Reading pages
that reclaim dropped reads them again (workingset_refault_file). Pages stay cached, and charged, after the
reader exits, until reclaim drops them. Left out: dirty pages and writeback, readahead, shared mappings.
"""

from __future__ import annotations

import numpy as np

from ..units import PAGE_SIZE
from .memory import charging, ensure_page_tables, lru_add, map_pages
from .mm import MM, Task
from .pagetable import CACHE, NONE, uniq_rows
from .slowpath import over_high, reserve
from .vma import file_region

# Reading a cached page copies 4 KiB to user space; a miss also reads the disk (NVMe-class, [E]).
CACHE_HIT_S = 0.3e-6
CACHE_MISS_S = 20e-6


def read_file(mm: MM, p: Task, nbytes: int, name: str) -> float:
    """Read the first ``nbytes`` of ``name`` (growing the file if needed); returns seconds spent."""
    region = file_region(mm, name, -(-nbytes // PAGE_SIZE), p.memcg)
    npages = -(-nbytes // PAGE_SIZE)
    flat = region.flat(np.array([0]), np.array([npages]))
    missing = flat[mm.pt.flat_state[flat] == NONE]
    if mm.pt.cnt[region.rows, CACHE].sum() > 0 or region.ever_read:
        refaults = len(missing) if region.ever_read else 0
        mm.vmstat["workingset_refault_file"] += refaults
        if refaults:   # charged to the memcg the file's pages are charged to
            mm.memcgs.all[int(mm.pt.memcg[region.start_row])].counters["workingset_refault_file"] += refaults
    region.ever_read = True
    cost = (len(flat) - len(missing)) * CACHE_HIT_S
    start = 0
    while start < len(missing) and p.alive:
        allowed, stall = reserve(mm, p, len(missing) - start)
        cost += stall
        p.stall(stall, "reclaim")
        if allowed <= 0:
            break
        chunk = missing[start:start + allowed]
        rows = uniq_rows(chunk)
        with charging(mm, rows):
            blocks = mm.phys.alloc_pages(len(chunk))
            map_pages(mm, chunk, CACHE, blocks)
        throttle = over_high(mm, p, len(chunk))
        p.stall(throttle, "throttle")
        cost += len(chunk) * CACHE_MISS_S + throttle
        start += len(chunk)
    lru_add(mm, region.rows)
    return cost


__all__ = ["ensure_page_tables", "read_file"]
