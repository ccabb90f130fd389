"""A deterministic stand-in for ``clustersim.fleet.simulate.simulate``, for tests and benchmarks.

It has the real entry point's signature and output shape, and its numbers are a function of the resolved
config and seed only (numpy randomness from the seed), so runner tests can compare results bit for bit.
Behaviours a runner must survive are switched on by fields: sleeping, burning CPU, raising, killing the
process after some completed calls, and leaving one file per completed call so tests can count calls.
It is a picklable dataclass, so process pools and Dask workers can receive it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..results_contract import SUMMARY_KEYS, RunTables
from .config import RunConfig, config_hash, resolved
from .keypath import get_path

# Latency histogram buckets: bucket b covers [BASE**b, BASE**(b+1)) ms, about 1% relative error.
BUCKET_BASE = 1.02
# THP coverage the fake gives each release advice, so that plots of fake results have a visible shape.
_COVERAGE = {"dontneed": 0.45, "free": 0.70, "splittable": 0.90, "free_undo": 0.85, "none": 0.95}


@dataclass(frozen=True)
class FakeSimulate:
    """``simulate(config, progress)`` with switchable misbehaviour; ``*_when`` map key paths to values.

    Args:
        sleep_s: wall seconds to sleep, when ``sleep_when`` matches (always if None).
        work: iterations of a fixed numeric kernel, to make runs CPU-bound (runner speed-up benchmarks).
        fail_when: raise RuntimeError when the config matches.
        calls_dir: write one file per completed call here, named by config hash and seed.
        exit_after: ``os._exit(3)`` at the start of a call once ``calls_dir`` holds this many calls.
        interrupt_after: raise KeyboardInterrupt instead, at the same point.
    """

    sleep_s: float = 0.0
    sleep_when: Mapping[str, Any] | None = None
    work: int = 0
    fail_when: Mapping[str, Any] | None = None
    calls_dir: str | None = None
    exit_after: int | None = None
    interrupt_after: int | None = None
    timeseries_points: int = 12

    def __call__(self, config: RunConfig,
                 progress: Callable[[float, float], None] | None = None) -> RunTables:
        data = resolved(config)
        self._maybe_stop()
        if self.fail_when is not None and matches(data, self.fail_when):
            raise RuntimeError(f"fake failure for {dict(self.fail_when)}")
        if self.sleep_s and (self.sleep_when is None or matches(data, self.sleep_when)):
            time.sleep(self.sleep_s)
        burn(self.work)
        output = fake_output(config, self.timeseries_points, progress)
        self._record_call(config)
        return output

    def _calls(self) -> int:
        return len(list(Path(self.calls_dir).glob("*.call"))) if self.calls_dir else 0

    def _maybe_stop(self) -> None:
        if self.exit_after is not None and self._calls() >= self.exit_after:
            os._exit(3)
        if self.interrupt_after is not None and self._calls() >= self.interrupt_after:
            raise KeyboardInterrupt

    def _record_call(self, config: RunConfig) -> None:
        if self.calls_dir:
            folder = Path(self.calls_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{config_hash(config)[:16]}-{config.seed}-{uuid.uuid4().hex[:8]}.call").touch()


def matches(data: Mapping[str, Any], when: Mapping[str, Any]) -> bool:
    """True when every key path in ``when`` holds the given value in ``data``."""
    return all(get_path(data, path, None) == value for path, value in when.items())


def burn(iterations: int) -> float:
    """A fixed amount of CPU work (no sleeping, no I/O); the result does not reach the run's results."""
    x = np.arange(20_000, dtype=np.float64)
    for _ in range(iterations):
        x = np.sqrt(x * x + 1.0)
    return float(x[-1])


def fake_output(config: RunConfig, points: int = 12,
                progress: Callable[[float, float], None] | None = None) -> RunTables:
    """Plausible, deterministic results for ``config``: a function of its hash and seed only."""
    rng = np.random.default_rng([config.seed, int(config_hash(config)[:12], 16)])
    rows = [_tenant_summary(tenant, rng) for tenant in config.tenants] or [_tenant_summary(None, rng)]
    tenants = pd.DataFrame(rows)
    summary = {key: float(tenants[key].mean()) for key in SUMMARY_KEYS}
    times = np.linspace(0.0, config.duration, points)
    for t in times[:: max(1, points // 4)]:
        if progress is not None:
            progress(float(t), config.duration)
    if progress is not None:
        progress(config.duration, config.duration)
    timeseries, histograms = _timeseries(config, tenants, times, rng), _histograms(tenants, rng)
    return RunTables(summary, tenants, _tenant_groups(config, tenants, rng), timeseries, histograms)


def _tenant_groups(config: RunConfig, tenants: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each tenant in every node group: its numbers scaled by a factor per group (coverage kept in [0, 1])."""
    rows = []
    for row in tenants.to_dict("records"):
        for group in config.nodes:
            factor = float(rng.uniform(0.8, 1.2))
            values = {key: row[key] * factor for key in SUMMARY_KEYS}
            for key in ("thp_coverage", "thp_coverage_end"):
                values[key] = min(1.0, values[key])
            rows.append({"tenant": row["tenant"], "node_group": group.name, **values})
    return pd.DataFrame(rows)


def _tenant_summary(tenant: Any, rng: np.random.Generator) -> dict[str, Any]:
    advice = tenant.allocator.madvise if tenant is not None else "none"
    heap = float(tenant.workload.heap) if tenant is not None else float(1 << 30)
    coverage = float(np.clip(_COVERAGE[advice] + rng.normal(0, 0.03), 0, 1))
    p50 = float(rng.lognormal(0.0, 0.1))
    row = {key: float(rng.uniform(0, 1000)) for key in SUMMARY_KEYS}
    row.update(thp_coverage=coverage, thp_coverage_end=coverage, latency_p50_ms=p50,
               latency_p99_ms=p50 * (6 - 3 * coverage), latency_p999_ms=p50 * (15 - 8 * coverage),
               rss_bytes_mean=heap * (1.1 + 0.2 * coverage), oom_kills=float(rng.poisson(0.2)))
    return {"tenant": tenant.name if tenant is not None else "idle", **row}


def _timeseries(config: RunConfig, tenants: pd.DataFrame, times: np.ndarray,
                rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for name, coverage in zip(tenants["tenant"], tenants["thp_coverage"], strict=True):
        noise = rng.normal(0, 0.01, len(times))
        frames.append(pd.DataFrame({"time_s": times, "node_group": config.nodes[0].name, "tenant": name,
                                    "thp_coverage": np.clip(coverage + noise, 0, 1),
                                    "rss_bytes": rng.uniform(1e8, 2e8, len(times))}))
    return pd.concat(frames, ignore_index=True)


def _histograms(tenants: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for name, p50 in zip(tenants["tenant"], tenants["latency_p50_ms"], strict=True):
        samples = rng.lognormal(np.log(p50), 0.6, 2000)
        buckets, counts = np.unique(np.floor(np.log(samples) / np.log(BUCKET_BASE)).astype(np.int64),
                                    return_counts=True)
        frames.append(pd.DataFrame({"tenant": name, "bucket": buckets, "lo_ms": BUCKET_BASE ** buckets,
                                    "hi_ms": BUCKET_BASE ** (buckets + 1), "count": counts.astype(np.int64)}))
    return pd.concat(frames, ignore_index=True)


# ``CLUSTERSIM_SIMULATE=clustersim.experiments.fake:simulate`` runs the CLI on the fake.
simulate = FakeSimulate()
# Each run sleeps a minute: a sweep that is surely still running when a test interrupts it.
slow_simulate = FakeSimulate(sleep_s=60.0)


@dataclass(frozen=True)
class FakeDensity(FakeSimulate):
    """The stand-in with a known threshold: every tenant's (and the fleet's) ``latency_p99_ms`` is the value
    at key path ``knob`` in ms, plus ``seed_ms`` for seeds listed in ``slow_seeds``; values in ``quiet`` give
    0 ms (a non-monotone case). ``oom_kills`` is 0. With an SLO ``latency_p99_ms <= T`` the largest passing
    value is ``floor(T)``."""

    knob: str = "tenants.0.replicas"
    quiet: tuple[int, ...] = ()
    slow_seeds: tuple[int, ...] = ()
    seed_ms: float = 0.0

    def __call__(self, config: RunConfig,
                 progress: Callable[[float, float], None] | None = None) -> RunTables:
        tables = super().__call__(config, progress)
        value = get_path(resolved(config), self.knob)
        p99 = 0.0 if value in self.quiet else float(value) + (self.seed_ms if config.seed in self.slow_seeds else 0)
        for frame in (tables.tenants, tables.tenant_groups):
            frame["latency_p99_ms"] = p99
            frame["oom_kills"] = 0.0
        tables.summary.update(latency_p99_ms=p99, oom_kills=0.0)
        return tables


# ``CLUSTERSIM_SIMULATE=clustersim.experiments.fake:density`` runs plans on the known-threshold stand-in.
density = FakeDensity()
