"""A node's own services and its aged start: system page cache read at a rate, and a burn-in before tenants.

Production nodes are not empty when a tenant lands: their own services (logging, package and container
image caches, monitoring) keep a file set in the page cache, charged to a system memcg and reclaimable by the
global reclaimer like any page cache (vmscan.py: file pages, LRU order), and a long uptime of short-lived jobs
has left the pageblocks mixed (K19: unmovable slab and page tables fall back into movable blocks and stay).
A run with ``nodes[i].background`` gets both (K22):

- **the file set**: ``file_set`` bytes as files of FILE_BYTES, read whole in a cycle at ``file_rate`` by one
  task in ``<cgroup>/background.service`` (the default cgroup, ``system.slice``, is systemd's slice for system
  services). A set larger than the node's free memory is read through the cache; a smaller one stays cached.
- **the burn-in**: before the run's tenants are placed, the node runs ``burn_in`` seconds of the file set plus
  ``churn_jobs`` short-lived jobs at a time in ``burnin.slice``. A job is a batch task without an allocator of
  its own: one anonymous mapping of a lognormal size (median ``churn_size``, sigma CHURN_SIZE_SIGMA, whole
  pageblocks), written from its start to its end over the first half of its life (so its pages interleave
  with the page cache's), then held until it exits after an exponential lifetime of mean
  ``churn_lifetime``; another starts at once. Its mapping is advised MADV_HUGEPAGE when ``churn_hugepage``
  (a THP-aware job), else it takes what the node's THP policy gives unadvised memory. Jobs still running at
  the end of the burn-in exit then.

The burn-in is cheap: ticks of ``burn_in_tick`` (10 s by default) and no allocator, request queue or metrics;
and the aged state is cached in memory, keyed by the node's kernel settings, memcg tree, background settings
and seed, so the runs of a sweep that differ only in their tenants age each node once per process
(deterministic: a cached state is a deep copy of the state a fresh burn-in leaves). Nothing is written out.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernel import MADV, KernelError, Node, Process, Region
from ..units import HPAGE_PAGES, PAGE_SIZE

FILE_BYTES = 64 << 20         # the file set is files of 64 MiB, each read whole
SERVICE_LEAF = "background.service"
CHURN_CGROUP = "burnin.slice"
CHURN_SIZE_SIGMA = 0.5        # lognormal sigma of a job's mapping size around its median
CHURN_GROWTH_SHARE = 0.5      # a job writes its mapping over this share of its lifetime
BACKGROUND_SPAWN_KEY = 0xB6   # the background's random stream: this child of the node's seed
AGED_CACHE_ENTRIES = 4        # aged node states kept in memory per process
PAGEBLOCK_BYTES = HPAGE_PAGES * PAGE_SIZE


@dataclass
class ChurnJob:
    """One short-lived burn-in job: its task, its mapping, how much of it is written, when it ends."""

    proc: Process
    region: Region
    size: int
    written: int
    start: float
    grow_s: float
    end: float


class NodeBackground:
    """The node's system services (the file set) and the burn-in that ages the node before tenants land."""

    def __init__(self, node: Node, seed: np.random.SeedSequence, *, file_set: int, file_rate: float, cgroup: str,
                 burn_in: float, burn_in_tick: float, churn_jobs: int, churn_size: int, churn_lifetime: float,
                 churn_hugepage: bool) -> None:
        self.node, self.rng = node, np.random.default_rng(seed)
        self.file_rate, self.nfiles = file_rate, -(-file_set // FILE_BYTES)
        self.burn_in_s, self.tick_s = burn_in, burn_in_tick
        self.churn_jobs, self.churn_size, self.churn_lifetime = churn_jobs, churn_size, churn_lifetime
        self.churn_hugepage = churn_hugepage
        leaf = f"{cgroup.strip('/')}/{SERVICE_LEAF}"
        _mkdir_p(node, leaf)
        _mkdir_p(node, CHURN_CGROUP)
        self.service = node.spawn(cgroup=leaf, name="background")
        self.cursor, self.owed = 0, 0.0
        self.jobs: list[ChurnJob] = []
        self.jobs_run = 0
        self.samples: list[dict[str, float]] = []

    # --- the file set -----------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """``dt`` seconds of the services' reading: whole files, in a cycle over the set."""
        if self.nfiles == 0 or self.file_rate <= 0 or not self.service.alive:
            return
        self.owed += self.file_rate * dt
        while self.owed >= FILE_BYTES and self.service.alive:
            self.service.read_file(FILE_BYTES, f"background/f{self.cursor}")
            self.cursor = (self.cursor + 1) % self.nfiles
            self.owed -= FILE_BYTES

    # --- the burn-in ------------------------------------------------------------------------------------
    def burn(self, sample_every: float | None = None) -> None:
        """Run the burn-in: the file set and the churn of jobs, in ticks of ``burn_in_tick``."""
        t, next_sample = 0.0, 0.0
        while t < self.burn_in_s - 1e-9:
            if sample_every is not None and t >= next_sample - 1e-9:
                self.samples.append(self.observe(t))
                next_sample += sample_every
            dt = min(self.tick_s, self.burn_in_s - t)
            self._churn(self.node.time, dt)
            self.step(dt)
            self.node.advance(dt)
            t += dt
        if sample_every is not None:
            self.samples.append(self.observe(t))
        for job in self.jobs:
            if job.proc.alive:
                job.proc.exit()
        self.jobs = []

    def _churn(self, now: float, dt: float) -> None:
        """End the jobs whose time is up, start new ones up to ``churn_jobs``, and let each write its share."""
        for job in self.jobs:
            if job.proc.alive and now >= job.end:
                job.proc.exit()
        self.jobs = [j for j in self.jobs if j.proc.alive]
        while len(self.jobs) < self.churn_jobs:
            self.jobs.append(self._start(now))
        for job in self.jobs:
            target = min(job.size, _whole_pages(job.size * (now + dt - job.start) / job.grow_s))
            if target > job.written:
                try:
                    job.proc.touch(job.region, job.written, target - job.written)
                except KernelError as err:   # OOM-killed while writing: the job is gone
                    if err.errno != "ESRCH":
                        raise
                job.written = target

    def _start(self, now: float) -> ChurnJob:
        size = self.rng.lognormal(np.log(self.churn_size), CHURN_SIZE_SIGMA)
        size = max(1, round(size / PAGEBLOCK_BYTES)) * PAGEBLOCK_BYTES
        life = max(self.tick_s, float(self.rng.exponential(self.churn_lifetime)))
        self.jobs_run += 1
        proc = self.node.spawn(cgroup=CHURN_CGROUP, name=f"churn{self.jobs_run}")
        region = proc.mmap(size, MADV.HUGEPAGE if self.churn_hugepage else None)
        return ChurnJob(proc, region, size, 0, now, max(self.tick_s, CHURN_GROWTH_SHARE * life), now + life)

    # --- observation ------------------------------------------------------------------------------------
    def observe(self, t: float) -> dict[str, float]:
        """The node's fragmentation state and the churn jobs' THP coverage at burn-in time ``t``."""
        phys, info = self.node.phys, self.node.meminfo
        rss = thp = 0
        for job in self.jobs:
            if job.proc.alive:
                s = job.proc.smaps
                rss, thp = rss + s["Rss"], thp + s["AnonHugePages"]
        return {"time_s": t, "free_pageblocks": phys.free_blocks, "free_bytes": info["MemFree"],
                "cached_bytes": info["Cached"], "slab_bytes": len(self.node.mm.slab_blocks) * PAGE_SIZE,
                "unmovable_blocks": phys.unmovable_blocks(), "mixed_blocks": phys.mixed_blocks(),
                "fragmentation_score": phys.fragmentation_score(), "churn_rss_bytes": rss,
                "churn_thp_coverage": thp / rss if rss else 0.0, "jobs_run": self.jobs_run}


def _whole_pages(nbytes: float) -> int:
    return int(nbytes) // PAGE_SIZE * PAGE_SIZE


def _mkdir_p(node: Node, path: str) -> None:
    """mkdir -p: each missing component of ``path`` is created with the defaults."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        node.cgroup("/".join(parts[:depth]))


# --- the aged start, cached ------------------------------------------------------------------------------
_AGED: OrderedDict[str, tuple[Node, NodeBackground]] = OrderedDict()


def aged_key(kernel: dict[str, Any], cgroups: dict[str, dict], settings: dict[str, Any]) -> str:
    """What decides the aged state: the kernel's settings and seed, the memcg tree, the background."""
    seed = kernel.get("seed")
    seed_id = (seed.entropy, seed.spawn_key, seed.pool_size) if isinstance(seed, np.random.SeedSequence) else seed
    return repr(({k: v for k, v in kernel.items() if k != "seed"}, seed_id, cgroups, settings))


def start(node: Node, kernel: dict[str, Any], cgroups: dict[str, dict], settings: dict[str, Any],
          sample_every: float | None = None) -> tuple[Node, NodeBackground]:
    """``node`` (built from ``kernel`` with ``cgroups``) aged by its background, or the cached aged state.

    ``sample_every``: record ``NodeBackground.observe`` that often during a fresh burn-in (observing changes
    nothing, so a cached state is the same either way and keeps the samples of the burn-in that made it).
    """
    key = aged_key(kernel, cgroups, settings)
    if key in _AGED:
        _AGED.move_to_end(key)
        return copy.deepcopy(_AGED[key])
    seed = kernel.get("seed", 0)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, BACKGROUND_SPAWN_KEY))
    bg = NodeBackground(node, child, **settings)
    bg.burn(sample_every)
    if bg.burn_in_s > 0:
        _AGED[key] = copy.deepcopy((node, bg))
        while len(_AGED) > AGED_CACHE_ENTRIES:
            _AGED.popitem(last=False)
    return node, bg


def clear_cache() -> None:
    """Forget every cached aged state."""
    _AGED.clear()


__all__ = ["FILE_BYTES", "NodeBackground", "aged_key", "clear_cache", "start"]
