"""Words for every axis, legend and tick of a figure: one table, so no figure shows a raw key path.

A figure's column is a summary metric (its label and unit come from ``clustersim.experiments.metrics``, the
one metric table), a time-series field, or a run-file key path such as ``tenants.0.allocator.madvise``.
Key paths are looked up with their list indices removed (``tenants.allocator.madvise``), so every tenant's
and node group's key shares one row. A key path the table lacks is shown as its last component in words
(``release_rate`` -> ``release rate``), never as the path. Values of categorical parameters get their
names as the kernel or allocator spells them (``dontneed`` -> ``DONTNEED``).
"""

from __future__ import annotations

import re

from clustersim.experiments.metrics import GIB, METRICS, RUN_COLUMNS, Metric

# Run-file keys, by key path without list indices: the label in words, with its unit where it has one.
PARAMETERS: dict[str, str] = {
    "tenants.allocator.madvise": "madvise policy",
    "tenants.allocator.kind": "allocator",
    "tenants.allocator.release_rate": "release rate (B/s)",
    "tenants.allocator.hugepage_advice": "MADV_HUGEPAGE",
    "tenants.allocator.dirty_decay_ms": "dirty decay (ms)",
    "tenants.allocator.muzzy_decay_ms": "muzzy decay (ms)",
    "tenants.workload.heap": "heap per process (bytes)",
    "tenants.workload.churn": "churn (B/s)",
    "tenants.workload.rps": "request rate (requests/s)",
    "tenants.workload.hot_share": "hot share of the heap",
    "tenants.senpai.pressure": "senpai pressure target (µs per interval)",
    "tenants.senpai.knob": "senpai knob",
    "tenants.senpai": "senpai",
    "nodes.swap.kind": "swap",
    "nodes.memory": "node memory (bytes)",
    "kernel.profile": "kernel",
    "kernel.thp.enabled": "THP mode",
    "kernel.thp.defrag": "THP defrag",
    "kernel.thp.max_ptes_none": "max_ptes_none (pages)",
    "nodes.kernel.profile": "kernel",
    "nodes.kernel.thp.enabled": "THP mode",
    "seed": "seed",
    "tenant": "tenant",
    "node_group": "node group",
    "time_s": "time (s)",
    "latency_ms": "request latency (ms)",
    "cdf": "requests at or below (fraction)",
}
# Time-series fields (results_contract: timeseries), as metrics: label, unit, scale from the stored unit.
SERIES: dict[str, Metric] = {
    "thp_coverage": Metric("THP coverage", "%", 100.0),
    "rss_bytes": Metric("RSS", "GiB", 1 / GIB),
    "anon_huge_bytes": Metric("AnonHugePages", "GiB", 1 / GIB),
    "lazyfree_bytes": Metric("LazyFree", "GiB", 1 / GIB),
    "swap_bytes": Metric("Swap", "GiB", 1 / GIB),
    "allocator_free_bytes": Metric("Allocator-held free memory", "GiB", 1 / GIB),
    "heap_live_bytes": Metric("Live heap", "GiB", 1 / GIB),
    "processes_up": Metric("Processes up", "count"),
    "latency_p99_ms": Metric("Request latency p99", "ms"),
}
# Values of categorical parameters as the sources spell them.
VALUES: dict[str, str] = {
    # madvise advice without the MADV_ prefix, which the axis or legend title ("madvise policy") carries
    "dontneed": "DONTNEED", "free": "FREE", "splittable": "SPLITTABLE", "free_undo": "FREE_UNDO", "none": "none",
    "zram": "zram", "zswap": "zswap", "disk": "disk",
}
_INDEX = re.compile(r"\.\d+(?=\.|$)")


def parameter_key(column: str) -> str:
    """A key path without its list indices: ``tenants.0.allocator.madvise`` -> ``tenants.allocator.madvise``."""
    return _INDEX.sub("", column)


def label(column: str, *, timeseries: bool = False) -> str:
    """The axis or legend label of ``column``: words and unit, from the tables above."""
    if timeseries and column in SERIES:
        return SERIES[column].axis_label
    if column in METRICS:
        return short(METRICS[column])
    if column in RUN_COLUMNS:
        return RUN_COLUMNS[column].axis_label
    key = parameter_key(column)
    if key in PARAMETERS:
        return PARAMETERS[key]
    return key.rsplit(".", 1)[-1].replace("_", " ")


def short(m: Metric) -> str:
    """A metric's axis label for a figure: its name without the qualifier after a comma, its unit without
    the words after a leading %: ``THP coverage, time mean (% of anon heap RSS)`` -> ``THP coverage (%)``.
    The full definition stays in the metric table and docs/model.md."""
    unit = "%" if m.unit.startswith("%") else m.unit
    return f"{m.label.split(',')[0]} ({unit})"


def scale(column: str, *, timeseries: bool = False) -> float:
    """Factor from the stored unit to the shown one (1 for parameters)."""
    table = SERIES if timeseries and column in SERIES else METRICS
    return table[column].scale if column in table else 1.0


def value_label(value: object) -> str:
    """A categorical value as shown in a legend or on a tick."""
    return VALUES.get(str(value), str(value))


__all__ = ["PARAMETERS", "SERIES", "VALUES", "label", "parameter_key", "scale", "value_label"]
