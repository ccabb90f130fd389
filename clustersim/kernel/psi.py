"""Pressure stall information for memory: memory.pressure of each memcg and /proc/pressure/memory of the node.

Follows kernel/sched/psi.c and Documentation/accounting/psi.rst (Linux 6.x). ``some`` is the time at least one
task of the group is stalled on memory; ``full`` the time every non-idle task of the group is stalled at once.
A group's tasks are those of its whole subtree (psi_task_change() walks every ancestor group), so a parent's
totals include its children's stalls; the root memcg's group is the node's (psi_system). Totals are kept in
nanoseconds and read in microseconds. Every PSI_FREQ (2 s + 1 jiffy) update_averages() folds the period's
stall share into avg10/avg60/avg300 with loadavg's fixed-point decay (calc_load, FSHIFT 11, EXP_10s 1677,
EXP_60s 1981, EXP_300s 2034); a group with no tasks stops that clock and catches up with calc_load_n() over
the missed periods when next updated, as psi_avgs_work() does. Reads print the averages with two decimals,
truncated (LOAD_INT / LOAD_FRAC).

What is a memory stall: the kinds a task records with ``Process.stall`` for reclaim, compaction, memory.high
throttling and swap-in; a khugepaged or MADV_COLLAPSE collapse is not one (psi.rst; TMO, ASPLOS '22).

Left out: the per-CPU aggregation of psi.c's "Multiple CPUs" section (SOME = delayed tasks / min(tasks, CPUs)
weighted by each CPU's non-idle time); the model has no CPUs, so its states are psi.rst's definitions over
the group's tasks, which psi.c reduces to on one CPU. Also left out: cpu and io pressure, triggers (poll
windows), memory.pressure of an idle cgroup reading after cgroup.pressure is disabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .mm import MM

if TYPE_CHECKING:
    from .memcg import Memcg

HZ = 1000                                  # CONFIG_HZ_1000: a jiffy is 1 ms
NSEC_PER_SEC = 1_000_000_000
NSEC_PER_USEC = 1_000
PSI_FREQ = 2 * HZ + 1                      # psi.c: 2 s intervals, in jiffies
PSI_PERIOD_NS = PSI_FREQ * NSEC_PER_SEC // HZ
FSHIFT = 11                                # include/linux/sched/loadavg.h: bits of fixed-point precision
FIXED_1 = 1 << FSHIFT
EXP = (1677, 1981, 2034)                   # psi.c EXP_10s, EXP_60s, EXP_300s: 1/exp(2s/10s), (2s/60s), (2s/300s)
WINDOWS = ("avg10", "avg60", "avg300")
STATES = ("some", "full")
MEMSTALL_KINDS = ("reclaim", "compaction", "throttle", "swapin")   # psi_memstall_enter() sites


class StallingTask(Protocol):
    """What PSI reads of a task: its memcg, whether it lives, and when each of its threads' stall ends."""

    alive: bool
    memstall_until_ns: np.ndarray


@dataclass(eq=False)
class PsiGroup:
    """struct psi_group for memory: totals in ns, averages in FSHIFT fixed point, the averaging clock."""

    clock_ns: int = 0                                           # totals are accounted up to here
    total_ns: list[int] = field(default_factory=lambda: [0, 0])       # some, full (total[PSI_AVGS])
    avg_total_ns: list[int] = field(default_factory=lambda: [0, 0])   # the part already folded into avg
    avg: list[list[int]] = field(default_factory=lambda: [[0, 0, 0], [0, 0, 0]])
    avg_last_update_ns: int = 0
    avg_next_update_ns: int = PSI_PERIOD_NS

    @classmethod
    def start(cls, now: int) -> PsiGroup:
        """group_init(): a group created at ``now`` (ns) samples its first period a PSI_FREQ later."""
        return cls(clock_ns=now, avg_last_update_ns=now, avg_next_update_ns=now + PSI_PERIOD_NS)


def now_ns(mm: MM) -> int:
    return round(mm.time * NSEC_PER_SEC)


# --- stalls and task changes ---------------------------------------------------------------------------------
def memstall(mm: MM, task: StallingTask, memcg: Memcg, seconds: float) -> None:
    """A memory stall of ``seconds`` that a task's syscall suffered at the current time.

    The clock only moves in Node.advance(), so every syscall of a window happens at its start. A stall is
    laid out as an interval from the syscall's time on, on the thread that is free first: a task with
    ``threads`` threads runs that many stalls side by side, one thread's stalls back to back. So one stall
    of a multi-threaded task stalls 1/threads of it and leaves its other threads productive (no ``full``),
    while a single-threaded task is wholly stalled. The alternative, spreading a stall over all threads,
    would report full pressure for a stall that in Linux blocks one thread (reclaim, throttling and swap-in
    happen in the faulting thread). A stall longer than the window runs on into the next ones.
    """
    now = now_ns(mm)
    account(mm, memcg, now)
    lanes = task.memstall_until_ns
    k = int(np.argmin(lanes))
    lanes[k] = max(int(lanes[k]), now) + round(seconds * NSEC_PER_SEC)


def account(mm: MM, memcg: Memcg, now: int | None = None) -> None:
    """Bring the totals of ``memcg`` and its ancestors up to now: before any change to their tasks' state
    (a stall, a spawn, an exit), as psi_group_change() records the time spent in the old state first."""
    now = now_ns(mm) if now is None else now
    for m in memcg.ancestors():
        _catch_up(m, now)


def _catch_up(m: Memcg, now: int) -> None:
    g = m.psi
    if now <= g.clock_ns:
        return
    lanes = _lanes(m)
    if not len(lanes):   # no tasks: idle, the averaging clock is stopped (psi_avgs_work() not rescheduled)
        g.clock_ns = now
        return
    some_end, full_end = int(lanes.max()), int(lanes.min())
    if g.avg_next_update_ns <= g.clock_ns:   # waking from idle: the missed periods first
        g.avg_next_update_ns = update_averages(g, g.clock_ns)
    while True:
        stop = min(now, g.avg_next_update_ns)
        _accrue(g, stop, some_end, full_end)
        if stop < g.avg_next_update_ns:
            return
        if _quiet(g, some_end, stop):
            _skip_quiet_periods(g, now)
        else:
            g.avg_next_update_ns = update_averages(g, stop)
        if stop >= now:
            return


def _lanes(m: Memcg) -> np.ndarray:
    """Stall ends of every thread of every live task in m's subtree (all of them non-idle)."""
    parts = [p.memstall_until_ns for d in m.subtree() for p in d.procs if p.alive]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _accrue(g: PsiGroup, stop: int, some_end: int, full_end: int) -> None:
    """Time in ``some`` and ``full`` between the group's clock and ``stop``: all threads' stalls started by
    the clock, so some lasts until the last one ends, full until the first one does."""
    start = g.clock_ns
    g.total_ns[0] += max(0, min(stop, some_end) - start)
    g.total_ns[1] += max(0, min(stop, full_end) - start)
    g.clock_ns = stop


def _quiet(g: PsiGroup, some_end: int, stop: int) -> bool:
    """No stall pending, none left to fold and nothing left to decay: later updates would change nothing."""
    return some_end <= stop and g.total_ns == g.avg_total_ns and not any(any(a) for a in g.avg)


def _skip_quiet_periods(g: PsiGroup, now: int) -> None:
    """Boundaries up to ``now`` with zero samples and zero averages change nothing but the schedule."""
    k = (now - g.avg_next_update_ns) // PSI_PERIOD_NS
    g.avg_last_update_ns = g.avg_next_update_ns + k * PSI_PERIOD_NS
    g.avg_next_update_ns = g.avg_last_update_ns + PSI_PERIOD_NS


# --- averages (psi.c update_averages, calc_avgs; kernel/sched/loadavg.c) -------------------------------------
def update_averages(g: PsiGroup, now: int) -> int:
    """Fold the stall time since the last update into the averages; returns the next update time."""
    expires = g.avg_next_update_ns
    missed = (now - expires) // PSI_PERIOD_NS if now - expires >= PSI_PERIOD_NS else 0
    next_update = expires + (1 + missed) * PSI_PERIOD_NS
    period = now - (g.avg_last_update_ns + missed * PSI_PERIOD_NS)
    g.avg_last_update_ns = now
    for s in range(len(STATES)):
        # a sample above the period (stall time that slipped over a boundary) is punted into the next one
        sample = min(g.total_ns[s] - g.avg_total_ns[s], period)
        g.avg_total_ns[s] += sample
        calc_avgs(g.avg[s], missed, sample, period)
    return next_update


def calc_avgs(avg: list[int], missed_periods: int, time_ns: int, period_ns: int) -> None:
    """Decay over the missed (idle) periods, then sample the last one: its stall share in percent."""
    if missed_periods:
        for w, e in enumerate(EXP):
            avg[w] = calc_load_n(avg[w], e, 0, missed_periods)
    pct = (time_ns * 100 // period_ns if period_ns > 0 else 0) * FIXED_1
    for w, e in enumerate(EXP):
        avg[w] = calc_load(avg[w], e, pct)


def calc_load(load: int, exp: int, active: int) -> int:
    """a1 = a0 * e + a * (1 - e) in fixed point, rounding up while the load rises."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


def fixed_power_int(x: int, frac_bits: int, n: int) -> int:
    """x^n in fixed point with frac_bits, rounding each product as the kernel does."""
    result = 1 << frac_bits
    while n:
        if n & 1:
            result = (result * x + (1 << (frac_bits - 1))) >> frac_bits
        n >>= 1
        if n:
            x = (x * x + (1 << (frac_bits - 1))) >> frac_bits
    return result


def calc_load_n(load: int, exp: int, active: int, n: int) -> int:
    return calc_load(load, fixed_power_int(exp, FSHIFT, n), active)


# --- reading memory.pressure ---------------------------------------------------------------------------------
def pressure(mm: MM, memcg: Memcg) -> dict[str, dict[str, float | int]]:
    """psi_show(): totals collected up to now, averages updated if a period is due; averages in percent with
    two decimals (truncated, LOAD_INT.LOAD_FRAC), totals in microseconds."""
    now = now_ns(mm)
    account(mm, memcg, now)
    g = memcg.psi
    if now >= g.avg_next_update_ns:
        g.avg_next_update_ns = update_averages(g, now)
    return {state: {**{w: _percent(g.avg[s][i]) for i, w in enumerate(WINDOWS)},
                    "total": g.total_ns[s] // NSEC_PER_USEC} for s, state in enumerate(STATES)}


def _percent(avg: int) -> float:
    """LOAD_INT(x).LOAD_FRAC(x): the integer part and two truncated decimals of a fixed-point percentage."""
    return (avg >> FSHIFT) + (((avg & (FIXED_1 - 1)) * 100) >> FSHIFT) / 100


__all__ = ["MEMSTALL_KINDS", "PSI_PERIOD_NS", "PsiGroup", "account", "calc_load", "calc_load_n", "memstall",
           "pressure", "update_averages"]
