"""Kernel memory that grows with load: the page cache's slab objects and the tasks' kernel stacks.

Linux allocates these with GFP_KERNEL from unmovable (or reclaimable) pageblocks, and when those are full
they fall back into movable blocks (page_alloc.py, K19), where compaction cannot move them. The model keeps
one pool of slab pages sized from the node's load at each ``resize`` (once per ``Node.advance``):

- the page cache's xarray: one ``struct xa_node`` of XA_NODE_BYTES per XA_CHUNK_SIZE cached pages
  (include/linux/xarray.h, XA_CHUNK_SHIFT 6; the radix_tree_node slab's object size on 64-bit);
- one inode and one dentry per file (INODE_DENTRY_BYTES, an estimate [E] from /proc/slabinfo object
  sizes of ext4_inode_cache and dentry on x86-64);

and gives each task one kernel stack of THREAD_SIZE per thread (arch/x86/include/asm/page_64_types.h:
16 KiB) when it is spawned, freed when it exits (``alloc_stacks`` / ``free_stacks``, as fork's
alloc_thread_stack_node() and the task's release do).

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
    """Slab pages the load needs now: xarray nodes of the cached pages, inodes and dentries of the files."""
    n = mm.pt.nrows
    cached = int(mm.pt.cnt[:n, CACHE].sum())
    nbytes = -(-cached // XA_CHUNK_SIZE) * XA_NODE_BYTES + len(mm.files) * INODE_DENTRY_BYTES
    return -(-nbytes // PAGE_SIZE)


def _alloc_kernel(mm: MM, n: int) -> tuple[np.ndarray, float]:
    """GFP_KERNEL order-0 pages: reclaim directly when free memory would drop below the min watermark, and
    take no more than that leaves. Returns (the pages' blocks, seconds of direct reclaim)."""
    room, cost = mm.phys.nr_free - mm.phys.wmark_min, 0.0
    if n > room:
        cost = vmscan.direct_reclaim(mm, n - room).cost_s
        room = mm.phys.nr_free - mm.phys.wmark_min
    return mm.phys.alloc_pages(min(n, max(0, room)), movable=False), cost


def resize(mm: MM) -> float:
    """Bring the pool to its target: allocate unmovable pages or free an evenly spread share of the pool.
    Returns the seconds direct reclaim took."""
    have, want = len(mm.slab_blocks), target_pages(mm)
    cost = 0.0
    if want > have:
        got, cost = _alloc_kernel(mm, want - have)
        mm.slab_blocks = np.concatenate([mm.slab_blocks, got])
    elif want < have:
        drop = np.zeros(have, dtype=bool)
        drop[(np.arange(have - want) * have) // (have - want)] = True
        mm.phys.free_pages(mm.slab_blocks[drop], movable=False)
        mm.slab_blocks = mm.slab_blocks[~drop]
    return cost


def alloc_stacks(mm: MM, pid: int, threads: int) -> float:
    """Kernel stacks for a new task's ``threads``; returns the seconds of direct reclaim they needed."""
    got, cost = _alloc_kernel(mm, threads * (THREAD_SIZE // PAGE_SIZE))
    mm.stack_blocks[pid] = got
    return cost


def free_stacks(mm: MM, pid: int) -> None:
    """The task is gone: its kernel stacks go back."""
    blocks = mm.stack_blocks.pop(pid, None)
    if blocks is not None:
        mm.phys.free_pages(blocks, movable=False)


def pages(mm: MM) -> int:
    """Pages the slab pool and the kernel stacks hold now."""
    return len(mm.slab_blocks) + sum(len(b) for b in mm.stack_blocks.values())


def all_blocks(mm: MM) -> np.ndarray:
    """The block of every page the slab pool and the kernel stacks hold."""
    return np.concatenate([mm.slab_blocks, *mm.stack_blocks.values()])
