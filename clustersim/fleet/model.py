"""Fleet: the mesa model of many nodes running many tenants' processes.

Builds node groups (each node a kernel with its memcg tree), places tenants' replicas, and drives time with
mesa's event scheduling: the tick (every process steps, then every kernel advances), the allocators'
background threads every second, and metric samples. All randomness flows from the run's one
``numpy.random.SeedSequence``: the model's generator, one child per node and one per process, each chosen by
the node's or process's position in the whole fleet.

A Fleet runs one shard of the fleet (``layout.py``): a contiguous range of nodes and the replicas placed on
them; by default every node (a serial run). The model's generator orders each tick's process steps: it
shuffles the whole fleet's process positions every tick, the same in every shard, and a shard steps its own
processes in that order, so the processes of one node step in the same order whatever the split. A shard
records what it observes unsummarised (``state.ShardState``); the tables come from merging the shards'
states (``state.merge``), a serial run's from its one state.

Results are summarised fleet-wide, per tenant and per (tenant, node group). The fleet's kernel event counts
are the nodes' /proc/vmstat; a tenant's are its own, read from its memcg leaves (memory.stat) and the tasks
spawned in them (``Process.vm_events``, for the events Linux counts only node-wide).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import mesa
import numpy as np
import pandas as pd
from mesa.time import Priority, Schedule

from ..daemons.senpai import SENPAI_TICK_S, Senpai
from ..results_contract import MEMORY_FIELDS, RunTables
from . import build
from .agents import NodeAgent, ProcessAgent
from .latency import NBUCKETS
from .layout import Shard, whole
from .state import ProcessRecord, ShardState, merge

BACKGROUND_INTERVAL_S = 1.0   # tcmalloc's background thread and jemalloc's wake every second
DEFAULT_SAMPLES = 120         # time-series rows per run unless the config says otherwise


class Fleet(mesa.Model):
    """A fleet run (or one shard of it) from a validated RunConfig (clustersim.experiments.config)."""

    def __init__(self, config, seed: int | None = None, shard: Shard | None = None) -> None:
        """Args:
            config: the resolved run configuration, stored unchanged.
            seed: overrides ``config.seed`` (sweeps pass each replication's seed).
            shard: the nodes to build and run, with their replicas (``layout.shards``); None: every node.
        """
        seq = np.random.SeedSequence(config.seed if seed is None else seed)
        model_seq, node_seq, proc_seq = seq.spawn(3)
        super().__init__(rng=np.random.default_rng(model_seq))
        self.config, self.shard = config, shard or whole(config)
        self.layout = self.shard.layout
        self.tick_s, self.duration_s = float(config.tick), float(config.duration)
        self.nodes = [NodeAgent(self, **kwargs) for kwargs in build.nodes(config, node_seq, self.shard.nodes)]
        self.processes = self._place_processes(proc_seq)
        self.senpais = {p: Senpai(p.node.kernel, p.cgroup, opts) for p, opts in build.senpais(config, self.processes)}
        self._set_up_metrics(config.sample_interval)
        self._schedule_events()

    # --- set-up -----------------------------------------------------------------------------------------
    def _place_processes(self, seq: np.random.SeedSequence) -> list[ProcessAgent]:
        """The shard's replicas, each on the node placement chose for it, in fleet order."""
        first = self.shard.nodes.start
        out = []
        for placed, kwargs in build.placed_processes(self.config, list(self.shard.placed), seq, self._clock):
            out.append(ProcessAgent(self, self.nodes[placed.node - first], **kwargs))
        self.positions = [p.index for p in self.shard.placed]
        self.node_positions = [p.node for p in self.shard.placed]
        self.by_position = dict(zip(self.positions, out, strict=True))
        return out

    def _set_up_metrics(self, sample_interval: float | None) -> None:
        """Each process's populations (fleet, tenant, pair) and time-series row, and the shard's records."""
        lay = self.layout
        tenant_of = {t: i for i, t in enumerate(lay.tenants)}
        pair_of = {pair: j for j, pair in enumerate(lay.pairs)}
        key_of = {key: k for k, key in enumerate(lay.keys)}
        base = 1 + len(lay.tenants)
        self.pair_index = [pair_of[(p.tenant, p.node.group)] for p in self.processes]
        self.populations = [(0, 1 + tenant_of[p.tenant], base + j) for p, j in zip(self.processes, self.pair_index,
                                                                                    strict=True)]
        self.key_index = [key_of[(p.node.group, p.tenant)] for p in self.processes]
        self.n_populations = base + len(lay.pairs)
        self.ticks: list[np.ndarray] = []
        self.samples: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self.sample_s = sample_interval or max(self.tick_s, self.duration_s / DEFAULT_SAMPLES)

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
        for p in self._shuffled():
            p.step()
        for node in self.nodes:
            node.advance(self.tick_s)
        self._accumulate()

    def _shuffled(self) -> list[ProcessAgent]:
        """This shard's processes in the tick's order: the model's stdlib generator shuffles the positions of
        the whole fleet's processes (as mesa's ``AgentSet.shuffle_do`` shuffles an agent set in creation
        order), and the shard keeps its own."""
        if not self.layout.processes:
            return []
        order = list(range(self.layout.processes))
        self.random.shuffle(order)
        if len(self.processes) == self.layout.processes:
            return [self.processes[i] for i in order]
        mine = self.by_position
        return [mine[i] for i in order if i in mine]

    def background(self) -> None:
        for p in self.processes:
            p.background()

    def senpai_tick(self) -> None:
        for controller in self.senpais.values():
            controller.tick()

    def sample(self) -> None:
        """Per time-series row (node group, tenant): memory totals, processes up, latency counts so far."""
        keys = len(self.layout.keys)
        memory, hist = np.zeros((keys, len(MEMORY_FIELDS))), np.zeros((keys, NBUCKETS))
        up = np.zeros(keys, dtype=np.int64)
        for p, k in zip(self.processes, self.key_index, strict=True):
            m = p.memory
            memory[k] += [m[f] for f in MEMORY_FIELDS]
            up[k] += int(p.up)
            hist[k] += p.latency.counts
        self.samples.append((float(self.time), memory, up, hist))

    def _accumulate(self) -> None:
        """Sum the processes' last observations, fleet-wide, per tenant and per (tenant, node group)."""
        totals = [[0] * len(MEMORY_FIELDS) for _ in range(self.n_populations)]
        for p, pops in zip(self.processes, self.populations, strict=True):
            values = [p.memory[f] for f in MEMORY_FIELDS]
            for j in pops:
                row = totals[j]
                for f, v in enumerate(values):
                    row[f] += v
        self.ticks.append(np.array(totals, dtype=np.float64))

    # --- results ------------------------------------------------------------------------------------
    def run(self, progress=None, chunk_s: float | None = None) -> None:
        """Run for the configured duration, calling ``progress(done_s, duration_s)`` along the way."""
        chunk = chunk_s or max(self.tick_s, self.duration_s / 100)
        with young_gc_threshold(YOUNG_GC_OBJECTS):
            while self.time < self.duration_s - 1e-9:
                self.run_until(min(self.duration_s, float(self.time) + chunk))
                if progress is not None:
                    progress(float(self.time), self.duration_s)

    def state(self) -> ShardState:
        """What this shard observed so far, for ``state.merge``."""
        keys, pairs = len(self.layout.keys), len(self.layout.pairs)
        times = [t for t, *_ in self.samples]
        pair_hist = np.zeros((pairs, NBUCKETS))
        for p, j in zip(self.processes, self.pair_index, strict=True):
            pair_hist[j] += p.latency.counts
        return ShardState(
            layout=self.layout, nodes=self.shard.nodes, tick_s=self.tick_s, duration_s=self.duration_s,
            ticks=np.array(self.ticks).reshape(len(self.ticks), self.n_populations, len(MEMORY_FIELDS)),
            sample_times=times, sample_memory=_stack([s[1] for s in self.samples], (keys, len(MEMORY_FIELDS))),
            sample_up=_stack([s[2] for s in self.samples], (keys,), np.int64),
            sample_hist=_stack([s[3] for s in self.samples], (keys, NBUCKETS)), pair_hist=pair_hist,
            processes=[ProcessRecord(i, p.tenant, j, (n, p.cgroup), self._counters_of(p))
                       for i, n, p, j in zip(self.positions, self.node_positions, self.processes, self.pair_index,
                                             strict=True)],
            leaves=self._leaves(), daemon_s=[n.daemon_s for n in self.nodes],
            vmstat=[dict(n.kernel.vmstat) for n in self.nodes])

    def _counters_of(self, p: ProcessAgent) -> dict[str, float]:
        """A process's counters, with those of the senpai on its leaf (its CPU and the reclaim it caused)."""
        senpai = self.senpais.get(p)
        return {**p.counters(), **senpai.counters()} if senpai is not None else p.counters()

    def _leaves(self) -> dict[tuple[int, str], tuple[int, int]]:
        """Each replica's memcg leaf: ``thp_collapse_alloc`` of its memory.stat (charged to the memcg of the
        collapsed pages) and ``thp_split_pmd``, which Linux counts only in /proc/vmstat, summed over the
        ``vm_events`` of the tasks spawned in the leaf (each restart is a new task in the same leaf)."""
        out = {}
        for p, n in zip(self.processes, self.node_positions, strict=True):
            key = (n, p.cgroup)
            if key in out:
                continue
            cg = p.node.kernel.cgroup(p.cgroup)
            tasks = [t for t in cg.node.procs if t.memcg.path == cg.path]
            out[key] = (cg.stat["thp_collapse_alloc"], sum(t.vm_events["thp_split_pmd"] for t in tasks))
        return out

    def tables(self) -> RunTables:
        """The run's tables; for a fleet that is one shard of a run, ``state.merge`` its shards' states."""
        return merge([self.state()])

    def summary(self) -> dict[str, float]:
        return self.tables().summary

    def tenants_frame(self) -> pd.DataFrame:
        """One row per tenant: the summary keys over its replicas."""
        return self.tables().tenants

    def tenant_groups_frame(self) -> pd.DataFrame:
        """One row per (tenant, node group) with replicas: the summary keys over the tenant's replicas there."""
        return self.tables().tenant_groups

    def timeseries_frame(self) -> pd.DataFrame:
        return self.tables().timeseries

    def histograms_frame(self) -> pd.DataFrame:
        return self.tables().latency_histograms


def _stack(rows: list[np.ndarray], shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    return np.array(rows, dtype=dtype).reshape(len(rows), *shape)


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
