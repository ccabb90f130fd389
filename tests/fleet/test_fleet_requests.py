"""Requests in the fleet: worker threads, timeouts, freezes and the latency results (docs/model.md)."""

from __future__ import annotations

import numpy as np
import pytest
from fleet_helpers import fleet, run, service

from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet

TEMERAIRE = {"kind": "temeraire", "hugepage_advice": True, "release_rate": "2MiB/s"}
MEMORY = ["thp_coverage", "rss_bytes_mean", "allocator_free_bytes_mean", "faults_4k", "faults_thp",
          "thp_split_pmd", "madvise_calls", "reclaim_stall_s"]
SHOOTDOWN_S = 16e-6   # docs/calibration.md: a madvise call of a task with other threads running pays a TLB shootdown


def test_fewer_threads_queue_longer_and_memory_does_not_change():
    # 200 rps of 1 ms median / 10 ms p99 (mean 1.59 ms, E[S^2] = 7.1 ms^2): utilisation 0.32 on one thread,
    # 0.04 on eight. One thread queues (Pollaczek-Khinchine mean wait lambda E[S^2] / (2 (1 - rho)), about
    # 1 ms), eight almost never do.
    def summary(threads: int):
        return run(fleet([service("svc", TEMERAIRE, replicas=1, threads=threads)], duration="30s"))
    one, eight = summary(1), summary(8)
    assert one.summary["utilisation"] == pytest.approx(0.32, rel=0.1)
    assert eight.summary["utilisation"] == pytest.approx(0.32 / 8, rel=0.1)
    assert one.summary["latency_mean_ms"] - eight.summary["latency_mean_ms"] == pytest.approx(1.0, rel=0.3)
    assert one.summary["latency_max_ms"] >= one.summary["latency_p999_ms"] * 0.99
    assert one.tenants[MEMORY].equals(eight.tenants[MEMORY])   # requests draw from their own stream
    # The kernel sees the same threads: each range the eight-thread process releases pays one remote TLB
    # shootdown (madvise_cost: remote_shootdown_s per range), the single-threaded one's none. The extra
    # kernel time is a whole number of shootdowns, at most one per madvise call (MADV_HUGEPAGE at mmap
    # zaps nothing and pays none).
    shootdowns = (eight.summary["cpu_kernel_s"] - one.summary["cpu_kernel_s"]) / SHOOTDOWN_S
    assert shootdowns == pytest.approx(round(shootdowns), abs=1e-6)
    assert 1 <= round(shootdowns) <= one.summary["madvise_calls"]


def test_a_timeout_drops_and_counts_requests_that_wait_too_long():
    # One thread offered rho = 1.59 (1000 rps of 1.59 ms): without a timeout the queue grows without bound.
    # With a 5 ms timeout, M/M/1+D (literature.md section 10) with mu = 629/s and E = e^{(lambda - mu) t}
    # = 6.4 leaves the thread idle p0 = (1 - rho) / (1 - rho^2 E) = 3.9% of the time and drops
    # (1 - rho) rho E / (1 - rho^2 E) = 40% of the requests (exponential service; lognormal is close).
    tenant = service("svc", TEMERAIRE, replicas=1, threads=1, rps=1000, timeout="5ms")
    out = run(fleet([tenant], duration="30s")).summary
    offered = 1000 * 30
    assert out["requests_timed_out"] / offered == pytest.approx(0.40, abs=0.04)
    assert out["utilisation"] == pytest.approx(0.961, abs=0.02)
    assert out["latency_max_ms"] < 200   # waited at most the timeout, then its own service (without: seconds)


def test_a_collapse_freezes_every_thread_and_a_reclaim_stall_one():
    # The stall window: a collapse sum equal to the events' total is a freeze, anything else a thread's stall.
    model = Fleet(load_config(fleet([service("svc", TEMERAIRE, replicas=1)], duration="5s")))
    proc = model.processes[0]
    proc.kproc.stall(0.002, "collapse")
    thread, freezes = proc._take_stalls()
    assert len(thread) == 0 and freezes.tolist() == [0.002]
    proc.kproc.stall(0.003, "reclaim")
    proc.kproc.stall(0.001, "swapin")
    thread, freezes = proc._take_stalls()
    assert thread.tolist() == [0.003, 0.001] and len(freezes) == 0


def test_the_time_series_has_each_intervals_p99():
    out = run(fleet([service("svc", TEMERAIRE, replicas=1)], duration="20s"))
    ts = out.timeseries
    assert "latency_p99_ms" in ts.columns
    later = ts[ts["time_s"] > 0]["latency_p99_ms"]
    assert np.isfinite(later).all() and (later > 1.0).all() and (later < 100.0).all()
