"""docs/linux-rules.md K1 accounting (test_memcontrol.c: alloc_anon_50M_check, alloc_pagecache_50M_check,
test_memcg_current_peak)."""

from __future__ import annotations

from kernel_helpers import MB, run_alloc, run_pagecache, values_close

from clustersim.kernel import Node


def test_k1_anon_and_page_cache_are_charged_with_linux_names():
    # docs/linux-rules.md K1. A fresh group reads current 0 and peak 0. A task writes 50M of anon memory: memory.current
    # is at least 50M and within 3% of it, memory.stat anon within 3% of current, peak >= 50M. The task exits and
    # another reads 50M of a file: memory.stat file within 10% of current, peak still >= 50M.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", swap_max=0)
    assert cg.current == 0 and cg.peak == 0

    p, _ = run_alloc(node, "memcg_test", "50M")
    assert cg.current >= 50 * MB and values_close(cg.current, 50 * MB, 3)
    assert values_close(cg.stat["anon"], cg.current, 3)
    assert cg.peak >= 50 * MB

    p.exit()
    node.check()
    assert cg.current < MB   # the anon memory left with the task
    run_pagecache(node, "memcg_test", "50M", "temp")
    assert cg.current >= 50 * MB
    assert values_close(cg.stat["file"], cg.current, 10)
    assert cg.peak >= 50 * MB


def test_k1_page_cache_stays_charged_after_its_reader_exits():
    # docs/linux-rules.md K1 / cgroup-v2.rst: page cache belongs to the file, not the task. A reader exits; its 20M of
    # cache stays charged to the group until reclaim drops it.
    node = Node(memory="512M")
    cg = node.cgroup("cache", max="max")
    reader = run_pagecache(node, "cache", "20M", "data")
    reader.exit()
    node.check()
    assert cg.current == 20 * MB and cg.stat["file"] == 20 * MB


def test_k1_charges_are_hierarchical_and_peak_never_drops():
    # docs/linux-rules.md K1 / page_counter: a child's charge shows in every ancestor; peak keeps the high-water mark
    # after the memory is gone.
    node = Node(memory="512M")
    parent = node.cgroup("p", max="max")
    child = node.cgroup("p/c", max="max")
    p, r = run_alloc(node, "p/c", "30M")
    assert parent.current == child.current > 30 * MB
    p.munmap(r)
    node.check()
    assert parent.current == child.current == 0
    assert parent.peak >= 30 * MB and child.peak >= 30 * MB
