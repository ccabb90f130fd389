"""Determinism: the same seed and calls give identical observations; the seed only moves what is random
(where boot-time kernel memory lands, hence where pages and THPs are placed)."""

from __future__ import annotations

import numpy as np
from kernel_helpers import MB

from clustersim.kernel import MADV, Node


def scenario(seed: int):
    """A small workload mixing THP faults, frees, reclaim, swap, khugepaged and page cache."""
    node = Node(memory="256M", seed=seed, swap={"kind": "zram", "size": "128M"},
                thp={"enabled": "always", "scan_sleep": "100ms"})
    node.cgroup("a", max="96M")
    p = node.spawn(cgroup="a")
    r = p.mmap("64M")
    p.touch(r)
    p.madvise_many(r, np.arange(0, 64 * MB, 2 * MB) + MB, np.full(32, 4096), MADV.DONTNEED)
    p.madvise(r, 32 * MB, 16 * MB, MADV.FREE)
    p.read_file("24M", "log")
    q = node.spawn(cgroup="a")
    s = q.mmap("40M")
    q.touch(s)
    node.advance("2s")
    node.check()
    return node, p, q


def observations(node, p, q):
    a = node.cgroup("a")
    return (dict(node.vmstat), p.smaps, q.smaps, a.stat, a.events, node.meminfo, p.stall_seconds,
            q.stall_seconds, node.free_pageblocks)


def test_same_seed_same_calls_give_identical_observations():
    # Two nodes, seed 7, the same calls: vmstat, smaps, memory.stat/events, meminfo, stalls and the
    # pageblock map are equal, exactly.
    a, b = scenario(7), scenario(7)
    assert observations(*a) == observations(*b)
    assert np.array_equal(a[0].phys.used, b[0].phys.used)


def test_a_different_seed_places_boot_kernel_memory_and_pages_elsewhere():
    # The seed decides which pageblocks boot-time kernel memory occupies; the same calls then place the
    # task's pages and THPs in different blocks, while page totals stay the same.
    (n1, *_), (n2, *_) = scenario(1), scenario(2)
    assert not np.array_equal(Node(memory="256M", seed=1).phys.used, Node(memory="256M", seed=2).phys.used)
    assert not np.array_equal(n1.phys.used, n2.phys.used)
    assert int(n1.phys.used.sum()) == int(n2.phys.used.sum())
