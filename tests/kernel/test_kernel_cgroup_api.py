"""docs/linux-rules.md K17: the cgroup and munmap interface as a selftest author expects it.

mkdir creates a cgroup with the defaults; limits read back in bytes or "max"; writing memory.max below the
usage reclaims and then OOM-kills at once (memory_max_write(), mm/memcontrol.c); cgroup v2's no-internal-process
rule (cgroup-v2.rst); munmap of an unmapped range succeeds; a bad swap option names its key.
"""

from __future__ import annotations

import pytest
from kernel_helpers import MB, PAGE, run_alloc, run_pagecache, values_close
from test_kernel_errors import raises

from clustersim.kernel import Node


# --- mkdir and the control files as they read back ----------------------------------------------------------
def test_k17_cgroup_of_a_missing_path_is_mkdir_with_default_settings():
    # mkdir /sys/fs/cgroup/A: memory.min and memory.low read 0, memory.high, memory.max and memory.swap.max
    # read "max" (cgroup-v2.rst "Memory Interface Files" defaults). Asking for it again returns the same memcg.
    node = Node(memory="128M")
    cg = node.cgroup("A")
    assert (cg.min, cg.low, cg.high, cg.max, cg.swap_max, cg.zswap_max) == (0, 0, "max", "max", "max", "max")
    assert node.cgroup("A").memcg is cg.memcg and cg.current == 0
    assert node.cgroup("A/B").path == "A/B"   # the parent exists now: mkdir A/B works
    node.check()


def test_k17_limits_read_back_in_bytes_rounded_down_to_pages():
    # page_counter_memparse() takes bytes and rounds down to pages; the files print pages * PAGE_SIZE.
    # 30001 bytes is 7 pages = 28672 bytes; "max" reads "max".
    node = Node(memory="128M")
    cg = node.cgroup("A", min="1M", low="2M", high="30001", max="30M", swap_max=0)
    assert (cg.min, cg.low, cg.high, cg.max, cg.swap_max) == (MB, 2 * MB, 7 * PAGE, 30 * MB, 0)
    node.cgroup("A", max="max")
    assert cg.max == "max"


# --- memory.max / memory.high written below the usage ---------------------------------------------------------
def test_k17_max_written_below_anon_usage_without_swap_oom_kills_at_once():
    # 60M of anonymous memory, no swap: nothing is reclaimable, so after MAX_RECLAIM_RETRIES (16) fruitless
    # rounds memory_max_write() invokes the OOM killer, which kills the only task: current 0, oom = oom_kill = 1.
    node = Node(memory="512M")
    cg = node.cgroup("A")
    p, _ = run_alloc(node, "A", "60M")
    assert values_close(cg.current, 60 * MB, 3)
    node.cgroup("A", max="30M")
    assert not p.alive and cg.current == 0
    assert cg.events["oom"] == 1 and cg.events["oom_kill"] == 1 and cg.events["max"] == 0
    assert cg.max == 30 * MB
    node.check()


def test_k17_max_written_below_page_cache_reclaims_without_killing():
    # 50M of page cache is reclaimable: the write reclaims until memory.current <= 30M; the reader lives on.
    node = Node(memory="512M")
    cg = node.cgroup("A")
    p = run_pagecache(node, "A", "50M", "f")
    node.cgroup("A", max="30M")
    assert p.alive and 29 * MB < cg.current <= 30 * MB
    assert cg.events["oom"] == 0 and cg.events["oom_kill"] == 0
    node.check()


def test_k17_max_written_below_anon_usage_with_swap_swaps_out():
    # With a 1G disk swap device the 60M task's anonymous pages go to swap until current <= 30M; nothing dies and
    # current + swap.current still holds the 60M (within 3%).
    node = Node(memory="512M", swap={"kind": "disk", "size": "1G"})
    cg = node.cgroup("A")
    p, _ = run_alloc(node, "A", "60M")
    node.cgroup("A", max="30M")
    assert p.alive and cg.current <= 30 * MB
    assert values_close(cg.current + cg.swap_current, 60 * MB, 3)
    assert cg.events["oom_kill"] == 0
    node.check()


def test_k17_high_written_below_usage_reclaims_but_never_kills():
    # memory_high_write() reclaims the excess and gives up without killing: page cache settles at <= 30M;
    # unreclaimable anon (no swap) stays at 60M with its task alive.
    node = Node(memory="512M")
    cache, anon = node.cgroup("cache"), node.cgroup("anon")
    run_pagecache(node, "cache", "50M", "f")
    p, _ = run_alloc(node, "anon", "60M")
    node.cgroup("cache", high="30M")
    node.cgroup("anon", high="30M")
    assert 29 * MB < cache.current <= 30 * MB
    assert p.alive and values_close(anon.current, 60 * MB, 3)
    assert anon.events["oom"] == 0 and anon.events["high"] == 0   # the write itself records no event
    node.check()


# --- no internal processes (cgroup-v2.rst) --------------------------------------------------------------------
def test_k17_spawn_into_a_cgroup_with_children_is_ebusy_and_the_root_is_exempt():
    # Every non-root cgroup of the model enables the memory controller for its children, so A (with child A/B)
    # cannot take processes: EBUSY, as cgroup_migrate_vet_dst() returns. The leaf and the root can.
    node = Node(memory="128M")
    node.cgroup("A")
    node.cgroup("A/B")
    with raises("EBUSY", "'A'", "no internal processes"):
        node.spawn(cgroup="A")
    assert node.spawn(cgroup="A/B").alive and node.spawn().alive


def test_k17_mkdir_under_a_populated_cgroup_is_ebusy_until_it_is_empty():
    # The other half of the rule: C holds a task, so it cannot get a child (enabling +memory in C's
    # subtree_control would be EBUSY). Once the task exits, C/D can be created.
    node = Node(memory="128M")
    node.cgroup("C")
    p = node.spawn(cgroup="C")
    with raises("EBUSY", "'C/D'", "parent 'C' holds processes"):
        node.cgroup("C/D")
    p.exit()
    assert node.cgroup("C/D").path == "C/D"


# --- munmap and swap options ---------------------------------------------------------------------------------
def test_k17_munmap_of_an_already_unmapped_region_succeeds():
    # munmap(2) of a range with no mapping returns 0 (do_vmi_munmap() finds no VMA). 8M mapped, unmapped twice:
    # the second call changes nothing; another task's region is still EINVAL, a dead task still ESRCH.
    node = Node(memory="128M")
    p, other = node.spawn(), node.spawn()
    r = p.mmap("8M")
    p.touch(r)
    p.munmap(r)
    free = node.meminfo["MemFree"]
    p.munmap(r)
    assert node.meminfo["MemFree"] == free and p.regions == []
    with raises("EINVAL", "not a live mapping"):
        p.munmap(other.mmap("4M"))
    p.exit()
    with raises("ESRCH"):
        p.munmap(r)
    node.check()


@pytest.mark.parametrize("swap, words", [
    ("zram", ("swap='zram'", "a mapping")),
    ({"kind": "zram", "size": "1G", "compression_ratio": "x"}, ("swap.compression_ratio='x'", "[1, 20]")),
    ({"kind": "floppy"}, ("swap.kind='floppy'", "zswap")),
])
def test_k17_a_bad_swap_option_names_its_key_and_value(swap, words):
    with raises("EINVAL", *words):
        Node(memory="128M", swap=swap)
