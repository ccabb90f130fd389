"""Fleet metrics with one definition each (docs/model.md, Metrics), sampled over time and summarised.

THP coverage = AnonHugePages / anonymous RSS of the heap, per process; fleet (or tenant) coverage weights
processes by RSS (sum of AnonHugePages over sum of RSS). The summary's ``thp_coverage`` is its time-weighted
mean over every tick, ``thp_coverage_end`` its last value. Memory means are time-weighted means of fleet
totals. Latency percentiles come from the merged log-bucketed histograms of request-serving tenants; the
mean and maximum response are exact (summed and taken per request), ``utilisation`` is the threads' busy
time (service of the requests they served, stalls included) over their time up, ``requests_timed_out`` the
requests dropped after waiting longer than the workload's timeout.
``reclaim_stall_s`` is PSI-style memory stall time (reclaim, compaction, memory.high throttling, swap-in).
``senpai_cpu_s`` is senpai's own CPU, ``senpai_reclaim_cpu_s`` the kernel reclaim its writes ran and
``senpai_reclaimed_bytes`` what that reclaim took (clustersim.daemons.senpai); all zero without senpai.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results_contract import HISTOGRAM_COLUMNS, MEMORY_FIELDS
from .latency import LatencyHistogram, bucket_bounds_s


@dataclass
class Accumulator:
    """Time integrals of one population's memory (fleet or a tenant), fed every tick."""

    seconds: float = 0.0
    coverage_s: float = 0.0
    coverage_end: float = 0.0
    integrals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MEMORY_FIELDS, 0.0))

    def add(self, totals: dict[str, float], dt: float) -> None:
        cov = totals["anon_huge"] / totals["rss"] if totals["rss"] else 0.0
        self.coverage_end = cov
        self.coverage_s += cov * dt
        self.seconds += dt
        for k in MEMORY_FIELDS:
            self.integrals[k] += totals[k] * dt

    def mean(self, key: str) -> float:
        return self.integrals[key] / self.seconds if self.seconds else 0.0

    def coverage(self) -> float:
        return self.coverage_s / self.seconds if self.seconds else 0.0


def summarise(acc: Accumulator, hist: LatencyHistogram, counters: dict[str, float], duration_s: float,
              vmstat: dict[str, float]) -> dict[str, float]:
    """The contract summary keys for one population."""
    q = {p: hist.quantile_s(p) * 1e3 for p in (0.5, 0.99, 0.999)}
    served, thread_s = counters.get("requests", 0.0), counters.get("thread_s", 0.0)
    return {
        "thp_coverage": acc.coverage(), "thp_coverage_end": acc.coverage_end,
        "latency_p50_ms": q[0.5], "latency_p99_ms": q[0.99], "latency_p999_ms": q[0.999],
        "latency_mean_ms": counters.get("latency_sum_s", 0.0) / served * 1e3 if served else float("nan"),
        "latency_max_ms": counters.get("latency_max_s", 0.0) * 1e3 if served else float("nan"),
        "throughput_rps": served / duration_s if duration_s else 0.0,
        "requests_timed_out": float(counters.get("timed_out", 0.0)),
        "utilisation": counters.get("busy_s", 0.0) / thread_s if thread_s else 0.0,
        "oom_kills": float(counters.get("oom_kills", 0)),
        "rss_bytes_mean": acc.mean("rss"), "lazyfree_bytes_mean": acc.mean("lazyfree"),
        "swap_bytes_mean": acc.mean("swap"), "allocator_free_bytes_mean": acc.mean("allocator_free"),
        "faults_4k": float(counters.get("faults_4k", 0)), "faults_thp": float(counters.get("faults_thp", 0)),
        "thp_split_pmd": float(vmstat.get("thp_split_pmd", 0)),
        "thp_collapse_alloc": float(vmstat.get("thp_collapse_alloc", 0)),
        "madvise_calls": float(counters.get("madvise_calls", 0)),
        "reclaim_stall_s": float(counters.get("reclaim_stall_s", 0.0)),
        "cpu_kernel_s": float(counters.get("cpu_kernel_s", 0.0)),
        **{k: float(counters.get(k, 0.0)) for k in ("senpai_cpu_s", "senpai_reclaim_cpu_s", "senpai_reclaimed_bytes")},
    }


def histogram_frame(hists: dict[str, LatencyHistogram]) -> pd.DataFrame:
    """Tidy table of the non-empty buckets: tenant, bucket, lo_ms, hi_ms, count."""
    lo, hi = bucket_bounds_s()
    rows = []
    for tenant, h in hists.items():
        nz = np.flatnonzero(h.counts)
        rows.append(pd.DataFrame({"tenant": tenant, "bucket": nz, "lo_ms": lo[nz] * 1e3, "hi_ms": hi[nz] * 1e3,
                                  "count": h.counts[nz]}))
    if not rows:
        return pd.DataFrame(columns=list(HISTOGRAM_COLUMNS))
    return pd.concat(rows, ignore_index=True)
