"""Sorted blocks and the free structures over them: many keys across many blocks, growth, order."""

from __future__ import annotations

import numpy as np

from clustersim.allocators.best_fit import BestFitFreeList, place_best_fit
from clustersim.allocators.extents import ExtentSet
from clustersim.allocators.sorted_blocks import BLOCK_KEYS, insert, items, new_buffer, remove, reserve, view


def test_keys_stay_sorted_across_splits_growth_and_emptied_blocks():
    # 20 blocks' worth of keys in random order split blocks and grow the pool; removing the lower three
    # quarters of the keys empties whole blocks back into the pool; the map lists what is left, in order.
    rng = np.random.default_rng(3)
    keys = rng.permutation(20 * BLOCK_KEYS) * 7
    buf = reserve(new_buffer(1, 0), len(keys))
    v = view(buf)
    for k in keys.tolist():
        insert(v, 0, k, k + 1)
    got_k, got_v = items(v, 0)
    assert got_k.tolist() == sorted(keys.tolist()) and (got_v == got_k + 1).all()
    blocks_full = int(v.nblocks[0])
    cut = 15 * BLOCK_KEYS * 7
    for k in keys.tolist():
        if k < cut:
            assert remove(v, 0, k) == k + 1
    assert items(v, 0)[0].tolist() == sorted(k for k in keys.tolist() if k >= cut)
    assert v.nblocks[0] <= blocks_full // 4 + 1
    assert v.head[3] == v.head[0] - v.nblocks[0]   # every emptied block is back in the pool


def test_best_fit_over_hundreds_of_holes_takes_the_smallest_then_lowest():
    # 300 holes of 3 pages and, among them, holes of 2 pages at pages 4000 and 1000: a 2-page span takes
    # the lower 2-page hole, the next one the other, then 3-page holes from the lowest address.
    free = BestFitFreeList()
    for start in range(0, 6000, 20):
        free.insert(start, 3)
    free.insert(4010, 2)
    free.insert(1010, 2)
    free.reserve(4)
    out = np.empty(4, dtype=np.int64)
    assert place_best_fit(free.buf, np.array([2, 2, 3, 3]), out, 0) == 4
    assert out.tolist() == [1010, 4010, 0, 20]
    assert len(free) == 298 and free.free_pages == 300 * 3 - 6


def test_extent_set_evicts_in_insertion_order_and_a_merge_is_newest():
    # Extents at 0, 10, 20 inserted in that order; 5..10 then joins the first, which becomes the newest.
    ext = ExtentSet("dirty")
    for start in (0, 10, 20):
        ext.insert(start, 5)
    assert ext.insert(5, 5) == (0, 15)       # merges 0..5, 5..10 and 10..15
    starts, lengths = ext.evict_to(0)
    assert starts.tolist() == [20, 0] and lengths.tolist() == [5, 15]
