"""The results contract: what one run produces, and what every writer and reader of results relies on.

A simulation (the fleet's ``simulate``, or a stand-in with its signature) returns a ``RunTables``:

- ``summary``: at least every key of SUMMARY_KEYS, fleet-wide (definitions in docs/model.md, Metrics).
- ``tenants``: one row per tenant, a ``tenant`` column then SUMMARY_KEYS.
- ``tenant_groups``: one row per (tenant, node group) where the tenant has replicas, ``tenant`` and
  ``node_group`` columns (TENANT_GROUP_KEYS) then SUMMARY_KEYS over the tenant's replicas in that group.
- ``timeseries``: one row per sample and (node group, tenant): ``time_s``, ``node_group``, ``tenant``,
  ``thp_coverage``, ``<field>_bytes`` for each of MEMORY_FIELDS, ``processes_up`` and ``latency_p99_ms``
  (of the requests served since the previous sample; NaN when none were).
- ``latency_histograms``: the non-empty log buckets per tenant, columns HISTOGRAM_COLUMNS.

The results store writes the tables named in TABLES, ``clustersim.load`` reads them back and the figures
draw them. This module imports only the standard library, so that storing, loading and plotting results
never loads the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_KEYS = (
    "thp_coverage", "thp_coverage_end", "latency_p50_ms", "latency_p99_ms", "latency_p999_ms",
    "latency_mean_ms", "latency_max_ms", "throughput_rps", "requests_timed_out", "utilisation", "oom_kills",
    "rss_bytes_mean", "lazyfree_bytes_mean", "swap_bytes_mean",
    "allocator_free_bytes_mean", "faults_4k", "faults_thp", "thp_split_pmd", "thp_collapse_alloc",
    "madvise_calls", "reclaim_stall_s", "cpu_kernel_s", "senpai_cpu_s", "senpai_reclaim_cpu_s",
    "senpai_reclaimed_bytes",
)
# A process's memory as observed once per tick (smaps and the allocator's stats), in bytes.
MEMORY_FIELDS = ("rss", "anon_huge", "lazyfree", "swap", "allocator_free", "heap_live")
TABLES = ("tenants", "tenant_groups", "timeseries", "latency_histograms")
TENANT_GROUP_KEYS = ("tenant", "node_group")
HISTOGRAM_COLUMNS = ("tenant", "bucket", "lo_ms", "hi_ms", "count")


@dataclass
class RunTables:
    """What one run produces: the summary (contract keys) and the tables named in TABLES."""

    summary: dict[str, float]
    tenants: pd.DataFrame
    tenant_groups: pd.DataFrame
    timeseries: pd.DataFrame
    latency_histograms: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name, in TABLES order."""
        return {name: getattr(self, name) for name in TABLES}
