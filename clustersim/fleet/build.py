"""From a validated run config to the fleet's agents: plain keyword arguments for each node and process.

This is the one place where the fleet reads the config's sections (``clustersim.experiments.config``):
``nodes`` gives each NodeAgent its kernel's settings, memcg tree and background (its own services and aged
start, or None), ``processes`` places every tenant's
replicas and gives each ProcessAgent its tenant name, memcg leaf and limits, workload, allocator options and
generator. Agents then know nothing of the config, and the model nothing of the agents' options.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..allocators.registry import options_from_section
from ..daemons.senpai import SenpaiOptions
from ..units import PAGE_SIZE
from ..workloads import Diurnal, Modulation, Restarts, Spikes, Startup
from .placement import Slot, place


@dataclass(frozen=True)
class Placed:
    """One replica and where placement put it, by its identity in the whole fleet."""

    index: int     # the process's position in fleet order (tenant by tenant, replica by replica)
    tenant: int    # its tenant's position in ``config.tenants``
    replica: int
    node: int      # its node's position in fleet order (group by group)


def slots(config) -> list[Slot]:
    """Every node of the fleet, group by group, as placement sees it (MemTotal: whole pages of memory)."""
    return [Slot(g.name, index, g.memory // PAGE_SIZE * PAGE_SIZE) for g in config.nodes for index in range(g.count)]


def placement(config, slots_: list[Slot]) -> list[Placed]:
    """Every replica's node, tenant by tenant: the one placement of the run (cheap and fleet-wide)."""
    position = {slot: i for i, slot in enumerate(slots_)}
    committed: dict[Slot, int] = {}
    out: list[Placed] = []
    for t, tenant in enumerate(config.tenants):
        chosen = place(slots_, tenant.placement, tenant.replicas, tenant.workload.heap, committed)
        first = len(out)
        out.extend(Placed(first + r, t, r, position[slot]) for r, slot in enumerate(chosen))
    return out


def nodes(config, seq: np.random.SeedSequence, only: Collection[int] | None = None) -> list[dict[str, Any]]:
    """NodeAgent keywords of every node (or of the nodes at positions ``only``), group by group; each kernel
    seeded by the child of ``seq`` at its position in the whole fleet."""
    seqs = seq.spawn(sum(g.count for g in config.nodes))
    members = [(group, index) for group in config.nodes for index in range(group.count)]
    return [node_kwargs(group, index, seqs[i]) for i, (group, index) in enumerate(members)
            if only is None or i in only]


def node_kwargs(group, index: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    """One node of ``group``: the kernel's keyword arguments and its memcg tree, parents first."""
    k = group.kernel
    kernel = {"memory": group.memory, "profile": k.profile, "seed": seed, "thp": k.thp.model_dump(),
              "swap": group.swap.model_dump(), "vm": k.vm.model_dump(), "proposals": k.proposals,
              "costs": dict(k.costs)}
    cgroups = {path: memcg_settings(group.cgroups[path].model_dump())
               for path in sorted(group.cgroups, key=lambda p: p.count("/"))}
    bg = group.background
    background = bg.model_dump() if bg.enabled else None
    return {"group": group.name, "index": index, "kernel": kernel, "cgroups": cgroups, "background": background}


def processes(config, slots: list[Slot], seq: np.random.SeedSequence,
              clock: Callable[[], float]) -> Iterator[tuple[Slot, dict[str, Any]]]:
    """Each replica's node and ProcessAgent keywords, tenant by tenant; each with its own child of ``seq``."""
    for p in placed_processes(config, placement(config, slots), seq, clock):
        yield slots[p[0].node], p[1]


def placed_processes(config, placed: list[Placed], seq: np.random.SeedSequence,
                     clock: Callable[[], float]) -> Iterator[tuple[Placed, dict[str, Any]]]:
    """ProcessAgent keywords of the ``placed`` replicas (all or some of the fleet's), in fleet order; each
    with the child of ``seq`` at its position in the whole fleet, whichever replicas are built here."""
    seqs = seq.spawn(sum(t.replicas for t in config.tenants))
    for p in placed:
        yield p, process_kwargs(config.tenants[p.tenant], p.replica, np.random.default_rng(seqs[p.index]), clock)


def process_kwargs(tenant, replica: int, rng: np.random.Generator, clock: Callable[[], float]) -> dict[str, Any]:
    """Replica ``replica`` of ``tenant``: runs in the memcg leaf ``<tenant.cgroup>/<name>-<replica>``."""
    w = tenant.workload
    name = f"{tenant.name}-{replica}"
    return {
        "name": name, "tenant": tenant.name, "cgroup": f"{tenant.cgroup.strip('/')}/{name}".strip("/"),
        "limits": memcg_settings(tenant.limits.model_dump()), "kind": w.kind, "allocator": tenant.allocator.kind,
        "allocator_options": options_from_section(tenant.allocator.model_dump(), clock),
        "demand": demand_kwargs(w), "hot_share": w.hot_share, "rps": w.rps,
        "service_time_s": (w.service_time.median, w.service_time.p99), "tlb_sensitivity": w.tlb_sensitivity,
        "file_rate": w.file_rate, "file_set_bytes": w.file_set, "refill_rate": w.refill_rate,
        "restart_delay_s": w.restarts.delay, "threads": w.threads, "timeout_s": w.timeout, "rng": rng,
    }


def senpais(config, processes) -> list[tuple[Any, SenpaiOptions]]:
    """(process, senpai options) for every replica of a tenant with a ``senpai`` section, in process order."""
    sections = {t.name: t.senpai for t in config.tenants}
    return [(p, SenpaiOptions(**sections[p.tenant].model_dump())) for p in processes
            if sections[p.tenant] is not None]


def memcg_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A memcg section as ``Node.cgroup`` settings: a None limit means 'max'."""
    return {k: ("max" if v is None else v) for k, v in settings.items()}


def demand_kwargs(w) -> dict[str, Any]:
    """HeapDemand keywords (all but ``rng``) of a workload section, its modulation included."""
    mod = Modulation(diurnal=Diurnal(w.diurnal.amplitude, w.diurnal.period, w.diurnal.phase),
                     spikes=Spikes(w.spikes.rate, w.spikes.size, w.spikes.lifetime),
                     startup=Startup(w.startup.duration, w.startup.bytes),
                     restarts=Restarts(w.restarts.interval))
    return {"profile": w.profile, "heap_bytes": w.heap, "churn_bytes_per_s": w.churn,
            "min_span_bytes": w.span_quantum, "modulation": mod}
