"""Costs measured through the API against the calibration (docs/calibration.md, numbered results 1-5, warm
regime): each ratio within a factor of 1.5 of the measured one."""

from __future__ import annotations

import pytest
from kernel_helpers import MB, PAGE, THP

from clustersim.kernel import MADV, Node

FACTOR = 1.5


def within(ratio: float, measured: float) -> bool:
    return measured / FACTOR <= ratio <= measured * FACTOR


def written(thp: bool, size=THP, threads: int = 1):
    """A fresh node and task with ``size`` written, THP-backed or 4K (NOHUGEPAGE); returns task, region, cost."""
    node = Node(memory="512M", thp={"enabled": "madvise"})
    p = node.spawn(threads=threads)
    r = p.mmap(size, advice=MADV.HUGEPAGE if thp else MADV.NOHUGEPAGE)
    cost = p.touch(r)
    node.check()
    return p, r, cost


def madvise_cost(thp: bool, advice: MADV, length, offset=0, threads: int = 1) -> float:
    p, r, _ = written(thp, threads=threads)
    cost = p.madvise(r, offset, length, advice)
    p.node.check()
    return cost


def test_512_small_faults_cost_2_75_times_one_thp_fault():
    # docs/calibration.md 1: 512 warm 4K faults (704 us) vs one warm THP fault (256 us): 2.75.
    _, _, small = written(False)
    _, _, huge = written(True)
    assert within(small / huge, 2.75)


@pytest.mark.parametrize(("pages", "measured"), [(1, 1.04), (16, 1.12), (512, 0.924)])
def test_dontneed_and_free_cost_about_the_same_on_4k_pages(pages, measured):
    # docs/calibration.md 2: DONTNEED / FREE per call on 4K-backed ranges of 4K, 64K, 2M: 1.04, 1.12, 0.924.
    ratio = madvise_cost(False, MADV.DONTNEED, pages * PAGE) / madvise_cost(False, MADV.FREE, pages * PAGE)
    assert within(ratio, measured)


def test_free_of_a_whole_thp_is_4_3_times_cheaper_than_dontneed():
    # docs/calibration.md 2: on whole THPs DONTNEED 5.7 us vs FREE 1.3 us per 2M: 4.27 (FREE only marks the PMD).
    ratio = madvise_cost(True, MADV.DONTNEED, THP) / madvise_cost(True, MADV.FREE, THP)
    assert within(ratio, 4.27)


def test_zapping_2m_costs_9_times_more_on_4k_pages_than_on_one_pmd():
    # docs/calibration.md 2: DONTNEED of 2M, 4K-backed / THP-backed: 9.16.
    assert within(madvise_cost(False, MADV.DONTNEED, THP) / madvise_cost(True, MADV.DONTNEED, THP), 9.16)


@pytest.mark.parametrize(("advice", "measured"), [(MADV.DONTNEED, 2.0), (MADV.FREE, 1.88)])
def test_a_33_page_call_costs_twice_a_34_page_call(advice, measured):
    # docs/calibration.md 2: tlb_single_page_flush_ceiling=33; past it one full flush replaces 34 INVLPGs, so a
    # 33-page call (8.6 us) costs about 2x a 34-page one (4.3 us).
    assert within(madvise_cost(False, advice, 33 * PAGE) / madvise_cost(False, advice, 34 * PAGE), measured)


@pytest.mark.parametrize(("advice", "measured"), [(MADV.DONTNEED, 8.32), (MADV.FREE, 113)])
def test_4k_inside_a_thp_costs_a_split(advice, measured):
    # docs/calibration.md 4: 4K at 1M inside a THP vs on 4K pages: DONTNEED splits the PMD (8.32x), FREE splits
    # the folio at once (113x).
    ratio = madvise_cost(True, advice, PAGE, MB) / madvise_cost(False, advice, PAGE, MB)
    assert within(ratio, measured)


@pytest.mark.parametrize(("pages", "measured"), [(1, 3.13), (16, 3.42), (512, 3.52)])
def test_refault_after_dontneed_costs_3_times_reuse_after_free_on_4k_pages(pages, measured):
    # docs/calibration.md 3: writing a range again after DONTNEED (refault, 1.33-1.43 us/page) vs after FREE
    # without pressure (reuse, 0.40-0.42 us/page: one A/D-bit update, no fault): 3.13-3.52.
    length = pages * PAGE
    p, r, _ = written(False)
    p.madvise(r, 0, length, MADV.DONTNEED)
    refault = p.touch(r, 0, length)
    q, s, _ = written(False)
    q.madvise(s, 0, length, MADV.FREE)
    faults = q.faults_4k
    reuse = q.touch(s, 0, length)
    assert q.faults_4k == faults and q.read(s) == 1.0
    assert within(refault / reuse, measured)


def test_refault_after_dontneed_costs_17_times_reuse_after_free_on_a_thp():
    # docs/calibration.md 3: THP-backed 2M: refault 266 us per THP vs reuse 15 us per 2M: 17.2.
    p, r, _ = written(True)
    p.madvise(r, 0, THP, MADV.DONTNEED)
    refault = p.touch(r)
    q, s, _ = written(True)
    q.madvise(s, 0, THP, MADV.FREE)
    reuse = q.touch(s)
    assert q.smaps["AnonHugePages"] == THP
    assert within(refault / reuse, 17.2)


def test_madv_collapse_costs_2_8_thp_faults():
    # docs/calibration.md 5: MADV_COLLAPSE of a full 4K-backed 2M range, 0.73 ms, is 2.84x a warm THP fault.
    p, r, _ = written(False)
    p.madvise(r, 0, THP, MADV.HUGEPAGE)
    collapse = p.madvise(r, 0, THP, MADV.COLLAPSE)
    _, _, fault = written(True)
    assert p.smaps["AnonHugePages"] == THP
    assert within(collapse / fault, 2.84)


def test_madv_collapse_of_a_sparse_range_costs_about_0_3_ms():
    # docs/calibration.md 5: a sparse range (1 of 512 pages present) collapses in 0.31 ms.
    node = Node(memory="256M", thp={"enabled": "madvise"})
    p = node.spawn()
    r = p.mmap(THP, advice=MADV.NOHUGEPAGE)
    p.touch(r, 0, PAGE)
    p.madvise(r, 0, THP, MADV.HUGEPAGE)
    assert within(p.madvise(r, 0, THP, MADV.COLLAPSE) / 0.31e-3, 1.0)


@pytest.mark.parametrize(("advice", "measured"), [(MADV.DONTNEED, 15.4), (MADV.FREE, 15.5)])
def test_a_remote_tlb_shootdown_multiplies_a_4k_call_by_15(advice, measured):
    # docs/calibration.md 2: another thread running on the other CPU makes each 4K call send an IPI: 15x.
    ratio = madvise_cost(False, advice, PAGE, threads=2) / madvise_cost(False, advice, PAGE)
    assert within(ratio, measured)


def test_absolute_warm_fault_costs_match_the_calibration():
    # docs/calibration.md 1: a warm 4K fault 1.38 us, a warm THP fault 256 us.
    _, _, small = written(False)
    _, _, huge = written(True)
    assert within(small / 512 / 1.376e-6, 1.0) and within(huge / 255.8e-6, 1.0)
