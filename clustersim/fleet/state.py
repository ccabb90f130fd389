"""A shard's raw results and their exact merge into the run's tables (results_contract.RunTables).

A shard (``layout.py``) returns what it observed, unsummarised: per tick, the memory totals of each
population (the fleet, each tenant, each (tenant, node group) pair) over its own processes; per sample,
each time-series row's memory totals, processes up and latency histogram; at the end, each process's
counters and memcg leaf events, each pair's latency histogram and each node's /proc/vmstat and daemon time.

Merging is exact, so the tables are the same bit for bit however the fleet was split:
- Memory values are whole bytes and latency histogram counts whole requests, held as float64. A sum of
  whole numbers below 2**53 (8 PiB, or 9e15 requests) is exact in any order, so the shards' partial
  totals simply add.
- Everything else that is a sum of fractions (time integrals, counters in seconds) is computed here, after
  the merge, by the same loops in the same order (ticks in time order, processes and nodes in fleet order)
  as a serial run, which is the merge of one shard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results_contract import MEMORY_FIELDS, SUMMARY_KEYS, TENANT_GROUP_KEYS, RunTables
from .latency import LatencyHistogram
from .layout import Layout
from .metrics import Accumulator, histogram_frame, summarise


@dataclass
class ProcessRecord:
    """One process at the end of the run: who it is and what it counted."""

    index: int                      # position in the fleet
    tenant: str
    pair: int                       # position of its (tenant, node group) in Layout.pairs
    leaf: tuple[int, str]           # (node position, memcg leaf path)
    counters: dict[str, float]


@dataclass
class ShardState:
    """Everything a shard observed, in mergeable form (whole numbers summed, fractions per process)."""

    layout: Layout
    nodes: range
    tick_s: float
    duration_s: float
    ticks: np.ndarray                       # (ticks, 1 + tenants + pairs, fields): memory totals per tick
    sample_times: list[float]
    sample_memory: np.ndarray               # (samples, keys, fields)
    sample_up: np.ndarray                   # (samples, keys) processes up, int64
    sample_hist: np.ndarray                 # (samples, keys, buckets) cumulative latency counts
    pair_hist: np.ndarray                   # (pairs, buckets) latency counts at the end
    processes: list[ProcessRecord] = field(default_factory=list)
    leaves: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)  # thp collapse, split
    daemon_s: list[float] = field(default_factory=list)       # per node, fleet order
    vmstat: list[dict[str, float]] = field(default_factory=list)


def merge(states: list[ShardState]) -> RunTables:
    """The run's tables from its shards' states (any split of the fleet, serial included)."""
    states = sorted(states, key=lambda s: s.nodes.start)
    _check_cover(states)
    first = states[0]
    merged = _Merged(first, _replay(_total(s.ticks for s in states), first.tick_s),
                     _total(s.pair_hist for s in states), [p for s in states for p in s.processes],
                     {k: v for s in states for k, v in s.leaves.items()})
    daemon_s = [d for s in states for d in s.daemon_s]
    vmstat = [v for s in states for v in s.vmstat]
    series = _series(first, _total(s.sample_memory for s in states), _total(s.sample_up for s in states),
                     _total(s.sample_hist for s in states))
    return RunTables(merged.summary(daemon_s, vmstat), merged.tenants_frame(), merged.tenant_groups_frame(),
                     pd.DataFrame(series), merged.histograms_frame())


def _check_cover(states: list[ShardState]) -> None:
    """The shards cover every node exactly once, in one run (same layout and clock)."""
    layout, start = states[0].layout, 0
    for s in states:
        if s.layout != layout or s.nodes.start != start or s.ticks.shape != states[0].ticks.shape:
            raise ValueError(f"shard of nodes {s.nodes} does not continue the fleet at node {start}")
        start = s.nodes.stop
    if start != layout.nodes:
        raise ValueError(f"the shards cover {start} of the fleet's {layout.nodes} nodes")


def _total(arrays) -> np.ndarray:
    arrays = list(arrays)
    out = arrays[0].copy()
    for a in arrays[1:]:
        out += a
    return out


def _replay(ticks: np.ndarray, tick_s: float) -> list[Accumulator]:
    """One Accumulator per population, fed the merged totals tick by tick, as the run went."""
    accs = [Accumulator() for _ in range(ticks.shape[1])]
    for row in ticks.tolist():
        for acc, totals in zip(accs, row, strict=True):
            acc.add(dict(zip(MEMORY_FIELDS, totals, strict=True)), tick_s)
    return accs


def _series(first: ShardState, memory: np.ndarray, up: np.ndarray, hist: np.ndarray) -> list[dict]:
    """One time-series row per (node group, tenant) and sample; p99 over the requests since the last one."""
    rows, before = [], [None] * len(first.layout.keys)
    for s, time_s in enumerate(first.sample_times):
        for k, (group, tenant) in enumerate(first.layout.keys):
            c = dict(zip(MEMORY_FIELDS, memory[s, k].tolist(), strict=True))
            cov = c["anon_huge"] / c["rss"] if c["rss"] else 0.0
            interval = LatencyHistogram(hist[s, k].copy())
            if before[k] is not None:
                interval.counts -= before[k]
            before[k] = hist[s, k]
            rows.append({"time_s": time_s, "node_group": group, "tenant": tenant, "thp_coverage": cov,
                         **{f"{f}_bytes": c[f] for f in MEMORY_FIELDS}, "processes_up": int(up[s, k]),
                         "latency_p99_ms": interval.quantile_s(0.99) * 1e3})
    return rows


class _Merged:
    """The summaries of the merged fleet: fleet-wide, per tenant and per (tenant, node group)."""

    def __init__(self, first: ShardState, accs: list[Accumulator], pair_hist: np.ndarray,
                 processes: list[ProcessRecord], leaves: dict[tuple[int, str], tuple[int, int]]) -> None:
        self.layout, self.duration_s = first.layout, first.duration_s
        self.accs, self.pair_hist, self.leaves = accs, pair_hist, leaves
        self.processes = sorted(processes, key=lambda p: p.index)

    def summary(self, daemon_s: list[float], vmstat: list[dict[str, float]]) -> dict[str, float]:
        counters = _counters(self.processes)
        counters["cpu_kernel_s"] = counters.get("cpu_kernel_s", 0.0) + sum(daemon_s)
        total = Counter()
        for v in vmstat:
            total.update(v)
        return summarise(self.accs[0], self._hist(range(len(self.layout.pairs))), counters, self.duration_s,
                         dict(total))

    def tenants_frame(self) -> pd.DataFrame:
        rows = []
        for i, t in enumerate(self.layout.tenants):
            pairs = [j for j, (tenant, _) in enumerate(self.layout.pairs) if tenant == t]
            procs = [p for p in self.processes if p.tenant == t]
            rows.append({"tenant": t, **self._summarise(self.accs[1 + i], pairs, procs)})
        return pd.DataFrame(rows, columns=["tenant", *SUMMARY_KEYS])

    def tenant_groups_frame(self) -> pd.DataFrame:
        base = 1 + len(self.layout.tenants)
        rows = [{"tenant": t, "node_group": g,
                 **self._summarise(self.accs[base + j], [j], [p for p in self.processes if p.pair == j])}
                for j, (t, g) in enumerate(self.layout.pairs)]
        return pd.DataFrame(rows, columns=[*TENANT_GROUP_KEYS, *SUMMARY_KEYS])

    def histograms_frame(self) -> pd.DataFrame:
        hists = {}
        for t in self.layout.tenants:
            hists[t] = self._hist([j for j, (tenant, _) in enumerate(self.layout.pairs) if tenant == t])
        return histogram_frame(hists)

    def _summarise(self, acc: Accumulator, pairs: list[int], procs: list[ProcessRecord]) -> dict[str, float]:
        return summarise(acc, self._hist(pairs), _counters(procs), self.duration_s, self._own_events(procs))

    def _hist(self, pairs) -> LatencyHistogram:
        h = LatencyHistogram()
        for j in pairs:
            h.counts += self.pair_hist[j]
        return h

    def _own_events(self, procs: list[ProcessRecord]) -> dict[str, float]:
        """The replicas' own kernel event counts (their memcg leaves, every lifetime; see model.py)."""
        total = Counter()
        for leaf in dict.fromkeys(p.leaf for p in procs):
            collapse, split = self.leaves[leaf]
            total["thp_collapse_alloc"] += collapse
            total["thp_split_pmd"] += split
        return dict(total)


def _counters(procs: list[ProcessRecord]) -> dict[str, float]:
    """The processes' counters summed in fleet order; the longest response is the largest."""
    total, longest = Counter(), 0.0
    for p in procs:
        c = dict(p.counters)
        longest = max(longest, c.pop("latency_max_s"))
        total.update(c)
    return {**total, "latency_max_s": longest}
