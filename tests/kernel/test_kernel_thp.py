"""docs/linux-rules.md K9 THP policy truth table (selftests/mm/prctl_thp_disable.c) and K10 fault-time THP with
MADV_DONTNEED (selftests/mm/khugepaged.c alloc_at_fault, transhuge.rst deferred split)."""

from __future__ import annotations

import contextlib

import pytest
from kernel_helpers import MB, PAGE, THP

from clustersim.kernel import MADV, KernelError, Node

COLUMNS = ("none", "nohugepage", "hugepage", "collapse")
# docs/linux-rules.md K9 table: rows are the global `enabled`, columns the advice; True means the region ends up a THP.
TRUTH = {
    "never": (False, False, False, True),
    "madvise": (False, False, True, True),
    "always": (True, False, True, True),
}


def test_mmap_thp(node, p, column: str) -> bool:
    """prctl_thp_disable.c test_mmap_thp(): advise, write 2M, MADV_COLLAPSE after; is the region huge?"""
    r = p.mmap(THP)
    if column == "nohugepage":
        p.madvise(r, 0, THP, MADV.NOHUGEPAGE)
    elif column == "hugepage":
        p.madvise(r, 0, THP, MADV.HUGEPAGE)
    p.touch(r)
    if column == "collapse":
        with contextlib.suppress(KernelError):   # the selftest ignores the return value, checks the mapping
            p.madvise(r, 0, THP, MADV.COLLAPSE)
    node.check()
    huge = p.smaps["AnonHugePages"] == THP
    p.munmap(r)
    node.check()
    return huge


test_mmap_thp.__test__ = False   # a helper named after the selftest's function, not a test


@pytest.mark.parametrize("enabled", list(TRUTH))
@pytest.mark.parametrize("column", COLUMNS)
def test_k9_global_policy_and_advice_decide_fault_time_thp(enabled, column):
    # docs/linux-rules.md K9. For a 2M-aligned anon region: `enabled` x advice gives 4K or a THP per the table;
    # MADV_COLLAPSE after the write gives a THP even with enabled=never.
    node = Node(memory="256M", thp={"enabled": enabled})
    p = node.spawn()
    assert test_mmap_thp(node, p, column) == TRUTH[enabled][COLUMNS.index(column)]


@pytest.mark.parametrize("enabled", list(TRUTH))
def test_k9_pr_set_thp_disable_gives_4k_in_every_column_until_cleared(enabled):
    # docs/linux-rules.md K9, prctl_thp_disable_completely. With PR_SET_THP_DISABLE every column is 4K, COLLAPSE
    # included (it fails with EINVAL); after prctl(PR_SET_THP_DISABLE, 0) the global table applies again.
    node = Node(memory="256M", thp={"enabled": enabled})
    p = node.spawn()
    p.thp_disable = True
    assert [test_mmap_thp(node, p, c) for c in COLUMNS] == [False] * 4
    p.thp_disable = False
    assert tuple(test_mmap_thp(node, p, c) for c in COLUMNS) == TRUTH[enabled]


@pytest.mark.parametrize("enabled", list(TRUTH))
def test_k9_thp_disable_except_advised_leaves_only_hugepage_and_collapse(enabled):
    # docs/linux-rules.md K9, prctl_thp_disable_except_madvise. With PR_THP_DISABLE_EXCEPT_ADVISED only MADV_HUGEPAGE
    # (when the policy is not never) and MADV_COLLAPSE give a THP.
    node = Node(memory="256M", thp={"enabled": enabled})
    p = node.spawn()
    p.thp_disable = "except_advised"
    got = [test_mmap_thp(node, p, c) for c in COLUMNS]
    assert got == [False, False, enabled != "never", True]


def test_k9_madv_collapse_on_nohugepage_is_einval():
    # docs/linux-rules.md K9 / docs/calibration.md 5: MADV_COLLAPSE on a MADV_NOHUGEPAGE VMA returns EINVAL and leaves
    # 4K pages.
    node = Node(memory="256M", thp={"enabled": "always"})
    p = node.spawn()
    r = p.mmap(THP, advice=MADV.NOHUGEPAGE)
    p.touch(r)
    with pytest.raises(KernelError) as err:
        p.madvise(r, 0, THP, MADV.COLLAPSE)
    assert err.value.errno == "EINVAL" and "NOHUGEPAGE" in err.value.message
    node.check()
    assert p.smaps["AnonHugePages"] == 0 and p.smaps["Rss"] == THP


def test_k10_one_write_faults_a_whole_thp():
    # docs/linux-rules.md K10, alloc_at_fault. enabled=always: one 4K write into an empty 2M range gives
    # AnonHugePages=2M, thp_fault_alloc +1 and 2M charged (the untouched subpages hold zeros).
    node = Node(memory="256M", thp={"enabled": "always"})
    cg = node.cgroup("t", max="max")
    p = node.spawn(cgroup="t")
    r = p.mmap(THP)
    p.touch(r, 0, PAGE)
    node.check()
    assert p.smaps["AnonHugePages"] == THP and p.smaps["Rss"] == THP
    assert node.vmstat["thp_fault_alloc"] == 1
    assert cg.current == THP
    assert p.read(r, 0, PAGE) == 1.0 and p.read(r, PAGE, THP - PAGE) == 0.0


def test_k10_dontneed_of_one_page_splits_the_pmd_and_defers_the_folio():
    # docs/linux-rules.md K10. MADV_DONTNEED of the 4K page at 1M: thp_split_pmd +1, AnonHugePages drops to 0 and Rss by
    # 4K, the folio goes on the deferred-split queue (thp_deferred_split_page +1) without being split (thp_split_page
    # 0), and memory.current does not drop: the charge outlives the RSS drop.
    node = Node(memory="256M", thp={"enabled": "always"})
    cg = node.cgroup("t", max="max")
    p = node.spawn(cgroup="t")
    r = p.mmap(THP)
    p.touch(r)
    node.check()
    before = cg.current
    p.madvise(r, MB, PAGE, MADV.DONTNEED)
    node.check()
    assert p.smaps["AnonHugePages"] == 0 and p.smaps["Rss"] == THP - PAGE
    assert node.vmstat["thp_split_pmd"] == 1 and node.vmstat["thp_deferred_split_page"] == 1
    assert node.vmstat["thp_split_page"] == 0
    assert cg.current >= before
    assert p.read(r, MB, PAGE) == 0.0 and p.read(r, 0, MB) == 1.0


def test_k10_deferred_split_frees_subpages_only_under_memory_pressure():
    # docs/linux-rules.md K10 / transhuge.rst. Eight THPs each lose one 4K page to MADV_DONTNEED. Time alone frees
    # nothing: after 60 s the charge is unchanged and no folio is split (max_ptes_none=0 keeps khugepaged from
    # re-collapsing the ranges meanwhile). Then a second task in the same memcg (max=24M) allocates until reclaim runs.
    # p holds 8 folios + 8 PTE tables = 4104 pages of the 6144 allowed; the other task needs 2040 pages + 4 PTE tables,
    # 8 more than fit: the deferred-split shrinker splits the queued folios (thp_split_page +8) and their 8 unmapped
    # subpages are freed, which is just enough. No OOM.
    node = Node(memory="512M", thp={"enabled": "always", "shrink_underused": False, "max_ptes_none": 0})
    cg = node.cgroup("t", max="24M", swap_max=0)
    p = node.spawn(cgroup="t")
    r = p.mmap("16M")
    p.touch(r)
    node.check()
    p.madvise_many(r, [i * THP + MB for i in range(8)], [PAGE] * 8, MADV.DONTNEED)
    node.check()
    held = cg.current
    node.advance("60s")
    node.check()
    assert cg.current == held and node.vmstat["thp_split_page"] == 0

    other = node.spawn(cgroup="t")
    o = other.mmap("8M", advice=MADV.NOHUGEPAGE)
    other.touch(o, 0, 8 * MB - 8 * PAGE)
    node.check()
    assert other.alive and p.alive and other.read(o, 0, 8 * MB - 8 * PAGE) == 1.0
    assert cg.events["oom"] == 0
    assert node.vmstat["thp_split_page"] == 8
    assert p.smaps["Rss"] == 16 * MB - 8 * PAGE
    assert p.read(r, 0, MB) == 1.0
