"""docs/linux-rules.md K18: memory pressure stall information (kernel/sched/psi.c, Documentation/accounting/psi.rst).

Totals: ``some`` is the time at least one task of the group is stalled on memory, ``full`` the time all its
non-idle tasks are, in microseconds; a task's stalls of one window start at the syscall, on its first free
thread. Averages: every PSI_FREQ = 2 s + 1 jiffy (2.001 s at HZ=1000) the period's stall share in percent is
folded in with calc_load() and EXP_10s/60s/300s = 1677/1981/2034 in FSHIFT=11 fixed point.
"""

from __future__ import annotations

import math

import pytest
from kernel_helpers import MB, run_alloc

from clustersim.kernel import Node
from clustersim.kernel.psi import PSI_PERIOD_NS, calc_load_n

PERIOD_S = PSI_PERIOD_NS / 1e9   # 2.001 s
FIXED_1 = 2048


def pressure_totals(p: dict) -> tuple[int, int]:
    return p["some"]["total"], p["full"]["total"]


# --- totals --------------------------------------------------------------------------------------------------
def test_k18_one_task_stalled_s_seconds_in_a_10s_window_is_s_in_some_and_full():
    # One task, stalled 3 s by reclaim at t=0, then 10 s pass: some = 3 s = 3,000,000 us; it is the group's only
    # non-idle task, so full = some. The node (all tasks) reads the same.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(3.0, "reclaim")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (3_000_000, 3_000_000)
    assert pressure_totals(node.pressure) == (3_000_000, 3_000_000)


def test_k18_two_tasks_one_stalled_is_some_without_full():
    # A second, running task is productive the whole time: full = 0, some = the stalled task's 3 s.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    node.spawn(cgroup="A")
    p.stall(3.0, "swapin")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (3_000_000, 0)


def test_k18_a_stall_longer_than_the_window_runs_into_the_next():
    # A 15 s stall read after 10 s has accrued 10 s; after 20 s, all 15 s.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    node.spawn(cgroup="A").stall(15.0, "compaction")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (10_000_000, 10_000_000)
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (15_000_000, 15_000_000)


def test_k18_stalls_of_a_multithreaded_task_take_one_thread_each():
    # threads=4: one 2 s stall leaves three threads productive (some 2 s, full 0); four 2 s stalls in the same
    # window occupy all four threads at once (full 2 s); a fifth queues behind the first (some 4 s, full 2 s).
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A", threads=4)
    p.stall(2.0, "reclaim")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (2_000_000, 0)
    for _ in range(5):
        p.stall(2.0, "reclaim")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (2_000_000 + 4_000_000, 2_000_000)


def test_k18_collapse_is_not_a_memory_stall():
    # psi.rst / TMO: khugepaged and MADV_COLLAPSE hold the mm, they do not wait for memory.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(1.0, "collapse")
    node.advance("10s")
    assert pressure_totals(cg.pressure) == (0, 0) and p.stall_seconds == 1.0


def test_k18_a_parents_totals_include_its_childrens_stalls():
    # A/x's task stalls 3 s, A/y's 1 s, both from t=0. Each leaf: some = full = its own stall. A (both tasks):
    # some = the union = 3 s, full = the time both are stalled = 1 s; the node reads as A.
    node = Node(memory="256M")
    a, x, y = node.cgroup("A"), node.cgroup("A/x"), node.cgroup("A/y")
    node.spawn(cgroup="A/x").stall(3.0, "reclaim")
    node.spawn(cgroup="A/y").stall(1.0, "throttle")
    node.advance("10s")
    assert pressure_totals(x.pressure) == (3_000_000, 3_000_000)
    assert pressure_totals(y.pressure) == (1_000_000, 1_000_000)
    assert pressure_totals(a.pressure) == (3_000_000, 1_000_000)
    assert pressure_totals(node.pressure) == (3_000_000, 1_000_000)


def test_k18_a_task_that_exits_ends_its_stall():
    # A 10 s stall whose task exits after 4 s counts 4 s; the running sibling then sees no further stall.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(10.0, "reclaim")
    node.advance("4s")
    p.exit()
    node.advance("6s")
    assert pressure_totals(cg.pressure) == (4_000_000, 4_000_000)


def test_k18_throttling_under_memory_high_shows_as_pressure():
    # test_memcg_high's 31M write under high=30M throttles the task (K5): its memory stall time is what
    # memory.pressure totals (within 1 us per stall event for the ns rounding).
    node = Node(memory="1G")
    cg = node.cgroup("memcg_test", high="30M", swap_max=0)
    p, _ = run_alloc(node, "memcg_test", 31 * MB)
    node.advance("60s")
    some, full = pressure_totals(cg.pressure)
    assert p.memstall_s > 0 and abs(some - p.memstall_s * 1e6) <= len(p.stall_log) + 1 and full == some


# --- averages ------------------------------------------------------------------------------------------------
def test_k18_one_period_of_full_stall_sets_avg10_to_1_minus_e_to_the_minus_one_fifth():
    # After one PSI period stalled all the time, calc_avgs() samples pct = 100 * FIXED_1 = 204800 and
    # calc_load(0, e, pct) = (pct * (2048 - e) + 2047) // 2048: avg10 = 204800 * 371 // 2048 = 37100 -> "18.11",
    # avg60 = 6700 -> "3.27", avg300 = 1400 -> "0.68"; 100 * (1 - exp(-2/w)) is 18.13, 3.28, 0.66, within the
    # fixed-point constants' rounding (EXP_300s = 2034/2048 = exp(-2/292.9)).
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(PERIOD_S, "reclaim")
    node.advance(PERIOD_S)
    some = cg.pressure["some"]   # the read brings the lazily kept averages up to date
    assert cg.memcg.psi.avg[0] == [37100, 6700, 1400]
    assert (some["avg10"], some["avg60"], some["avg300"]) == (18.11, 3.27, 0.68)
    for window, avg in ((10, some["avg10"]), (60, some["avg60"]), (300, some["avg300"])):
        assert avg == pytest.approx(100 * (1 - math.exp(-2 / window)), abs=0.05)
    assert cg.pressure["full"]["avg10"] == 18.11


def test_k18_avg10_decays_by_exp_10s_each_idle_period():
    # The task lives on unstalled: each period samples 0 and calc_load(a, 1677, 0) = a * 1677 // 2048:
    # 37100 -> 30379 ("14.83") -> 24875 ("12.14"), a factor 1677/2048 = 0.8188 ~ exp(-2/10) per period.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(PERIOD_S, "reclaim")
    node.advance(PERIOD_S)
    seen = []
    for _ in range(2):
        node.advance(PERIOD_S)
        avg10 = cg.pressure["some"]["avg10"]   # the read brings the lazily kept averages up to date
        seen.append((cg.memcg.psi.avg[0][0], avg10))
    assert seen == [(30379, 14.83), (24875, 12.14)]
    assert seen[1][0] / seen[0][0] == pytest.approx(1677 / FIXED_1, abs=1e-3)


def test_k18_an_idle_group_catches_up_its_missed_periods_in_one_go():
    # With no task left the averaging clock stops; the read 10 periods later finds 9 missed periods
    # (psi_avgs_work(), update_averages()) and decays them with calc_load_n(avg, 1677, 0, 9), then samples the
    # last (empty) period: about 18.1 * exp(-20/10) = 2.45.
    node = Node(memory="256M")
    cg = node.cgroup("A")
    p = node.spawn(cgroup="A")
    p.stall(PERIOD_S, "reclaim")
    node.advance(PERIOD_S)
    assert cg.pressure["some"]["avg10"] == 18.11
    p.exit()
    node.advance(10 * PERIOD_S)
    avg10 = cg.pressure["some"]["avg10"]
    assert cg.memcg.psi.avg[0][0] == calc_load_n(37100, 1677, 0, 9) * 1677 // FIXED_1
    assert avg10 == pytest.approx(18.127 * math.exp(-2.0), abs=0.05)
