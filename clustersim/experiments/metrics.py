"""The summary metrics every run reports, with the label and unit each is plotted under.

The keys are those of the results contract (``clustersim.results_contract.SUMMARY_KEYS``): a run's
``RunTables.summary`` holds them fleet-wide and ``RunTables.tenants`` per tenant. Definitions follow
docs/model.md, Metrics (coverage = AnonHugePages / anonymous heap RSS, RSS-weighted across processes; ``_mean`` is a
time-weighted mean over the run)."""

from __future__ import annotations

from dataclasses import dataclass

from clustersim.results_contract import SUMMARY_KEYS

GIB = float(1 << 30)


@dataclass(frozen=True)
class Metric:
    """How a metric is shown: axis label, unit, and the factor from its stored unit to the shown one."""

    label: str
    unit: str
    scale: float = 1.0

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})"


METRICS: dict[str, Metric] = {
    "thp_coverage": Metric("THP coverage, time mean", "% of anon heap RSS", 100.0),
    "thp_coverage_end": Metric("THP coverage at end", "% of anon heap RSS", 100.0),
    "latency_p50_ms": Metric("Request latency p50", "ms"),
    "latency_p99_ms": Metric("Request latency p99", "ms"),
    "latency_p999_ms": Metric("Request latency p99.9", "ms"),
    "latency_mean_ms": Metric("Request latency mean", "ms"),
    "latency_max_ms": Metric("Request latency max", "ms"),
    "throughput_rps": Metric("Throughput", "requests/s"),
    "requests_timed_out": Metric("Requests timed out", "count"),
    "utilisation": Metric("Worker thread utilisation", "% busy", 100.0),
    "oom_kills": Metric("OOM kills", "count"),
    "rss_bytes_mean": Metric("RSS, time mean", "GiB", 1 / GIB),
    "lazyfree_bytes_mean": Metric("LazyFree, time mean", "GiB", 1 / GIB),
    "swap_bytes_mean": Metric("Swap, time mean", "GiB", 1 / GIB),
    "allocator_free_bytes_mean": Metric("Allocator-held free memory, time mean", "GiB", 1 / GIB),
    "faults_4k": Metric("4 KiB page faults", "count"),
    "faults_thp": Metric("THP faults (thp_fault_alloc)", "count"),
    "thp_split_pmd": Metric("PMD splits (thp_split_pmd)", "count"),
    "thp_collapse_alloc": Metric("Collapses (thp_collapse_alloc)", "count"),
    "madvise_calls": Metric("madvise calls", "count"),
    "reclaim_stall_s": Metric("Reclaim stall time", "s"),
    "cpu_kernel_s": Metric("Kernel CPU time", "s"),
    "senpai_cpu_s": Metric("senpai CPU time", "s"),
    "senpai_reclaim_cpu_s": Metric("Reclaim CPU of senpai's writes", "s"),
    "senpai_reclaimed_bytes": Metric("Memory reclaimed by senpai", "GiB", 1 / GIB),
}

# The summary keys of the contract, in their declared order.
assert tuple(METRICS) == SUMMARY_KEYS, "every summary key of the fleet needs a label and a unit here"

# Columns the results store adds, plotted with these labels too.
RUN_COLUMNS: dict[str, Metric] = {
    "wall_s": Metric("Wall time of the run", "s"),
    "seed": Metric("Seed", "integer"),
}


def metric(name: str) -> Metric:
    """The display of ``name``; an unknown column is shown under its own name, unit unknown."""
    return METRICS.get(name) or RUN_COLUMNS.get(name) or Metric(name, "?")
