"""Fleet: the mesa model of many nodes running many tenants' processes.

Builds node groups (each node a kernel with its memcg tree), places tenants' replicas, and drives time with
mesa's event scheduling: the tick (every process steps, then every kernel advances), the allocators'
background threads every second, and metric samples. All randomness flows from the run's one
``numpy.random.SeedSequence``: the model's generator, one child per node and one per process.

Results are summarised fleet-wide, per tenant and per (tenant, node group). The fleet's kernel event counts
are the nodes' /proc/vmstat; a tenant's are its own, read from its memcg leaves (memory.stat) and the tasks
spawned in them (``Process.vm_events``, for the events Linux counts only node-wide).
"""

from __future__ import annotations

import gc
from collections import Counter
from contextlib import contextmanager

import mesa
import numpy as np
import pandas as pd
from mesa.time import Priority, Schedule

from ..daemons.senpai import SENPAI_TICK_S, Senpai
from ..results_contract import MEMORY_FIELDS, SUMMARY_KEYS, TENANT_GROUP_KEYS
from . import build
from .agents import NodeAgent, ProcessAgent
from .latency import LatencyHistogram
from .metrics import Accumulator, histogram_frame, summarise
from .placement import Slot

BACKGROUND_INTERVAL_S = 1.0   # tcmalloc's background thread and jemalloc's wake every second
DEFAULT_SAMPLES = 120         # time-series rows per run unless the config says otherwise


class Fleet(mesa.Model):
    """A fleet run from a validated RunConfig (clustersim.experiments.config)."""

    def __init__(self, config, seed: int | None = None) -> None:
        """Args:
            config: the resolved run configuration, stored unchanged.
            seed: overrides ``config.seed`` (sweeps pass each replication's seed).
        """
        seq = np.random.SeedSequence(config.seed if seed is None else seed)
        model_seq, node_seq, proc_seq = seq.spawn(3)
        super().__init__(rng=np.random.default_rng(model_seq))
        self.config = config
        self.tick_s, self.duration_s = float(config.tick), float(config.duration)
        self.nodes = [NodeAgent(self, **kwargs) for kwargs in build.nodes(config, node_seq)]
        self.processes = self._place_processes(proc_seq)
        self.senpais = {p: Senpai(p.node.kernel, p.cgroup, opts) for p, opts in build.senpais(config, self.processes)}
        self._set_up_metrics([t.name for t in config.tenants], config.sample_interval)
        self._set_up_tenant_groups()
        self._schedule_events()

    # --- set-up -----------------------------------------------------------------------------------------
    def _place_processes(self, seq: np.random.SeedSequence) -> list[ProcessAgent]:
        """Every tenant's replicas, each on the node placement chose for it."""
        by_slot = {Slot(n.group, n.index, n.memory_bytes): n for n in self.nodes}
        return [ProcessAgent(self, by_slot[slot], **kwargs)
                for slot, kwargs in build.processes(self.config, list(by_slot), seq, self._clock)]

    def _set_up_metrics(self, tenants: list[str], sample_interval: float | None) -> None:
        self.tenants = tenants
        self.fleet_acc = Accumulator()
        self.tenant_acc = {t: Accumulator() for t in tenants}
        self.series: list[dict] = []
        self.served_counts: dict[tuple[str, str], np.ndarray] = {}   # histogram counts at the last sample
        self.sample_s = sample_interval or max(self.tick_s, self.duration_s / DEFAULT_SAMPLES)

    def _set_up_tenant_groups(self) -> None:
        """The (tenant, node group) pairs that have replicas: tenants in config order, groups in node order."""
        groups = list(dict.fromkeys(n.group for n in self.nodes))
        placed = {(p.tenant, p.node.group) for p in self.processes}
        self.pairs = [(t, g) for t in self.tenants for g in groups if (t, g) in placed]
        self.pair_acc = {pair: Accumulator() for pair in self.pairs}

    def _schedule_events(self) -> None:
        """The tick, the allocators' background threads every second, and the metric samples."""
        self.schedule_recurring(self.tick, Schedule(interval=self.tick_s, start=self.tick_s))
        self.schedule_recurring(self.background, Schedule(interval=BACKGROUND_INTERVAL_S, start=BACKGROUND_INTERVAL_S),
                                priority=Priority.LOW)
        self.schedule_recurring(self.sample, Schedule(interval=self.sample_s, start=0.0), priority=Priority.LOW)
        if self.senpais:   # senpai.py's loop: one tick a second on every replica's leaf
            self.schedule_recurring(self.senpai_tick, Schedule(interval=SENPAI_TICK_S, start=SENPAI_TICK_S),
                                    priority=Priority.LOW)

    def _clock(self) -> float:
        return float(self.time)

    # --- events -----------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Every process steps (in a shuffled order), then every kernel advances one tick."""
        self._processes_do("step", shuffle=True)
        for node in self.nodes:
            node.advance(self.tick_s)
        self._accumulate()

    def background(self) -> None:
        self._processes_do("background")

    def senpai_tick(self) -> None:
        for controller in self.senpais.values():
            controller.tick()

    def _processes_do(self, method: str, shuffle: bool = False) -> None:
        """Call ``method`` on every process; a fleet without tenants (idle nodes) has none."""
        processes = self.agents_by_type.get(ProcessAgent)
        if processes is None:
            return
        if shuffle:
            processes.shuffle_do(method)
        else:
            processes.do(method)

    def sample(self) -> None:
        """One time-series row per (node group, tenant)."""
        rows: dict[tuple[str, str], Counter] = {}
        hists: dict[tuple[str, str], LatencyHistogram] = {}
        for p in self.processes:
            key = (p.node.group, p.tenant)
            rows.setdefault(key, Counter()).update(p.memory)
            rows[key]["processes_up"] += int(p.up)
            hists.setdefault(key, LatencyHistogram()).merge(p.latency)
        for (group, tenant), c in rows.items():
            cov = c["anon_huge"] / c["rss"] if c["rss"] else 0.0
            self.series.append({"time_s": float(self.time), "node_group": group, "tenant": tenant,
                                "thp_coverage": cov, **{f"{k}_bytes": float(c[k]) for k in MEMORY_FIELDS},
                                "processes_up": c["processes_up"],
                                "latency_p99_ms": self._interval_p99_ms((group, tenant), hists[(group, tenant)])})

    def _interval_p99_ms(self, key: tuple[str, str], hist: LatencyHistogram) -> float:
        """p99 of the requests served since the previous sample (histograms hold whole counts: exact)."""
        before = self.served_counts.get(key)
        self.served_counts[key] = hist.counts.copy()
        if before is not None:
            hist.counts -= before
        return hist.quantile_s(0.99) * 1e3

    def _accumulate(self) -> None:
        """Sum the processes' last observations, fleet-wide, per tenant and per (tenant, node group)."""
        fleet = dict.fromkeys(MEMORY_FIELDS, 0)
        per_tenant = {t: dict.fromkeys(MEMORY_FIELDS, 0) for t in self.tenant_acc}
        per_pair = {pair: dict.fromkeys(MEMORY_FIELDS, 0) for pair in self.pair_acc}
        for p in self.processes:
            s, t, g = p.memory, per_tenant[p.tenant], per_pair[(p.tenant, p.node.group)]
            for k in MEMORY_FIELDS:
                fleet[k] += s[k]
                t[k] += s[k]
                g[k] += s[k]
        self.fleet_acc.add(_full(fleet), self.tick_s)
        for t, c in per_tenant.items():
            self.tenant_acc[t].add(_full(c), self.tick_s)
        for pair, c in per_pair.items():
            self.pair_acc[pair].add(_full(c), self.tick_s)

    # --- results ------------------------------------------------------------------------------------
    def run(self, progress=None, chunk_s: float | None = None) -> None:
        """Run for the configured duration, calling ``progress(done_s, duration_s)`` along the way."""
        chunk = chunk_s or max(self.tick_s, self.duration_s / 100)
        with young_gc_threshold(YOUNG_GC_OBJECTS):
            while self.time < self.duration_s - 1e-9:
                self.run_until(min(self.duration_s, float(self.time) + chunk))
                if progress is not None:
                    progress(float(self.time), self.duration_s)

    def summary(self) -> dict[str, float]:
        counters = self._counters(self.processes)
        counters["cpu_kernel_s"] = counters.get("cpu_kernel_s", 0.0) + sum(n.daemon_s for n in self.nodes)
        return summarise(self.fleet_acc, self._hist(self.processes), counters, self.duration_s, self._vmstat())

    def tenants_frame(self) -> pd.DataFrame:
        """One row per tenant: the summary keys over its replicas."""
        rows = [{"tenant": t, **self._summarise(self.tenant_acc[t], self._of_tenant(t))} for t in self.tenants]
        return pd.DataFrame(rows, columns=["tenant", *SUMMARY_KEYS])

    def tenant_groups_frame(self) -> pd.DataFrame:
        """One row per (tenant, node group) with replicas: the summary keys over the tenant's replicas there."""
        rows = [{"tenant": t, "node_group": g, **self._summarise(self.pair_acc[(t, g)], self._of_pair(t, g))}
                for t, g in self.pairs]
        return pd.DataFrame(rows, columns=[*TENANT_GROUP_KEYS, *SUMMARY_KEYS])

    def _summarise(self, acc: Accumulator, procs: list[ProcessAgent]) -> dict[str, float]:
        return summarise(acc, self._hist(procs), self._counters(procs), self.duration_s, self._own_events(procs))

    def timeseries_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.series)

    def histograms_frame(self) -> pd.DataFrame:
        return histogram_frame({t: self._hist(self._of_tenant(t)) for t in self.tenants})

    def _of_tenant(self, name: str) -> list[ProcessAgent]:
        return [p for p in self.processes if p.tenant == name]

    def _of_pair(self, tenant: str, group: str) -> list[ProcessAgent]:
        return [p for p in self.processes if p.tenant == tenant and p.node.group == group]

    @staticmethod
    def _hist(procs) -> LatencyHistogram:
        h = LatencyHistogram()
        for p in procs:
            h.merge(p.latency)
        return h

    def _counters(self, procs) -> dict[str, float]:
        total, longest = Counter(), 0.0
        for p in procs:
            c = p.counters()
            longest = max(longest, c.pop("latency_max_s"))
            total.update({**c, **(self.senpais[p].counters() if p in self.senpais else {})})
        return {**total, "latency_max_s": longest}

    def _vmstat(self) -> dict[str, float]:
        """The fleet's kernel event counts: /proc/vmstat summed over the nodes."""
        total = Counter()
        for n in self.nodes:
            total.update(n.kernel.vmstat)
        return dict(total)

    @staticmethod
    def _own_events(procs) -> dict[str, float]:
        """The replicas' own kernel event counts, every lifetime included.

        ``thp_collapse_alloc`` is memory.stat of each replica's memcg leaf (charged to the memcg of the
        collapsed pages); ``thp_split_pmd``, which Linux counts only in /proc/vmstat, is the sum of
        ``vm_events`` of the tasks spawned in the leaf (each restart is a new task in the same leaf).
        """
        total = Counter()
        leaves = {(id(p.node), p.cgroup): p.node.kernel.cgroup(p.cgroup) for p in procs}
        for cg in leaves.values():
            total["thp_collapse_alloc"] += cg.stat["thp_collapse_alloc"]
            tasks = [t for t in cg.node.procs if t.memcg.path == cg.path]
            total["thp_split_pmd"] += sum(t.vm_events["thp_split_pmd"] for t in tasks)
        return dict(total)


def _full(c: dict) -> dict[str, float]:
    return {k: float(c.get(k, 0.0)) for k in MEMORY_FIELDS}


# A tick allocates thousands of short-lived tuples and small arrays that hold no reference cycles; with
# CPython's default young-generation threshold (2,000 objects) the cycle collector ran every few process
# steps, re-scanning the allocators' live objects each time (about 8% of a run). Collections of the young
# generation are made rarer while the fleet runs, and the interpreter's setting is restored after.
YOUNG_GC_OBJECTS = 50_000


@contextmanager
def young_gc_threshold(objects: int):
    """Raise the cycle collector's young-generation threshold for the duration of the block."""
    old = gc.get_threshold()
    gc.set_threshold(max(objects, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
