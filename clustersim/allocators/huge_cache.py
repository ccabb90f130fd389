"""HugeAllocator and HugeCache: whole hugepages for Temeraire (tcmalloc/huge_allocator.h, huge_cache.h).

HugeAllocator hands out hugepage-aligned address space that is not backed (fresh or released), best fit, and
grows the heap by mmap. HugeCache keeps empty *backed* hugepages so that a returning demand does not refault
them. Its size limit follows a 2 s window of demand (hugepages handed out): when the cache holds more than
``demand_max - demand_min`` over the window, the surplus is released (Temeraire, OSDI 2021, Sec. 4.3 and
Fig. 10: the cache absorbs the saw-tooth of a fluctuating demand, not its level).

Both are range sets in hugepage (vhp) units (huge_allocator.py): row ``ALLOC`` the allocator's unbacked
space, row ``CACHE`` the cached hugepages. The demand window is a short array of per-epoch (epoch, min,
max) usage, oldest first; ``cache_n`` holds the hugepages handed out and the window's entry count. Growing
the heap is a syscall, so ``cache_get`` answers -1 and the caller maps more space and asks again.

Left out: tcmalloc's cache-limit growth on misses (MaybeGrowCacheLimit) and its off-peak tracker; the
limit here is the demand window alone.
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit
from clustersim.units import HPAGE_PAGES

from .huge_allocator import COUNT, TOTAL, emit_range, end_group, rs_best_fit, rs_insert, rs_take_largest
from .min_max_tracker import HIGH, LOW, track_min_max
from .page_space import PageState

ALLOC, CACHE = 0, 1              # range-set rows: unbacked address space, cached backed hugepages
USAGE, NEPOCHS = 0, 1            # cache_n[]: hugepages handed out and not returned, window entries
# epochs[] is a min_max_tracker table: per epoch, the least and the most hugepages in use
# The demand window is kept as per-epoch (min, max) pairs; 8 epochs per 2 s window bound the error of the
# window edges to a quarter second, well below the 1 s background tick.
WINDOW_EPOCHS = 8
_FREE_BACKED = int(PageState.FREE_BACKED)


def new_window(capacity: int = WINDOW_EPOCHS + 2) -> tuple[np.ndarray, np.ndarray]:
    """An empty demand window and counters: (epochs, cache_n)."""
    return np.zeros((capacity, 3), dtype=np.int64), np.zeros(2, dtype=np.int64)


@njit
def record_usage(epochs, cache_n, epoch):
    """Fold the current usage into ``epoch``'s entry; drop entries a whole window old.

    REQUIRES: room for one more entry.
    """
    cache_n[NEPOCHS] = track_min_max(epochs, cache_n[NEPOCHS], epoch, cache_n[USAGE], epoch - WINDOW_EPOCHS + 1)


@njit
def limit_hp(epochs, cache_n):
    """demand_max - demand_min over the window: the swing the cache should absorb."""
    n = cache_n[NEPOCHS]
    if n == 0:
        return 0
    low, high = epochs[0, LOW], epochs[0, HIGH]
    for i in range(1, n):
        low, high = min(low, epochs[i, LOW]), max(high, epochs[i, HIGH])
    return high - low


@inline
def cache_get(rs, rs_n, epochs, cache_n, n_hp, epoch):
    """First vhp of ``n_hp`` contiguous hugepages: cached (backed) if possible, else unbacked; -1 (and
    nothing changed) when the heap must grow first."""
    start = rs_best_fit(rs, rs_n, CACHE, n_hp)
    if start < 0:
        start = rs_best_fit(rs, rs_n, ALLOC, n_hp)
        if start < 0:
            return -1
    cache_n[USAGE] += n_hp
    record_usage(epochs, cache_n, epoch)
    return start


@njit
def cache_release(rs, rs_n, counts, n_hp, out, ends, out_n):
    """Release up to ``n_hp`` cached hugepages, largest ranges first, as one group of the plan; they go back
    to the HugeAllocator. Returns the free backed 4 KiB pages released."""
    left, pages, any_range = n_hp, 0, False
    while left > 0 and rs_n[CACHE, COUNT] > 0:
        start, n = rs_take_largest(rs, rs_n, CACHE)
        take = min(n, left)
        if take < n:
            rs_insert(rs, rs_n, CACHE, start + take, n - take)
        emit_range(out, out_n, start * HPAGE_PAGES, take * HPAGE_PAGES)
        for v in range(start, start + take):
            pages += counts[v, _FREE_BACKED]
        rs_insert(rs, rs_n, ALLOC, start, take)
        any_range = True
        left -= take
    if any_range:
        end_group(ends, out_n)
    return pages


@njit
def cache_shrink(rs, rs_n, epochs, cache_n, counts, epoch, out, ends, out_n):
    """Release cached hugepages beyond the demand limit; returns the 4 KiB pages released."""
    record_usage(epochs, cache_n, epoch)
    surplus = rs_n[CACHE, TOTAL] - limit_hp(epochs, cache_n)
    return cache_release(rs, rs_n, counts, surplus, out, ends, out_n) if surplus > 0 else 0


@inline
def cache_put(rs, rs_n, epochs, cache_n, counts, start, n_hp, epoch, out, ends, out_n):
    """Return ``n_hp`` empty backed hugepages at vhp ``start``; the surplus over the limit is released."""
    cache_n[USAGE] -= n_hp
    record_usage(epochs, cache_n, epoch)
    rs_insert(rs, rs_n, CACHE, start, n_hp)
    cache_shrink(rs, rs_n, epochs, cache_n, counts, epoch, out, ends, out_n)
