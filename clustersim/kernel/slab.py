"""Kernel memory that grows with load: the page cache's slab objects and the tasks' kernel stacks.

Linux allocates these with GFP_KERNEL from unmovable (or reclaimable) pageblocks, and when those are full
they fall back into movable blocks (page_alloc.py, K19), where compaction cannot move them. The model keeps
one pool of such pages sized from the node's load at each ``resize`` (once per ``Node.advance``):

- the page cache's xarray: one ``struct xa_node`` of XA_NODE_BYTES per XA_CHUNK_SIZE cached pages
  (include/linux/xarray.h, XA_CHUNK_SHIFT 6; the radix_tree_node slab's object size on 64-bit);
- one inode and one dentry per file (INODE_DENTRY_BYTES, an estimate [E] from /proc/slabinfo object
  sizes of ext4_inode_cache and dentry on x86-64);
- one kernel stack of THREAD_SIZE per live thread (arch/x86/include/asm/page_64_types.h: 16 KiB).

Page tables of PTE-mapped memory (memory.py) and the compressed swap pool (swap.py) are allocated as
unmovable pages where they arise. When the pool shrinks, the pages freed are spread evenly over it (a slab
page is freed only once all its objects are, so freeing is scattered, not last-in first-out). The pool is
not charged to a memcg; the direct reclaim its growth needs is booked as kswapd's time. Left out: the
slab shrinkers' own LRU, per-cpu partial slabs, kmem accounting.
"""

from __future__ import annotations

import numpy as np

from ..units import PAGE_SIZE
from . import vmscan
from .mm import MM
from .pagetable import CACHE

XA_NODE_BYTES = 576
XA_CHUNK_SIZE = 64
INODE_DENTRY_BYTES = 1280
THREAD_SIZE = 16 << 10


def target_pages(mm: MM) -> int:
    """Pages the load needs now: xarray nodes of the cached pages, inodes of the files, kernel stacks."""
    n = mm.pt.nrows
    cached = int(mm.pt.cnt[:n, CACHE].sum())
    threads = sum(p.threads for p in mm.procs if p.alive)
    nbytes = -(-cached // XA_CHUNK_SIZE) * XA_NODE_BYTES + len(mm.files) * INODE_DENTRY_BYTES
    return -(-nbytes // PAGE_SIZE) + threads * (THREAD_SIZE // PAGE_SIZE)


def resize(mm: MM) -> float:
    """Bring the pool to its target: allocate unmovable pages (GFP_KERNEL: reclaiming directly when free
    memory would drop below the min watermark, and taking no more than that leaves) or free an evenly
    spread share of the pool. Returns the seconds direct reclaim took."""
    have, want = len(mm.slab_blocks), target_pages(mm)
    cost = 0.0
    if want > have:
        room = mm.phys.nr_free - mm.phys.wmark_min
        if want - have > room:
            cost = vmscan.direct_reclaim(mm, want - have - room).cost_s
            room = mm.phys.nr_free - mm.phys.wmark_min
        got = mm.phys.alloc_pages(min(want - have, max(0, room)), movable=False)
        mm.slab_blocks = np.concatenate([mm.slab_blocks, got])
    elif want < have:
        drop = np.zeros(have, dtype=bool)
        drop[(np.arange(have - want) * have) // (have - want)] = True
        mm.phys.free_pages(mm.slab_blocks[drop], movable=False)
        mm.slab_blocks = mm.slab_blocks[~drop]
    return cost


def pages(mm: MM) -> int:
    """Pages the pool holds now."""
    return len(mm.slab_blocks)
