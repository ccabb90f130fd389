"""docs/linux-rules.md K5-K8: memory.high, memory.max, memory.swap.max and memory.oom.group (test_memcontrol.c)."""

from __future__ import annotations

import pytest
from kernel_helpers import MB, run_alloc, run_pagecache, values_close

from clustersim.kernel import Node

SWAP_DEVICES = [{"kind": "disk", "size": "1G"}, {"kind": "zram", "size": "1G"}]


# --- docs/linux-rules.md K5 memory.high ---------------------------------------------------------------------
def test_k5_high_throttles_an_anon_allocation_but_never_kills_it():
    # docs/linux-rules.md K5, test_memcg_high. high=30M, no swap: a 31M anon allocation completes (every page written,
    # the task alive). The charge over high counts a `high` event and throttles the task; no `max`, no `oom`.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", high="30M", swap_max=0)
    p, r = run_alloc(node, "memcg_test", "31M")
    assert p.alive and p.read(r) == 1.0
    assert cg.events["high"] > 0 and cg.events["max"] == 0 and cg.events["oom"] == 0
    assert p.stall_seconds > 0


def test_k5_page_cache_settles_at_high():
    # docs/linux-rules.md K5, alloc_pagecache_max_30M under high. 50M of page cache leaves memory.current near 30M (5%):
    # reclaim after each charge above high drops the oldest cache. memory.events high > 0.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", high="30M", swap_max=0)
    run_pagecache(node, "memcg_test", "50M", "temp")
    assert values_close(cg.current, 30 * MB, 5)
    assert cg.events["high"] > 0


def test_k5_high_is_enforced_inside_one_large_call_before_max():
    # docs/linux-rules.md K5, test_memcg_high_sync. high=30M, max=140M, no swap. One 139M write (one kernel entry, below
    # max) raises `high` events and throttles while `max` stays 0; a single 200M write then also hits max.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", high="30M", max="140M", swap_max=0)
    p = node.spawn(cgroup="memcg_test")
    r = p.mmap("139M")
    p.touch(r)
    node.check()
    assert cg.events["high"] > 0 and cg.events["max"] == 0
    assert p.stall_seconds > 0
    p.exit()
    node.check()
    high_before = cg.events["high"]
    run_alloc(node, "memcg_test", "200M")
    assert cg.events["high"] > high_before and cg.events["max"] > 0


# --- docs/linux-rules.md K6 memory.max ----------------------------------------------------------------------
def test_k6_max_oom_kills_an_anon_allocation_over_it():
    # docs/linux-rules.md K6, test_memcg_max / test_memcg_oom_events. max=30M, no swap: a 100M anon allocation is
    # OOM-killed; cgroup.procs is empty, memory.events oom=1 and oom_kill=1, and the killed task's memory is gone.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", max="30M", swap_max=0)
    p, _ = run_alloc(node, "memcg_test", "100M")
    assert not p.alive and cg.procs == []
    assert cg.events["oom"] == 1 and cg.events["oom_kill"] == 1
    assert cg.current == 0 and cg.peak <= 30 * MB


def test_k6_page_cache_under_max_is_reclaimed_not_killed():
    # docs/linux-rules.md K6, alloc_pagecache_max_30M under max. 50M of page cache ends with 29M < current <= 30M, the
    # reader alive, and memory.events max > 0.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", max="30M", swap_max=0)
    p = run_pagecache(node, "memcg_test", "50M", "temp")
    assert p.alive
    assert 29 * MB < cg.current <= 30 * MB
    assert cg.events["max"] > 0 and cg.events["oom"] == 0


# --- docs/linux-rules.md K7 swap limits ---------------------------------------------------------------------
@pytest.mark.parametrize("swap", SWAP_DEVICES, ids=lambda s: s["kind"])
def test_k7_max_plus_swap_max_bounds_what_a_task_can_hold(swap):
    # docs/linux-rules.md K7, test_memcg_swap_max_peak. max=30M, swap.max=30M. A 100M anon allocation fills memory and
    # swap and is OOM-killed: oom=oom_kill=1, memory.peak and swap.peak >= 29M. Then a 50M allocation fits: current near
    # 30M (3%) and current + swap.current near 50M (3%), with max events > 0.
    node = Node(memory="1G", swap=swap)
    cg = node.cgroup("memcg_test", max="30M", swap_max="30M")
    p, _ = run_alloc(node, "memcg_test", "100M")
    assert not p.alive
    assert cg.events["oom"] == 1 and cg.events["oom_kill"] == 1
    assert cg.peak >= 29 * MB and cg.swap_peak >= 29 * MB

    q, r = run_alloc(node, "memcg_test", "50M")
    assert q.alive and q.read(r) == 1.0
    assert values_close(cg.current, 30 * MB, 3)
    assert values_close(cg.current + cg.swap_current, 50 * MB, 3)
    assert cg.events["max"] > 0
    assert node.vmstat["pswpout"] > 0


# --- docs/linux-rules.md K8 group OOM -----------------------------------------------------------------------
def test_k8_oom_group_kills_every_task_of_the_leaf_and_spares_the_parent():
    # docs/linux-rules.md K8, test_memcg_oom_group_leaf_events. Child: max=50M, swap.max=0, oom.group=1. The selftest
    # runs a 60M task in the parent, a cgroup.procs write Linux refuses with EBUSY once the parent has +memory in
    # subtree_control (the no-internal-process rule, K17); here it runs in a sibling leaf. The child runs two 1M
    # tasks and a 100M hog. The hog's OOM kills all three child tasks, the sibling's task survives, and the
    # parent's memory.events oom_kill includes the child's (no memory_localevents) while its local events show none.
    node = Node(memory="1G")
    parent = node.cgroup("memcg_test_0", max="max")
    child = node.cgroup("memcg_test_0/memcg_test_1", max="50M", swap_max=0, oom_group=True)
    node.cgroup("memcg_test_0/memcg_test_2")
    big, _ = run_alloc(node, "memcg_test_0/memcg_test_2", "60M")
    small = [run_alloc(node, "memcg_test_0/memcg_test_1", "1M")[0] for _ in range(2)]
    hog, _ = run_alloc(node, "memcg_test_0/memcg_test_1", "100M")
    assert not hog.alive and not any(s.alive for s in small)
    assert child.procs == [] and big.alive
    assert child.events["oom_kill"] > 0 and child.events["oom_group_kill"] == 1
    assert parent.events["oom_kill"] > 0
    assert parent.events_local["oom_kill"] == 0


def test_k8_oom_group_on_the_parent_kills_parent_and_child_tasks():
    # docs/linux-rules.md K8, test_memcg_oom_group_parent_events. Parent: max=80M, swap.max=0, oom.group=1, with a 60M
    # task in a sibling leaf (the parent itself may not hold processes, K17); the child's two 1M tasks and 100M hog
    # push the parent over max. Every task in the parent's subtree dies.
    node = Node(memory="1G")
    parent = node.cgroup("memcg_test_0", max="80M", swap_max=0, oom_group=True)
    child = node.cgroup("memcg_test_0/memcg_test_1", max="max")
    sibling = node.cgroup("memcg_test_0/memcg_test_2")
    run_alloc(node, "memcg_test_0/memcg_test_2", "60M")
    for _ in range(2):
        run_alloc(node, "memcg_test_0/memcg_test_1", "1M")
    run_alloc(node, "memcg_test_0/memcg_test_1", "100M")
    assert child.procs == [] and sibling.procs == [] and parent.procs == []
    assert parent.current == 0


def test_k8_oom_score_adj_min_is_exempt_from_the_group_kill():
    # docs/linux-rules.md K8, test_memcg_oom_group_score_events. max=50M, swap.max=0, oom.group=1: a 1M task with
    # oom_score_adj=-1000, another 1M task and a 100M hog. The group kill spares the -1000 task. oom_kill
    # reads 3 for two deaths, as in Linux: the victim is counted once by itself and again as a group member.
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test_0", max="50M", swap_max=0, oom_group=True)
    safe, r = run_alloc(node, "memcg_test_0", "1M", oom_score_adj=-1000)
    other, _ = run_alloc(node, "memcg_test_0", "1M")
    hog, _ = run_alloc(node, "memcg_test_0", "100M")
    assert safe.alive and safe.read(r) == 1.0
    assert not other.alive and not hog.alive
    assert cg.events["oom_kill"] == 3
    assert cg.procs == [safe]
