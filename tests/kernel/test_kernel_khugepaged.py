"""docs/linux-rules.md K11 khugepaged thresholds and MADV_COLLAPSE (selftests/mm/khugepaged.c)."""

from __future__ import annotations

import pytest
from kernel_helpers import PAGE, THP

from clustersim.kernel import MADV, KernelError, Node

SCAN = "10ms"   # the selftest sets scan_sleep_millisecs and alloc_sleep_millisecs to 10


def khugepaged_node(**thp):
    """The selftest's settings: enabled=madvise, 10 ms sleeps, kernel defaults for the thresholds."""
    settings = {"enabled": "madvise", "scan_sleep": SCAN, "alloc_sleep": SCAN, **thp}
    swap = {"kind": "disk", "size": "256M"}
    return Node(memory="256M", thp=settings, swap=swap)


def prepare(node, present: int, swapped: int = 0):
    """Like the selftest: a NOHUGEPAGE range filled with 4K pages, PAGEOUT of a prefix, then HUGEPAGE."""
    p = node.spawn()
    r = p.mmap(THP, advice=MADV.NOHUGEPAGE)
    if present:
        p.touch(r, 0, present * PAGE)
    if swapped:
        p.madvise(r, 0, swapped * PAGE, MADV.PAGEOUT)
    p.madvise(r, 0, THP, MADV.HUGEPAGE)
    node.check()
    return p, r


def wait_for_scan(node, p) -> bool:
    """The selftest's wait_for_scan(): step until the range is huge or khugepaged made 2 more full scans."""
    full_scans = node.vmstat["khugepaged_full_scans"] + 2
    for _ in range(100):
        node.advance(SCAN)
        node.check()
        if p.smaps["AnonHugePages"] == THP or node.vmstat["khugepaged_full_scans"] >= full_scans:
            break
    return p.smaps["AnonHugePages"] == THP


def test_k11_defaults_match_the_kernel():
    # docs/linux-rules.md K11. Defaults: max_ptes_none=511, max_ptes_swap=64, pages_to_scan=4096, scan 10 s, alloc 60 s.
    thp = Node(memory="128M").thp
    assert (thp.max_ptes_none, thp.max_ptes_swap, thp.pages_to_scan) == (511, 64, 4096)
    assert (thp.scan_sleep, thp.alloc_sleep) == (10.0, 60.0)


def test_k11_an_empty_range_is_never_collapsed():
    # docs/linux-rules.md K11. A MADV_HUGEPAGE range with nothing present stays empty scan after scan.
    node = khugepaged_node()
    p, _ = prepare(node, present=0)
    assert not wait_for_scan(node, p)
    node.advance("1s")
    assert p.smaps["Rss"] == 0 and node.vmstat["thp_collapse_alloc"] == 0
    assert node.vmstat["khugepaged_full_scans"] >= 2


def test_k11_one_present_page_is_enough_with_max_ptes_none_511():
    # docs/linux-rules.md K11. One 4K page present and max_ptes_none=511: khugepaged collapses the range within 2 full
    # scans; 4K of RSS becomes 2M, the page keeps its data and the other 511 subpages read as zeros.
    node = khugepaged_node()
    p, r = prepare(node, present=1)
    assert p.smaps["Rss"] == PAGE
    assert wait_for_scan(node, p)
    assert p.smaps["Rss"] == THP and node.vmstat["thp_collapse_alloc"] == 1
    assert p.read(r, 0, PAGE) == 1.0 and p.read(r, PAGE, THP - PAGE) == 0.0


@pytest.mark.parametrize(("present", "collapsed"), [(255, False), (256, True)])
def test_k11_max_ptes_none_256_needs_256_present_pages(present, collapsed):
    # docs/linux-rules.md K11, collapse_max_ptes_none. max_ptes_none=256: 255 present pages (257 empty PTEs) are not
    # collapsed; 256 present pages (256 empty) are.
    node = khugepaged_node(max_ptes_none=256)
    p, r = prepare(node, present=present)
    assert wait_for_scan(node, p) is collapsed
    assert p.read(r, 0, present * PAGE) == 1.0


@pytest.mark.parametrize(("swapped", "collapsed"), [(65, False), (64, True)])
def test_k11_max_ptes_swap_64_swaps_in_64_but_not_65(swapped, collapsed):
    # docs/linux-rules.md K11, collapse_max_ptes_swap. A full range with 65 PTEs paged out is not collapsed; with 64
    # they are swapped in and the range collapses with every page intact.
    node = khugepaged_node()
    p, r = prepare(node, present=512, swapped=swapped)
    assert p.smaps["Swap"] == swapped * PAGE
    assert wait_for_scan(node, p) is collapsed
    assert p.smaps["Swap"] == (0 if collapsed else swapped * PAGE)
    assert p.read(r) == 1.0


@pytest.mark.parametrize("case", ["none", "swap", "never"])
def test_k11_madv_collapse_ignores_the_limits_and_enabled(case):
    # docs/linux-rules.md K11. MADV_COLLAPSE collapses where khugepaged would not: max_ptes_none=0 with one page
    # present, 100 swapped PTEs, or enabled=never; the data survives.
    thp = {"none": {"max_ptes_none": 0}, "swap": {}, "never": {"enabled": "never"}}[case]
    node = khugepaged_node(**thp)
    p, r = prepare(node, present=1 if case == "none" else 512, swapped=100 if case == "swap" else 0)
    p.madvise(r, 0, THP, MADV.COLLAPSE)
    node.check()
    assert p.smaps["AnonHugePages"] == THP and p.smaps["Swap"] == 0
    assert p.read(r, 0, PAGE) == 1.0


def test_k11_madv_collapse_obeys_prctl_thp_disable():
    # docs/linux-rules.md K11. MADV_COLLAPSE ignores the limits but not PR_SET_THP_DISABLE: EINVAL, and khugepaged
    # leaves the range alone too.
    node = khugepaged_node()
    p, r = prepare(node, present=512)
    p.thp_disable = True
    with pytest.raises(KernelError) as err:
        p.madvise(r, 0, THP, MADV.COLLAPSE)
    assert err.value.errno == "EINVAL"
    assert not wait_for_scan(node, p)


def test_k11_a_collapse_grows_rss_back_after_a_release():
    # docs/linux-rules.md K11 / docs/calibration.md 4: a THP loses half its pages to MADV_DONTNEED (RSS 1M); with
    # max_ptes_none=511 khugepaged re-collapses it and the released half comes back as zero-filled resident memory.
    node = khugepaged_node()
    p = node.spawn()
    r = p.mmap(THP, advice=MADV.HUGEPAGE)
    p.touch(r)
    p.madvise(r, THP // 2, THP // 2, MADV.DONTNEED)
    node.check()
    assert p.smaps["Rss"] == THP // 2 and p.smaps["AnonHugePages"] == 0
    assert wait_for_scan(node, p)
    assert p.smaps["Rss"] == THP
    assert p.read(r, 0, THP // 2) == 1.0 and p.read(r, THP // 2, THP // 2) == 0.0
