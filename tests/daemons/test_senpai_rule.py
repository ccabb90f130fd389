"""senpai's probe/backoff rule, tick by tick, over a stand-in cgroup whose pressure total the test drives.

Numbers come from senpai.py's formulas with its defaults (docs/literature.md, senpai): a probe shrinks by
min(max_probe * (pressure / max(integral, 1) / coeff_probe)^2, max_probe), a backoff grows by
min(max_backoff * (integral / pressure / coeff_backoff)^2, max_backoff).
"""

from __future__ import annotations

import pytest

from clustersim.daemons.senpai import SENPAI_TICK_CPU_S, Senpai, SenpaiOptions
from clustersim.kernel import KernelError, Node

MIB = 1 << 20


class FakeCgroup:
    """memory.pressure's some total, memory.current and memory.high; writes to high or reclaim are logged."""

    def __init__(self, current: int) -> None:
        self.total_us, self.current, self.high = 0, current, "max"
        self.writes: list[tuple[str, int]] = []

    @property
    def pressure(self) -> dict:
        return {"some": {"avg10": 0.0, "total": self.total_us}, "full": {"avg10": 0.0, "total": 0}}

    def write(self, name: str, value: int) -> float:
        self.writes.append((name, value))
        if name == "high":
            self.high = value
            self.current = min(self.current, value)
        else:
            self.current -= value
        return 0.001


class FakeNode:
    time = 0.0

    def __init__(self, cgroup: FakeCgroup) -> None:
        self.cg = cgroup

    def cgroup(self, path: str) -> FakeCgroup:
        return self.cg


def make(current: int = 1000 * MIB, **options) -> tuple[Senpai, FakeCgroup]:
    cg = FakeCgroup(current)
    return Senpai(FakeNode(cg), "t", SenpaiOptions(**options)), cg   # type: ignore[arg-type]


def test_start_resets_memory_high_to_memory_current_rounded_to_4096():
    # senpai.py's Cgroup.__init__: memory.high reads "max", not the (None) limit, so it restarts from current.
    s, cg = make(current=1000 * MIB + 123)
    assert cg.writes == [("high", 1000 * MIB)] and s.book.resets == 1


def test_without_pressure_it_probes_every_interval_by_max_probe():
    # integral 0: err = 10000 / 1, adj = min((err / 10)^2 * 0.01, 0.01) = 0.01: 1% every 6 ticks (grace 6, then 5).
    s, cg = make()
    for _ in range(6):
        s.tick()
    assert cg.writes[1:] == []
    s.tick()
    assert cg.writes[-1] == ("high", int(1000 * MIB * 0.99) & ~4095) and s.book.probes == 1
    for _ in range(5):
        s.tick()
    assert len(cg.writes) == 2
    s.tick()
    assert s.book.probes == 2 and s.book.cpu_s == pytest.approx(13 * SENPAI_TICK_CPU_S)


def test_pressure_above_target_backs_off_at_once_by_the_squared_error():
    # 40 ms of stall in one tick: err = 40000 / 10000 = 4, adj = (4 / 20)^2 * 1.0 = 0.04: the limit grows 4%.
    s, cg = make()
    cg.total_us += 40_000
    s.tick()
    assert cg.writes[-1] == ("high", int(1000 * MIB * 1.04) & ~4095)
    assert s.book.backoffs == 1 and s.integral == 0 and s.grace_ticks == 5


def test_backoff_is_capped_at_max_backoff():
    # 30x the target: (30 / 20)^2 = 2.25 > 1, so max_backoff (1.0) doubles the limit.
    s, cg = make()
    cg.total_us += 300_000
    s.tick()
    assert cg.writes[-1] == ("high", 2000 * MIB)


def test_pressure_below_target_probes_less():
    # 5 ms over the interval: err = 2, adj = (2 / 10)^2 * 0.01 = 0.0004 of the limit.
    s, cg = make()
    for _ in range(6):
        s.tick()
    cg.total_us += 5_000
    s.tick()
    assert cg.writes[-1] == ("high", int(1000 * MIB * (1 - 0.0004)) & ~4095)


def test_limit_is_clamped_to_min_size():
    _, cg = make(current=50 * MIB)
    assert cg.writes == [("high", 100 * MIB)]


def test_reclaim_knob_reclaims_a_share_of_current_and_leaves_high_at_max():
    # TMO's variant: the probe writes current * adj to memory.reclaim; memory.high is never written.
    s, cg = make(knob="memory.reclaim")
    for _ in range(7):
        s.tick()
    assert cg.writes == [("reclaim", int(1000 * MIB * 0.01) & ~4095)] and cg.high == "max"
    cg.total_us += 40_000
    s.tick()
    assert len(cg.writes) == 1 and s.book.backoffs == 1


def test_real_kernel_write_reports_the_reclaim_cost_and_never_kills():
    # 64 MiB of page cache in a leaf; senpai's first write sets memory.high to it, then probes reclaim 1%
    # at a time through memory_high_write(), which never OOM-kills (cgroup-v2.rst, memory.high).
    node = Node(memory="1G", swap={"kind": "none"})
    node.cgroup("a")
    p = node.spawn("a")
    p.read_file(64 * MIB, "f")
    s = Senpai(node, "a", SenpaiOptions(min_size=4 * MIB, interval=1))
    for _ in range(20):
        s.tick()
    assert s.book.probes == 19 and p.alive   # the first tick is the grace tick of interval 1
    assert s.book.reclaimed_bytes > 0 and s.book.reclaim_cpu_s > 0
    assert node.cgroup("a").events["oom_kill"] == 0
    assert node.cgroup("a").current <= int(64 * MIB * 0.99 ** 19)


def test_options_name_the_bad_value():
    with pytest.raises(ValueError, match=r"knob='memory\.max'"):
        SenpaiOptions(knob="memory.max")
    with pytest.raises(KernelError, match="EINVAL"):
        Node(memory="256M").cgroup("a").write("max", 1)
