"""senpai in the fleet: it sizes a cold-heavy tenant's leaf down to the pressure it targets, without killing.

A 128 MiB tcmalloc heap with 10% of its spans hot, on a node with zram: most of the heap is cold, so senpai
can push it out to swap until the hot set's refaults stall the tenant for about ``pressure`` µs per
``interval`` (senpai.py's target, docs/literature.md). The run's own stall totals are read back from the
leaf's memory.pressure once a second, as senpai reads them.
"""

from __future__ import annotations

import numpy as np
import pytest
from fleet_helpers import fleet, service

from clustersim.experiments.config import ConfigError, load_config
from clustersim.fleet import Fleet

MIB = 1 << 20
TARGET_US, INTERVAL = 1000, 2


def cold_fleet(senpai: dict | None, duration: str = "720s") -> dict:
    tenant = service("cold", {"kind": "tcmalloc"}, replicas=1, heap="128M", churn="1MiB/s", hot_share=0.1)
    if senpai is not None:
        tenant["senpai"] = senpai
    return fleet([tenant], memory="2G", swap={"kind": "zram", "size": "1G"}, duration=duration, seed=1)


@pytest.fixture(scope="module")
def converged():
    f = Fleet(load_config(cold_fleet({"interval": INTERVAL, "max_probe": 0.05, "min_size": "4M",
                                      "pressure": TARGET_US})))
    (controller,) = f.senpais.values()
    trace: list[tuple[float, int, int]] = []
    tick = controller.tick

    def traced() -> None:
        tick()
        trace.append((float(f.time), controller.last_total, controller.cgroup.current))

    controller.tick = traced
    f.run()
    return f, controller, np.array(trace)


def test_senpai_converges_to_its_pressure_target(converged):
    # From the second half on, the leaf's `some` stall per interval averages within [0.5, 1.5] x the target:
    # senpai backs off above it and probes below it, so the mean sits near it.
    _, _, trace = converged
    late = trace[trace[:, 0] >= 360]
    per_interval_us = (late[-1, 1] - late[0, 1]) / (late[-1, 0] - late[0, 0]) * INTERVAL
    assert 0.5 * TARGET_US <= per_interval_us <= 1.5 * TARGET_US


def test_senpai_reduces_the_cold_tenants_memory(converged):
    # Starting at the heap's ~135 MiB, the leaf ends below half of it; what left went to zram.
    f, _, trace = converged
    assert trace[0, 2] > 128 * MIB and trace[-1, 2] < 0.5 * trace[0, 2]
    s = f.summary()
    assert s["senpai_reclaimed_bytes"] > 64 * MIB and s["swap_bytes_mean"] > 32 * MIB
    assert s["senpai_cpu_s"] == pytest.approx(720 * 50e-6) and s["senpai_reclaim_cpu_s"] > 0


def test_senpai_backs_off_when_pressure_rises_and_never_oom_kills(converged):
    f, controller, _ = converged
    assert controller.book.backoffs > 10 and controller.book.probes > controller.book.backoffs
    assert f.summary()["oom_kills"] == 0 and f.nodes[0].kernel.cgroup(controller.path).events["oom_kill"] == 0


def test_without_senpai_the_keys_are_zero_and_the_heap_stays():
    f = Fleet(load_config(cold_fleet(None, duration="60s")))
    f.run()
    s = f.summary()
    assert not f.senpais and s["senpai_cpu_s"] == s["senpai_reclaimed_bytes"] == 0.0
    assert s["swap_bytes_mean"] == 0.0


def test_an_empty_section_takes_senpai_py_defaults():
    cfg = load_config(cold_fleet({}))
    assert cfg.tenants[0].senpai.model_dump() == {
        "min_size": 100 * MIB, "max_size": 100 << 30, "interval": 6, "pressure": 10_000, "max_probe": 0.01,
        "max_backoff": 1.0, "coeff_probe": 10, "coeff_backoff": 20, "knob": "memory.high"}


@pytest.mark.parametrize(("section", "message"), [
    ({"knob": "memory.max"}, "tenants.0.senpai.knob: 'memory.max' -> one of memory.high, memory.reclaim"),
    ({"interval": 0}, "tenants.0.senpai.interval: 0 -> >= 1"),
    ({"max_probe": 1.5}, "tenants.0.senpai.max_probe: 1.5 -> in (0, 1]"),
    ({"probe": 1}, "tenants.0.senpai.probe"),
])
def test_bad_senpai_keys_name_key_value_and_allowed(section, message):
    with pytest.raises(ConfigError) as err:
        load_config(cold_fleet(section))
    assert message in str(err.value)
