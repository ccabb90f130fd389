"""Fleet agents: a node (a kernel) and a process (a tenant's replica running an allocator over demand).

Agents are thin handles: the kernel keeps pages in numpy arrays, the allocator its heap pages, the demand its
live-span table; an agent only moves one tick of work between them and books the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..allocators import make_allocator
from ..kernel import KernelError, Node
from ..results_contract import MEMORY_FIELDS
from ..units import PAGE_SIZE
from ..workloads import AccessPattern, HeapDemand, Modulation
from ..workloads.tenants import tlb_factor
from .latency import SAMPLED_REQUESTS, LatencyHistogram, serve

if TYPE_CHECKING:
    from .model import Fleet

# The access pattern re-marks the hot working set this often: the kernel's LRU only needs recency at the
# granularity of its aging, and marking every tick would double the syscall traffic.
ACCESS_INTERVAL_S = 10.0


class NodeAgent(mesa.Agent):
    """One machine: its kernel and the group it belongs to."""

    def __init__(self, model: Fleet, group: str, index: int, kernel: Node) -> None:
        super().__init__(model)
        self.group, self.index, self.kernel = group, index, kernel
        self.daemon_s = 0.0

    def advance(self, dt_s: float) -> None:
        """Let the kernel's time pass: khugepaged, kswapd, kcompactd."""
        before = sum(self.kernel.cpu_s.values())
        self.kernel.advance(dt_s)
        self.daemon_s += sum(self.kernel.cpu_s.values()) - before


@dataclass
class ProcessBook:
    """What one replica did, summed over its lifetimes (restarts keep adding to it)."""

    requests: float = 0.0
    failed: float = 0.0
    work: float = 0.0
    kernel_s: float = 0.0
    stall_s: float = 0.0
    faults_4k: int = 0
    faults_thp: int = 0
    madvise_calls: int = 0
    oom_kills: int = 0
    restarts: int = 0
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)


class ProcessAgent(mesa.Agent):
    """A replica of a tenant: workload demand -> allocator -> kernel, and requests served on top."""

    def __init__(self, model: Fleet, node: NodeAgent, tenant, replica: int, rng: np.random.Generator) -> None:
        super().__init__(model)
        self.node, self.tenant, self.replica, self.prng = node, tenant, replica, rng
        self.cgroup = f"{tenant.cgroup.strip('/')}/{tenant.name}-{replica}".strip("/")
        self.book = ProcessBook()
        self.down_until: float | None = None
        self.kproc = self.allocator = None
        self.demand = _make_demand(tenant.workload, rng)
        self.diurnal = self.demand.modulation.diurnal
        self.access = AccessPattern(rng, hot_share=tenant.workload.hot_share)
        self.next_access_s = ACCESS_INTERVAL_S
        self.lost_seen = 0
        self.last: dict[str, float] = dict.fromkeys(MEMORY_FIELDS, 0.0)
        self._boot(self.demand.initial(model.time))
        self.observe()

    # --- life cycle ------------------------------------------------------------------------------------
    def _boot(self, events) -> None:
        """Start the process in its memcg with a fresh allocator, then allocate ``events``."""
        self.kproc = self.node.kernel.spawn(cgroup=self.cgroup, name=f"{self.tenant.name}-{self.replica}")
        self.lost_seen = 0
        self.allocator = make_allocator(self.tenant.allocator.kind, self.kproc,
                                        **self.model.allocator_options(self.tenant, self.node.group))
        self._apply(events)

    def _apply(self, events) -> float:
        """Allocations then frees of one demand step; returns the seconds they cost the process."""
        cost = self._call(self.allocator.alloc, events.alloc_ids, events.alloc_bytes)
        if len(events.free_ids):
            cost += self._call(self.allocator.free, events.free_ids)
        return cost

    def _call(self, fn, *args) -> float:
        """Run an allocator operation; a SIGKILL (OOM) midway stops the process where it stands (ESRCH)."""
        if not self.kproc.alive:
            return 0.0
        try:
            return fn(*args)
        except KernelError as err:
            if err.errno != "ESRCH":
                raise
            return 0.0

    def _retire(self) -> None:
        """Book the finished lifetime's kernel counters."""
        k, b = self.kproc, self.book
        b.faults_4k += k.faults_4k
        b.faults_thp += k.faults_thp
        b.madvise_calls += k.madvise_calls
        b.stall_s += k.memstall_s

    def _killed(self, now: float) -> None:
        """The OOM killer took this process: it stays down for the restart delay."""
        self._retire()
        self.book.oom_kills += 1
        self.down_until = now + self.tenant.workload.restarts.delay

    # --- one tick ---------------------------------------------------------------------------------------
    def step(self) -> None:
        """Demand -> allocator -> kernel for one tick, serve the tick's requests, observe memory."""
        self._work(self.model.time, self.model.tick_s)
        self.observe()

    def _work(self, now: float, dt: float) -> None:
        if self.down_until is not None:
            self._while_down(now, dt)
            return
        if not self.kproc.alive:
            self._killed(now)
            self._while_down(now, dt)
            return
        events = self.demand.step(now, dt)
        if events.restart:
            self._restart_now(events)
            return
        faults_thp = self.kproc.faults_thp
        cost = self._apply(events) + self._read_files(now, dt) + self._mark_hot(now)
        self.book.kernel_s += cost
        if not self.kproc.alive:
            self._killed(now)
            return
        self._serve(dt, cost, self.kproc.faults_thp - faults_thp, self._refill_s())

    def background(self) -> None:
        """The allocator's background thread (every second): release and decay; not on any request."""
        if self.down_until is None and self.kproc.alive:
            self.book.kernel_s += self._call(self.allocator.background, self.model.time)

    def _while_down(self, now: float, dt: float) -> None:
        self.book.failed += self.request_rate(now) * dt
        if now >= self.down_until:
            self.down_until = None
            self.book.restarts += 1
            self._boot(self.demand.restart(now))

    def _restart_now(self, events) -> None:
        """A planned restart: exit, and come back at once with an empty heap."""
        self._retire()
        self.kproc.exit()
        self.book.restarts += 1
        self._boot(events)

    # --- work of the tick ----------------------------------------------------------------------------
    def request_rate(self, now: float) -> float:
        """Request rate at ``now``: the same diurnal factor as the heap's birth rate."""
        w = self.tenant.workload
        return w.rps * self.diurnal.factor(now) if w.kind in ("service", "cache") else 0.0

    def _read_files(self, now: float, dt: float) -> float:
        w = self.tenant.workload
        if w.kind != "filecache" or w.file_rate <= 0 or w.file_set <= 0:
            return 0.0
        chunk = 1 << 20
        nbytes = w.file_rate * dt
        first = int((now * w.file_rate) % w.file_set) // chunk
        cost = 0.0
        for k in range(max(1, int(nbytes // chunk))):
            name = f"{self.tenant.name}-{self.replica}/f{(first + k) % max(1, w.file_set // chunk)}"
            cost += self.kproc.read_file(chunk, name)
            if not self.kproc.alive:
                break
        return cost

    def _mark_hot(self, now: float) -> float:
        """Every ACCESS_INTERVAL_S, the hot share of live spans is read (LRU recency for reclaim)."""
        if now < self.next_access_s:
            return 0.0
        self.next_access_s = now + ACCESS_INTERVAL_S
        hot = self.access.hot_ids(self.demand.live_ids, now)
        return self._call(self.allocator.access, hot) if len(hot) else 0.0

    def _refill_s(self) -> float:
        """A cache tenant refills what FREE_UNDO reported lost: one cache miss of that many bytes."""
        w = self.tenant.workload
        if w.kind != "cache":
            return 0.0
        lost = self.allocator.stats().undo_lost_pages
        fresh, self.lost_seen = lost - self.lost_seen, lost
        return fresh * PAGE_SIZE / w.refill_rate if w.refill_rate > 0 else 0.0

    def _serve(self, dt: float, cost: float, thp_faults: int, refill_s: float = 0.0) -> None:
        """Requests of the tick: base x TLB factor + spread small costs + discrete stalls on single ones."""
        w, b = self.tenant.workload, self.book
        stalls = self.kproc.take_stalls()
        if stalls or thp_faults or refill_s > 0:
            stalls = np.array(stalls)
            thp_fault_s = thp_faults * self.node.kernel.costs.fault_thp_s
            smooth = max(0.0, cost - float(stalls.sum()) - thp_fault_s)
            discrete = np.concatenate([stalls, np.full(thp_faults, self.node.kernel.costs.fault_thp_s),
                                       [refill_s] if refill_s > 0 else []])
        else:   # most ticks: no discrete event, every cost is spread
            smooth, discrete = max(0.0, cost), _NO_STALLS
        tlb = tlb_factor(self.coverage(), w.tlb_sensitivity)
        if w.kind == "batch":
            b.work += max(0.0, dt - float(discrete.sum()) - smooth) / tlb
            return
        n = int(self.prng.poisson(self.request_rate(self.model.time) * dt))
        if n == 0:
            return
        base = _service_times(w.service_time, self.prng, min(n, SAMPLED_REQUESTS))
        serve(self.prng, base, n, tlb, smooth, discrete, b.hist)
        b.requests += n

    # --- observations ---------------------------------------------------------------------------------
    def coverage(self) -> float:
        """Heap THP coverage as of the last observation (AnonHugePages / Rss)."""
        return self.last["anon_huge"] / self.last["rss"] if self.last["rss"] else 0.0

    def observe(self) -> dict[str, float]:
        """Read smaps and the allocator's stats once per tick; metrics and the TLB factor reuse it."""
        if self.down_until is not None or not self.kproc.alive:
            self.last = dict.fromkeys(MEMORY_FIELDS, 0.0)
            return self.last
        s, a = self.kproc.smaps, self.allocator
        self.last = {"rss": s["Rss"], "anon_huge": s["AnonHugePages"], "lazyfree": s["LazyFree"],
                     "swap": s["Swap"], "allocator_free": a.free_backed_bytes, "heap_live": a.in_use_bytes}
        return self.last

    def counters(self) -> dict[str, float]:
        """Cumulative counters including the current lifetime."""
        b, k = self.book, self.kproc
        live = self.down_until is None and k is not None
        return {"faults_4k": b.faults_4k + (k.faults_4k if live else 0),
                "faults_thp": b.faults_thp + (k.faults_thp if live else 0),
                "madvise_calls": b.madvise_calls + (k.madvise_calls if live else 0),
                "reclaim_stall_s": b.stall_s + (k.memstall_s if live else 0.0),
                "cpu_kernel_s": b.kernel_s, "oom_kills": b.oom_kills, "requests": b.requests,
                "failed": b.failed, "work": b.work}


_NO_STALLS = np.empty(0)


def _service_times(st, rng: np.random.Generator, n: int) -> np.ndarray:
    """Lognormal through (median, p99): sigma = ln(p99/median) / z(0.99)."""
    if st.p99 <= st.median:
        return np.full(n, st.median)
    return st.median * np.exp(_lognormal_sigma(st.median, st.p99) * rng.standard_normal(n))


@cache
def _lognormal_sigma(median: float, p99: float) -> float:
    """sigma of the lognormal with this median and p99 (computed once per service time, not per tick)."""
    return np.log(p99 / median) / 2.3263478740408408


def _make_demand(w, rng: np.random.Generator) -> HeapDemand:
    from ..workloads import Diurnal, Restarts, Spikes, Startup
    mod = Modulation(diurnal=Diurnal(w.diurnal.amplitude, w.diurnal.period, w.diurnal.phase),
                     spikes=Spikes(w.spikes.rate, w.spikes.size, w.spikes.lifetime),
                     startup=Startup(w.startup.duration, w.startup.bytes),
                     restarts=Restarts(w.restarts.interval))
    return HeapDemand(w.profile, w.heap, w.churn, rng, min_span_bytes=w.span_quantum, modulation=mod)


__all__ = ["PAGE_SIZE", "NodeAgent", "ProcessAgent"]
