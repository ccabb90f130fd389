"""Fleet agents: a node (a kernel) and a process (a tenant's replica running an allocator over demand).

Agents are thin handles: the kernel keeps pages in numpy arrays, the allocator its heap pages, the demand its
live-span table; an agent only moves one tick of work between them and books the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..allocators import make_allocator
from ..kernel import KernelError, Node
from ..results_contract import MEMORY_FIELDS
from ..units import PAGE_SIZE
from ..workloads import AccessPattern, HeapDemand
from ..workloads.access import DEFAULT_HOT_SHARE
from ..workloads.tenants import (
    DEFAULT_REFILL_RATE,
    DEFAULT_RESTART_DELAY_S,
    DEFAULT_RPS,
    DEFAULT_SERVICE_TIME_S,
    DEFAULT_THREADS,
    DEFAULT_TLB_SENSITIVITY,
    tlb_factor,
)
from .background import start as aged_start
from .latency import LatencyHistogram
from .queue import RequestQueue

if TYPE_CHECKING:
    from .model import Fleet

# The access pattern re-marks the hot working set this often: the kernel's LRU only needs recency at the
# granularity of its aging, and marking every tick would double the syscall traffic.
ACCESS_INTERVAL_S = 10.0
# A process built without a demand: a 1 GiB tcmalloc/beta heap at the default churn.
DEFAULT_DEMAND = {"profile": "tcmalloc/beta", "heap_bytes": 1 << 30, "churn_bytes_per_s": None}


class NodeAgent(mesa.Agent):
    """One machine: its kernel, its memcg tree and the group it belongs to."""

    def __init__(self, model: Fleet, *, group: str = "group0", index: int = 0, kernel: dict | None = None,
                 cgroups: dict[str, dict] | None = None, background: dict | None = None) -> None:
        """Args:
            model: the fleet.
            group: the node group's name.
            index: this node's index within its group.
            kernel: keyword arguments of the kernel model (``clustersim.kernel.Node``); None: its defaults.
            cgroups: memcg path -> memory.min/low/high/max and oom_group settings, created in this order
                (missing parents are created without limits).
            background: the node's own services and aged start (``background.NodeBackground`` keywords);
                None: an empty node.
        """
        super().__init__(model)
        self.group, self.index = group, index
        self.kernel = Node(**(kernel or {}))
        for path, settings in (cgroups or {}).items():
            self.make_cgroup(path, settings)
        self.background = None
        if background is not None:
            self.kernel, self.background = aged_start(self.kernel, kernel or {}, cgroups or {}, background)
        self.memory_bytes = self.kernel.meminfo["MemTotal"]
        self.daemon_s = 0.0

    def make_cgroup(self, path: str, settings: dict) -> None:
        """``mkdir -p`` the memcg ``path``, then write its ``settings``; new parents get the defaults (no
        limit), as a cgroup made by mkdir has."""
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            self.kernel.cgroup("/".join(parts[:depth]))
        self.kernel.cgroup(path, **settings)

    def advance(self, dt_s: float) -> None:
        """Let the kernel's time pass: khugepaged, kswapd, kcompactd."""
        before = sum(self.kernel.cpu_s.values())
        if self.background is not None:
            self.background.step(dt_s)
        self.kernel.advance(dt_s)
        self.daemon_s += sum(self.kernel.cpu_s.values()) - before


@dataclass
class ProcessBook:
    """What one replica did, summed over its lifetimes (restarts keep adding to it)."""

    requests: float = 0.0
    failed: float = 0.0
    work: float = 0.0
    thread_s: float = 0.0
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

    def __init__(self, model: Fleet, node: NodeAgent, *, name: str = "tenant0-0", tenant: str = "tenant0",
                 cgroup: str = "", limits: dict | None = None, kind: str = "service",
                 allocator: str = "tcmalloc", allocator_options: dict | None = None, demand: dict | None = None,
                 hot_share: float = DEFAULT_HOT_SHARE, rps: float = DEFAULT_RPS,
                 service_time_s: tuple[float, float] = DEFAULT_SERVICE_TIME_S,
                 tlb_sensitivity: float = DEFAULT_TLB_SENSITIVITY, file_rate: float = 0.0,
                 file_set_bytes: int = 0, refill_rate: float = DEFAULT_REFILL_RATE,
                 restart_delay_s: float = DEFAULT_RESTART_DELAY_S, threads: int = DEFAULT_THREADS,
                 timeout_s: float | None = None, rng: np.random.Generator | None = None) -> None:
        """Args:
            model: the fleet.
            node: the node it runs on.
            name: the process name (``<tenant>-<replica>``), also the prefix of the files it reads.
            tenant: the tenant it is a replica of.
            cgroup: its memcg leaf, created with ``limits`` (the root when empty and no limits).
            limits: memory.min/low/high/max and oom_group of the leaf.
            kind: ``service`` or ``cache`` (serve requests), ``batch`` (does work), ``filecache`` (reads files).
            allocator: allocator kind (``clustersim.allocators.make_allocator``).
            allocator_options: that allocator's keyword options.
            demand: keyword arguments of ``HeapDemand`` other than ``rng`` (profile, heap, churn, modulation);
                its diurnal factor also modulates the request rate.
            hot_share: share of live spans marked hot every ACCESS_INTERVAL_S.
            rps: mean requests per second (before the diurnal factor).
            service_time_s: base service time's (median, p99), lognormal through both.
            tlb_sensitivity: share of service time in page walks at 0% THP coverage.
            file_rate: bytes per second a filecache process reads.
            file_set_bytes: size of the file set it reads through.
            refill_rate: bytes per second a cache process refills what FREE_UNDO reported lost.
            restart_delay_s: how long an OOM-killed process stays down.
            threads: worker threads serving the request queue.
            timeout_s: a request waiting longer is dropped and counted; None: requests wait as long as it takes.
            rng: the process's generator; None: a child of the model's.
        """
        super().__init__(model)
        self.node, self.name, self.tenant, self.cgroup, self.kind = node, name, tenant, cgroup, kind
        self.allocator_kind, self.allocator_options = allocator, dict(allocator_options or {})
        self.rps, self.service_time_s, self.tlb_sensitivity = rps, service_time_s, tlb_sensitivity
        self.file_rate, self.file_set_bytes, self.refill_rate = file_rate, file_set_bytes, refill_rate
        self.restart_delay_s = restart_delay_s
        self.queue = RequestQueue(threads, *service_time_s, np.inf if timeout_s is None else timeout_s)
        self.prng = rng if rng is not None else model.rng.spawn(1)[0]
        # The requests draw from their own child stream: the heap's demand (and so every memory and THP
        # result) does not depend on the request model or its settings.
        self.request_rng = self.prng.spawn(1)[0]
        if limits is not None:
            node.make_cgroup(cgroup, limits)
        self._set_up(demand or DEFAULT_DEMAND, hot_share)

    def _set_up(self, demand: dict, hot_share: float) -> None:
        """Demand, access pattern and bookkeeping, then the first boot and observation."""
        self.book = ProcessBook()
        self.down_until: float | None = None
        self.kproc = self.allocator = None
        self.demand = HeapDemand(rng=self.prng, **demand)
        self.diurnal = self.demand.modulation.diurnal
        self.access = AccessPattern(self.prng, hot_share=hot_share)
        self.next_access_s = ACCESS_INTERVAL_S
        self.lost_seen = 0
        self._memory: dict[str, float] = dict.fromkeys(MEMORY_FIELDS, 0.0)
        self._boot(self.demand.initial(self.model.time))
        self.observe()

    # --- life cycle ------------------------------------------------------------------------------------
    def _boot(self, events) -> None:
        """Start the process in its memcg with a fresh allocator, then allocate ``events``."""
        self.kproc = self.node.kernel.spawn(cgroup=self.cgroup, name=self.name, threads=self.queue.threads)
        self.lost_seen = 0
        self.queue.reset(self.model.time)
        self.allocator = make_allocator(self.allocator_kind, self.kproc, **self.allocator_options)
        self._apply(events)

    def _apply(self, events) -> float:
        """Allocations then frees of one demand step; returns the seconds they cost the process."""
        spans = (events.alloc_span_bytes,) if self.allocator.reads_object_spans else ()
        cost = self._call(self.allocator.alloc, events.alloc_ids, events.alloc_bytes, *spans)
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
        self.queue.reset(now)   # the requests it was serving die with it
        self.book.oom_kills += 1
        self.down_until = now + self.restart_delay_s

    # --- one tick ---------------------------------------------------------------------------------------
    def step(self) -> None:
        """One tick: notice an OOM kill, work (or wait to restart), observe memory."""
        now, dt = self.model.time, self.model.tick_s
        if self.up and not self.kproc.alive:
            self._killed(now)
        if self.up:
            self._work(now, dt)
        else:
            self._while_down(now, dt)
        self.observe()

    def _work(self, now: float, dt: float) -> None:
        """Demand -> allocator -> kernel for the tick, then the tick's requests (or batch work)."""
        events = self.demand.step(now, dt)
        if events.restart:
            self._restart_now(events)
            return
        held, faults_thp = self._take_stalls(), self.kproc.faults_thp   # since last tick: khugepaged's collapses
        cost = self._apply(events) + self._read_files(now, dt) + self._mark_hot(now)
        self.book.kernel_s += cost
        if not self.kproc.alive:
            self._killed(now)
            return
        self._serve(now, dt, cost, self.kproc.faults_thp - faults_thp, self._refill_s(), held)

    def background(self) -> None:
        """The allocator's background thread (every second): release and decay; not on any request."""
        if self.down_until is None and self.kproc.alive:
            self.book.kernel_s += self._call(self.allocator.background, self.model.time)

    def _while_down(self, now: float, dt: float) -> None:
        """Requests fail while down; at the end of the restart delay the process boots again."""
        self.book.failed += self.request_rate(now, dt) * dt
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
    def request_rate(self, now: float, dt: float = 0.0) -> float:
        """Request rate over [now, now + dt): the same diurnal factor as the heap's birth rate."""
        return self.rps * self.demand.modulation.birth_factor(now, dt) if self.kind in ("service", "cache") else 0.0

    def _read_files(self, now: float, dt: float) -> float:
        rate, size = self.file_rate, self.file_set_bytes
        if self.kind != "filecache" or rate <= 0 or size <= 0:
            return 0.0
        chunk = 1 << 20
        nbytes = rate * dt
        first = int((now * rate) % size) // chunk
        cost = 0.0
        for k in range(max(1, int(nbytes // chunk))):
            name = f"{self.name}/f{(first + k) % max(1, size // chunk)}"
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
        if self.kind != "cache":
            return 0.0
        lost = self.allocator.stats().undo_lost_pages
        fresh, self.lost_seen = lost - self.lost_seen, lost
        return fresh * PAGE_SIZE / self.refill_rate if self.refill_rate > 0 else 0.0

    def _take_stalls(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's stall events since the last call, as (per-thread stalls, whole-process freezes).

        A collapse holds the mm's lock for write and freezes every thread; every other kind stalls the
        thread that ran into it (docs/model.md, "Which stall blocks what"). The kernel logs each event with
        its kind, so the split is exact.
        """
        log = self.kproc.take_stalls()
        if not log:
            return _NO_STALLS, _NO_STALLS
        stalls = np.array([s for s, kind in log if kind != "collapse"], dtype=np.float64)
        freezes = np.array([s for s, kind in log if kind == "collapse"], dtype=np.float64)
        return (stalls if len(stalls) else _NO_STALLS), (freezes if len(freezes) else _NO_STALLS)

    def _serve(self, now: float, dt: float, cost: float, thp_faults: int, refill_s: float,
               earlier: tuple[np.ndarray, np.ndarray]) -> None:
        """Requests of the tick on the worker threads (queue.py), or a batch process's work.

        Per-thread stalls: the kernel's reclaim, compaction, throttling and swap-in events, each THP fault
        and a cache's refill; the rest of the tick's syscall time (4 KiB faults, lazyfree reuse, inline
        madvise) is spread evenly over its requests. Freezes: collapses since the last tick and in it.
        """
        stalls, held = self._take_stalls()
        thp_fault_s = self.node.kernel.costs.fault_thp_s
        spread = max(0.0, cost - float(stalls.sum()) - float(held.sum()) - thp_faults * thp_fault_s)
        if len(earlier[0]) or thp_faults or refill_s > 0:
            stalls = np.concatenate([earlier[0], stalls, np.full(thp_faults, thp_fault_s),
                                     [refill_s] if refill_s > 0 else []])
        freezes = np.concatenate([earlier[1], held]) if len(earlier[1]) else held
        tlb = tlb_factor(self.coverage(), self.tlb_sensitivity)
        if self.kind == "batch":
            lost = float(stalls.sum()) + float(freezes.sum()) + spread
            self.book.work += max(0.0, dt - lost) / tlb
            return
        if self.kind not in ("service", "cache"):
            return
        served = self.queue.serve(self.request_rng, now, dt, self.request_rate(now, dt), tlb, spread, stalls, freezes,
                                  self.book.hist)
        self.book.requests += len(served)
        self.book.thread_s += self.queue.threads * dt

    # --- observations ---------------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        """The process is running (not down after an OOM kill)."""
        return self.down_until is None

    @property
    def memory(self) -> dict[str, float]:
        """The process's memory as of its last observation: bytes for each of MEMORY_FIELDS (all 0 while down).

        This is what the fleet's metrics sum; it changes only when ``observe`` runs, once per tick.
        """
        return self._memory

    @property
    def latency(self) -> LatencyHistogram:
        """The latency histogram of every request served so far, over all lifetimes."""
        return self.book.hist

    def coverage(self) -> float:
        """Heap THP coverage as of the last observation (AnonHugePages / Rss)."""
        m = self._memory
        return m["anon_huge"] / m["rss"] if m["rss"] else 0.0

    def observe(self) -> dict[str, float]:
        """Read smaps and the allocator's stats once per tick; metrics and the TLB factor reuse it."""
        if self.down_until is not None or not self.kproc.alive:
            self._memory = dict.fromkeys(MEMORY_FIELDS, 0.0)
            return self._memory
        s, a = self.kproc.smaps, self.allocator
        self._memory = {"rss": s["Rss"], "anon_huge": s["AnonHugePages"], "lazyfree": s["LazyFree"],
                        "swap": s["Swap"], "allocator_free": a.free_backed_bytes, "heap_live": a.in_use_bytes}
        return self._memory

    def counters(self) -> dict[str, float]:
        """Cumulative counters including the current lifetime."""
        b, k, q = self.book, self.kproc, self.queue.stats
        live = self.down_until is None and k is not None
        return {"faults_4k": b.faults_4k + (k.faults_4k if live else 0),
                "faults_thp": b.faults_thp + (k.faults_thp if live else 0),
                "madvise_calls": b.madvise_calls + (k.madvise_calls if live else 0),
                "reclaim_stall_s": b.stall_s + (k.memstall_s if live else 0.0),
                "cpu_kernel_s": b.kernel_s, "oom_kills": b.oom_kills, "requests": b.requests,
                "failed": b.failed, "work": b.work, "thread_s": b.thread_s,
                "busy_s": q.busy_s - (self.queue.backlog_s(self.model.time + self.model.tick_s) if live else 0.0),
                "timed_out": q.timed_out, "latency_sum_s": q.response_sum_s, "latency_max_s": q.response_max_s}


_NO_STALLS = np.empty(0)


__all__ = ["PAGE_SIZE", "NodeAgent", "ProcessAgent"]
