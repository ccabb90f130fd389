"""docs/linux-rules.md K2-K4: memory.min/low effective protection, low events and memory.reclaim (test_memcontrol.c:
test_memcg_protection, test_memcg_reclaim)."""

from __future__ import annotations

import pytest
from kernel_helpers import MB, run_alloc, run_pagecache, values_close

from clustersim.kernel import KernelError, Node

CHILD_PROTECTION = ("75M", "25M", "0", "500M")


def protection_scenario(attr: str):
    """test_memcg_protection up to the first 148M allocation.

    A (memory.max=200M, swap.max=0) holds B (attr=50M) and G. B's children C, D, E, F have attr 75M, 25M,
    0 and 500M; C, D, E each hold 50M of page cache (F is empty). G then allocates 148M of anon memory.
    """
    node = Node(memory="1G")
    node.cgroup("A", max="200M", swap_max=0)
    node.cgroup("A/B", **{attr: "50M"})
    node.cgroup("A/G", max="max")
    kids = [node.cgroup(f"A/B/child{i}", **{attr: value}) for i, value in enumerate(CHILD_PROTECTION)]
    for i in range(3):
        run_pagecache(node, f"A/B/child{i}", "50M", f"file{i}")
    assert values_close(node.cgroup("A/B").current, 150 * MB, 3)
    hog, _ = run_alloc(node, "A/G", "148M")
    assert hog.alive
    hog.exit()
    node.check()
    return node, kids


def reclaim_until(cg, goal: int) -> bool:
    """The selftest's reclaim_until(): write current-goal to memory.reclaim until within 3% of goal."""
    reclaimed = False
    for _ in range(5):
        current = cg.current
        if current < goal or values_close(current, goal, 3):
            break
        if reclaimed:
            return False
        try:
            cg.reclaim(current - goal)
            reclaimed = True
        except KernelError as err:
            if err.errno != "EAGAIN":
                return False
    return reclaimed


@pytest.mark.parametrize("attr", ["min", "low"])
def test_k2_protection_is_split_as_effective_protection_inside_b(attr):
    # docs/linux-rules.md K2. After G's 148M, B keeps about its 50M (3%). Inside B the children claim 50M (C) + 25M (D)
    # of B's 50M, so both are scaled down: C near 29M (15%), D near 21M (20%) as memcg_protection.m predicts. E,
    # unprotected, is reclaimed to almost nothing; F, empty, stays at 0.
    node, (c, d, e, f) = protection_scenario(attr)
    b = node.cgroup("A/B")
    assert values_close(b.current, 50 * MB, 3)
    assert values_close(c.current, 29 * MB, 15)
    assert values_close(d.current, 21 * MB, 20)
    assert e.current <= 0.05 * 50 * MB
    assert f.current == 0


def test_k2_memory_min_ooms_an_allocation_that_needs_protected_memory():
    # docs/linux-rules.md K2, memory.min. G then asks for 170M: only 150M of A is not min-protected, so G's task is
    # OOM-killed and B still holds its 50M (3%).
    node, _ = protection_scenario("min")
    hog, _ = run_alloc(node, "A/G", "170M")
    assert not hog.alive
    assert node.cgroup("A").events["oom_kill"] == 1
    assert values_close(node.cgroup("A/B").current, 50 * MB, 3)


def test_k2_memory_low_gives_way_to_an_allocation_that_needs_it():
    # docs/linux-rules.md K2, memory.low. The same 170M allocation succeeds: low-protected memory is reclaimed when
    # nothing else is left, and B shrinks to about 30M (3%), below its low.
    node, _ = protection_scenario("low")
    hog, r = run_alloc(node, "A/G", "170M")
    assert hog.alive and hog.read(r) == 1.0
    assert values_close(node.cgroup("A/B").current, 30 * MB, 3)


def test_k3_only_children_reclaimed_below_their_low_record_low_events():
    # docs/linux-rules.md K3. After the 170M allocation under memory.low: C and D were reclaimed below their low and
    # record memory.events low > 0; E (no protection, memory_recursiveprot off) and F (empty) record none. No child
    # records an oom event.
    node, (c, d, e, f) = protection_scenario("low")
    run_alloc(node, "A/G", "170M")
    assert c.events["low"] > 0 and d.events["low"] > 0
    assert e.events["low"] == 0 and f.events["low"] == 0
    assert all(k.events["oom"] == 0 for k in (c, d, e, f))


@pytest.mark.parametrize("attr", ["min", "low"])
def test_k4_memory_reclaim_ignores_the_targets_own_protection(attr):
    # docs/linux-rules.md K4. After K2, memory.reclaim on C (effective protection about 29M) brings it to 10M: the
    # reclaim target's own protection does not count, and the earlier emin/elow is dismissed.
    node, (c, *_) = protection_scenario(attr)
    assert reclaim_until(c, 10 * MB)
    node.check()
    assert c.current < 10 * MB or values_close(c.current, 10 * MB, 3)


def test_k4_memory_reclaim_returns_eagain_when_the_goal_is_out_of_reach():
    # docs/linux-rules.md K4. Without swap 20M of anon memory cannot be reclaimed: writing 10M to memory.reclaim fails
    # with EAGAIN and nothing is taken.
    node = Node(memory="512M")
    cg = node.cgroup("t", max="max")
    run_alloc(node, "t", "20M")
    before = cg.current
    with pytest.raises(KernelError) as err:
        cg.reclaim("10M")
    assert err.value.errno == "EAGAIN"
    assert "memory.reclaim" in err.value.message
    node.check()
    assert cg.current == before


@pytest.mark.parametrize("swap", [None, {"kind": "disk", "size": "1G"}], ids=["swapless", "disk"])
def test_k4_memory_reclaim_takes_file_and_with_swap_anon_down_to_30m(swap):
    # docs/linux-rules.md K4, test_memcg_reclaim. The group holds 50M of page cache, plus 50M of anon memory when swap
    # exists; usage is near 50M or 100M (10%). memory.reclaim then brings it to 30M (3%), which needs anon swapped out
    # when there is swap.
    node = Node(memory="1G", swap=swap)
    cg = node.cgroup("memcg_test", max="max")
    run_pagecache(node, "memcg_test", "50M", "temp")
    expected = 50 * MB
    if swap:
        run_alloc(node, "memcg_test", "50M")
        expected = 100 * MB
    assert values_close(cg.current, expected, 10)
    assert reclaim_until(cg, 30 * MB)
    node.check()
    if swap:
        assert cg.swap_current > 0
