"""From a validated run config to the fleet's agents: plain keyword arguments for each node and process.

This is the one place where the fleet reads the config's sections (``clustersim.experiments.config``):
``nodes`` gives each NodeAgent its kernel's settings and memcg tree, ``processes`` places every tenant's
replicas and gives each ProcessAgent its tenant name, memcg leaf and limits, workload, allocator options and
generator. Agents then know nothing of the config, and the model nothing of the agents' options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..allocators.registry import options_from_section
from ..daemons.senpai import SenpaiOptions
from ..workloads import Diurnal, Modulation, Restarts, Spikes, Startup
from .placement import Slot, place


def nodes(config, seq: np.random.SeedSequence) -> list[dict[str, Any]]:
    """NodeAgent keywords of every node, group by group; each kernel seeded by its own child of ``seq``."""
    seqs = iter(seq.spawn(sum(g.count for g in config.nodes)))
    return [node_kwargs(group, index, next(seqs)) for group in config.nodes for index in range(group.count)]


def node_kwargs(group, index: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    """One node of ``group``: the kernel's keyword arguments and its memcg tree, parents first."""
    k = group.kernel
    kernel = {"memory": group.memory, "profile": k.profile, "seed": seed, "thp": k.thp.model_dump(),
              "swap": group.swap.model_dump(), "vm": k.vm.model_dump(), "proposals": k.proposals,
              "costs": dict(k.costs)}
    cgroups = {path: memcg_settings(group.cgroups[path].model_dump())
               for path in sorted(group.cgroups, key=lambda p: p.count("/"))}
    return {"group": group.name, "index": index, "kernel": kernel, "cgroups": cgroups}


def processes(config, slots: list[Slot], seq: np.random.SeedSequence,
              clock: Callable[[], float]) -> Iterator[tuple[Slot, dict[str, Any]]]:
    """Each replica's node and ProcessAgent keywords, tenant by tenant; each with its own child of ``seq``."""
    seqs = iter(seq.spawn(sum(t.replicas for t in config.tenants)))
    committed: dict[Slot, int] = {}
    for tenant in config.tenants:
        chosen = place(slots, tenant.placement, tenant.replicas, tenant.workload.heap, committed)
        for replica, slot in enumerate(chosen):
            yield slot, process_kwargs(tenant, replica, np.random.default_rng(next(seqs)), clock)


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
