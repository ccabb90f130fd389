"""Event counters of tasks and memcgs: each event is charged where it happens, to the task or memcg that owns
the page, with Linux's names (docs/kernel.md, Event counters; cgroup-v2.rst memory.stat).

memory.stat's event counters (thp_fault_alloc, thp_collapse_alloc, pglazyfree, ...) are per memcg and read
hierarchically; counters Linux keeps only in /proc/vmstat (thp_split_pmd, thp_split_page) are kept per task
as well (``Process.vm_events``), so that summed over the tasks or memcgs they give the node's vmstat.
"""

from __future__ import annotations

import pytest
from golden_scenarios import CONFIGS, allocator_scenario, scenario
from kernel_helpers import MB

from clustersim.kernel import MADV, Node
from clustersim.kernel.memcg import MEMCG_EVENTS

THP = 2 * MB
TASK_EVENTS = ("thp_split_pmd", "thp_split_page")


def _two_tasks():
    # Two tasks in sibling memcgs svc/a and svc/b fault their MADV_HUGEPAGE heaps in as THPs (4 and 2).
    node = Node(memory="512M", profile="linux-6.12", seed=0, thp={"enabled": "madvise"}, swap={"kind": "none"})
    for path in ("svc", "svc/a", "svc/b"):
        node.cgroup(path, max="max")
    a, b = node.spawn(cgroup="svc/a"), node.spawn(cgroup="svc/b")
    heap_a, heap_b = a.mmap("8M", advice=MADV.HUGEPAGE), b.mmap("4M", advice=MADV.HUGEPAGE)
    a.touch(heap_a)
    b.touch(heap_b)
    return node, (a, heap_a), (b, heap_b)


def test_pmd_and_folio_splits_are_counted_for_the_task_that_owns_the_thp():
    # a zaps 4 KiB in three of its THPs (three PMD splits, mm/huge_memory.c __split_huge_pmd) and frees 4 KiB
    # lazily in the fourth (linux-6.12 splits that folio at the call: one folio split, which first splits
    # its PMD); b zaps 4 KiB in one THP. vmstat counts 5 PMD splits and 1 folio split; a owns 4 and 1, b 1.
    node, (a, heap_a), (b, heap_b) = _two_tasks()
    for i in range(3):
        a.madvise(heap_a, i * THP, "4K", MADV.DONTNEED)
    a.madvise(heap_a, 3 * THP, "4K", MADV.FREE)
    b.madvise(heap_b, 0, "4K", MADV.DONTNEED)
    node.check()
    assert (node.vmstat["thp_split_pmd"], node.vmstat["thp_split_page"]) == (5, 1)
    assert (a.vm_events["thp_split_pmd"], a.vm_events["thp_split_page"]) == (4, 1)
    assert (b.vm_events["thp_split_pmd"], b.vm_events["thp_split_page"]) == (1, 0)


def test_memory_stat_thp_events_are_the_memcgs_own_and_a_parent_includes_its_children():
    # memory.stat thp_fault_alloc: a's memcg faulted 4 THPs, b's 2, their parent reads 6. b's split THP is
    # collapsed again by MADV_COLLAPSE: thp_collapse_alloc 1 in b's memcg and the parent's, 0 in a's.
    node, _, (b, heap_b) = _two_tasks()
    b.madvise(heap_b, 0, "4K", MADV.DONTNEED)
    b.madvise(heap_b, 0, "2M", MADV.COLLAPSE)
    node.check()
    stat = {path: node.cgroup(path).stat for path in ("svc", "svc/a", "svc/b")}
    assert [stat[p]["thp_fault_alloc"] for p in ("svc", "svc/a", "svc/b")] == [6, 4, 2]
    assert [stat[p]["thp_collapse_alloc"] for p in ("svc", "svc/a", "svc/b")] == [1, 0, 1]
    assert node.vmstat["thp_collapse_alloc"] == 1


@pytest.mark.parametrize("name", [*sorted(CONFIGS), "allocators"])
def test_over_a_seeded_syscall_mix_the_tasks_split_counts_sum_to_vmstat(name):
    # The golden scenarios' random madvise/touch batches, reclaim and khugepaged: every PMD and folio split
    # has an owner task, so the tasks' counts (live and exited) sum to the node's vmstat.
    node, _ = allocator_scenario() if name == "allocators" else scenario(CONFIGS[name])
    for counter in TASK_EVENTS:
        assert sum(p.vm_events[counter] for p in node.procs) == node.vmstat[counter], counter
    assert node.vmstat["thp_split_pmd"] > 0


@pytest.mark.parametrize("name", [*sorted(CONFIGS), "allocators"])
def test_over_a_seeded_syscall_mix_the_memcgs_memory_stat_events_sum_to_vmstat(name):
    # Every memory.stat event the model counts is charged to a memcg where it happens: the root's memory.stat
    # (its whole subtree) equals the node's vmstat for each, and so does the sum of the leaves' own counts.
    node, _ = allocator_scenario() if name == "allocators" else scenario(CONFIGS[name])
    root = node.cgroup("").stat
    for counter in MEMCG_EVENTS:
        assert root[counter] == node.vmstat[counter], counter
        assert sum(m.counters[counter] for m in node.memcgs.all) == node.vmstat[counter], counter
