"""Checks that span several keys of a run file, run after each key is valid on its own.

Each returns ``key.path: value -> what is allowed`` lines. They catch configs that would run but cannot mean
what their author intended: a heap larger than a node's memory plus swap, placements naming unknown
node groups, memcg limits in the wrong order, allocators told to use an advice their kernel lacks.
Heaps that together overcommit a node are allowed: the run goes on and its OOM kills, swap and reclaim are the
outcome an overcommit experiment studies; ``config_warnings`` names each such node group and its ratio
(heap sum / memory), and the command line prints them.
Releasing with MADV_FREE on linux-4.5 is allowed: the kernel gives it different semantics (DONTNEED on a
swapless node), which is an experiment, not a mistake. A never-merged advice (SPLITTABLE, FREE_UNDO) without
its proposal is an error, because no real allocator has a fallback for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from clustersim.units import format_size as fmt_size

from .capacity import STATE_BYTES_PER_GIB, max_fleet_memory_bytes
from .errors import problem
from .schema import RunConfig, Tenant
from .sections import Memcg, NodeGroup

# madvise option -> the kernel proposal that must be on for it to exist.
ADVICE_PROPOSAL = {"splittable": "madv_splittable", "free_undo": "madv_free_undo"}
COLLAPSE_SINCE = "linux-6.1"  # MADV_COLLAPSE was merged in 6.1
# (lower, upper): memcg settings that must not exceed each other when both are set.
_MEMCG_ORDER = (("min", "high"), ("low", "high"), ("min", "max"), ("low", "max"), ("high", "max"))


def cross_check(config: RunConfig) -> list[str]:
    """Every cross-field problem of a config that passed the per-key checks."""
    problems = [*_run_checks(config), *_unique_names(config), *_capacity_checks(config)]
    for i, group in enumerate(config.nodes):
        problems += _cgroup_tree_checks(group, ("nodes", i))
    for j, tenant in enumerate(config.tenants):
        problems += _tenant_checks(config, tenant, ("tenants", j))
    if not problems:
        problems += _fit_checks(config)
    return problems


def section_checks(data: Mapping[str, Any]) -> list[str]:
    """The checks within one node group or tenant, for each that is valid on its own.

    Run when other keys of the file are invalid, so that a problem in one tenant does not hide the problem
    of another: every problem of a file is listed together.
    """
    problems: list[str] = []
    for key, section, checks in (("nodes", NodeGroup, _group_local), ("tenants", Tenant, _tenant_local)):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            try:
                valid = section.model_validate(item)
            except ValidationError:
                continue
            problems += checks(valid, (key, i))
    return problems


def _group_local(group: NodeGroup, loc: tuple[object, ...]) -> list[str]:
    return list(_cgroup_tree_checks(group, loc))


def _tenant_local(tenant: Tenant, loc: tuple[object, ...]) -> list[str]:
    return [*memcg_order(tenant.limits, (*loc, "limits")), *_workload_checks(tenant, (*loc, "workload"))]


def _capacity_checks(config: RunConfig) -> Iterator[str]:
    """The nodes' model state must fit this machine (capacity.py): no MemoryError inside the run."""
    most = max_fleet_memory_bytes()
    if most is None:
        return
    total = sum(g.count * g.memory for g in config.nodes)
    why = (f"this machine holds the model of at most {fmt_size(most)} of node memory "
           f"({fmt_size(STATE_BYTES_PER_GIB)} of state per G, half of its physical memory)")
    for i, group in enumerate(config.nodes):
        if group.memory > most:
            yield problem(("nodes", i, "memory"), fmt_size(group.memory), f"at most {fmt_size(most)}: {why}")
    if total > most and all(g.memory <= most for g in config.nodes):
        yield problem(("nodes",), f"{fmt_size(total)} in all", f"count x memory summed at most {fmt_size(most)}: "
                      + why)


def _run_checks(config: RunConfig) -> Iterator[str]:
    if config.duration <= 0:
        yield problem(("duration",), config.duration, "a duration > 0")
    if config.tick <= 0 or config.tick > config.duration:
        yield problem(("tick",), config.tick, f"a duration > 0 and <= duration ({config.duration:g} s)")


def _unique_names(config: RunConfig) -> Iterator[str]:
    for key, items in (("nodes", config.nodes), ("tenants", config.tenants)):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.name in seen:
                yield problem((key, i, "name"), item.name, f"a name not used by another item of {key}")
            seen.add(item.name)


def _cgroup_tree_checks(group: NodeGroup, loc: tuple[object, ...]) -> Iterator[str]:
    for path, memcg in group.cgroups.items():   # the paths themselves are checked per key (names.py)
        yield from memcg_order(memcg, (*loc, "cgroups", path))


def memcg_order(memcg: Memcg, loc: tuple[object, ...]) -> Iterator[str]:
    """min and low at most high and max, high at most max (None is 'max')."""
    for lower, upper in _MEMCG_ORDER:
        lo, hi = getattr(memcg, lower), getattr(memcg, upper)
        if lo is not None and hi is not None and lo > hi:
            yield problem((*loc, lower), fmt_size(lo), f"<= {upper} ({fmt_size(hi)})")


def _tenant_checks(config: RunConfig, tenant: Tenant, loc: tuple[object, ...]) -> Iterator[str]:
    yield from _tenant_local(tenant, loc)
    yield from _placement_checks(config, tenant, loc)
    for group in placed_groups(config, tenant):
        yield from _advice_checks(tenant, group, (*loc, "allocator"))


def _placement_checks(config: RunConfig, tenant: Tenant, loc: tuple[object, ...]) -> Iterator[str]:
    if not isinstance(tenant.placement, dict):
        return
    names = [g.name for g in config.nodes]
    for name in tenant.placement:
        if name not in names:
            yield problem((*loc, "placement", name), name, f"a node group name: {', '.join(names)}")
    total = sum(tenant.placement.values())
    if total != tenant.replicas:
        yield problem((*loc, "placement"), tenant.placement,
                      f"counts summing to replicas ({tenant.replicas})")


def _workload_checks(tenant: Tenant, loc: tuple[object, ...]) -> Iterator[str]:
    work = tenant.workload
    if work.service_time.p99 < work.service_time.median:
        yield problem((*loc, "service_time", "p99"), work.service_time.p99,
                      f">= median ({work.service_time.median:g} s)")
    if work.kind == "filecache" and (work.file_set <= 0 or work.file_rate <= 0):
        yield problem((*loc, "kind"), work.kind, "filecache needs file_set > 0 and file_rate > 0")
    if work.startup.bytes > 0 and work.startup.duration <= 0:   # the bytes would be held nowhere
        yield problem((*loc, "startup", "duration"), work.startup.duration,
                      f"> 0 to hold startup.bytes ({fmt_size(work.startup.bytes)})")


def _advice_checks(tenant: Tenant, group: NodeGroup, loc: tuple[object, ...]) -> Iterator[str]:
    advice, kernel = tenant.allocator.madvise, group.kernel
    needed = ADVICE_PROPOSAL.get(advice)
    if needed and needed not in kernel.proposals:
        yield problem((*loc, "madvise"), advice,
                      f"needs proposal {needed} in the kernel of node group {group.name} (kernel.proposals); "
                      "no real allocator has a fallback for a never-merged advice")
    if tenant.allocator.collapse and not kernel.profile_at_least(COLLAPSE_SINCE):
        yield problem((*loc, "collapse"), True,
                      f"false on {kernel.profile} (node group {group.name}); MADV_COLLAPSE needs "
                      f"{COLLAPSE_SINCE} or later")


def placed_groups(config: RunConfig, tenant: Tenant) -> list[NodeGroup]:
    """Node groups a tenant's replicas may land on."""
    if isinstance(tenant.placement, dict):
        return [g for g in config.nodes if tenant.placement.get(g.name, 0) > 0]
    return list(config.nodes)


def replicas_per_node(config: RunConfig, tenant: Tenant) -> dict[str, int]:
    """Most replicas of ``tenant`` one node of each group holds under spread or an explicit placement."""
    if isinstance(tenant.placement, dict):
        return {g.name: math.ceil(tenant.placement.get(g.name, 0) / g.count) for g in config.nodes}
    total_nodes = sum(g.count for g in config.nodes)
    return {g.name: math.ceil(tenant.replicas / total_nodes) for g in config.nodes}


def _fit_checks(config: RunConfig) -> Iterator[str]:
    """A single heap must fit the memory plus swap of a node it may land on (pack: of some node)."""
    for j, tenant in enumerate(config.tenants):
        heap, loc = tenant.workload.heap, ("tenants", j, "workload", "heap")
        groups = placed_groups(config, tenant)   # pack may land on any group
        room = {g.name: g.memory + swap_bytes(g) for g in groups}
        if tenant.placement == "pack" and heap > max(room.values()):
            yield problem(loc, fmt_size(heap), f"at most {fmt_size(max(room.values()))} (the largest node's "
                          "memory plus swap): one heap larger than a node cannot run")
        elif tenant.placement != "pack":
            for g in groups:
                if heap > room[g.name]:
                    yield problem(loc, fmt_size(heap), f"at most {fmt_size(room[g.name])} (memory plus swap of "
                                  f"node group {g.name}): one heap larger than a node cannot run")


def swap_bytes(group: NodeGroup) -> int:
    """The swap device's size on a node of ``group`` (0 without one)."""
    return getattr(group.swap, "size", 0)


# ---- warnings: configs that run, but not as their heaps say -----------------------------------------------

def config_warnings(config: RunConfig) -> list[str]:
    """Overcommitted node groups of a valid config, one line each: the run goes on, and reclaim, swap and
    OOM kills are its outcome."""
    return [*_group_overcommit(config), *_pack_overcommit(config)]


def _group_overcommit(config: RunConfig) -> Iterator[str]:
    """The heaps placed on one node (heap x replicas per node, summed over tenants) above its memory."""
    load = {g.name: 0 for g in config.nodes}
    for tenant in config.tenants:
        if tenant.placement == "pack":
            continue
        for name, count in replicas_per_node(config, tenant).items():
            load[name] += count * tenant.workload.heap
    for i, group in enumerate(config.nodes):
        if load[group.name] > group.memory:
            yield (f"nodes.{i} (node group {group.name}): the heaps placed on one node sum to "
                   f"{fmt_size(load[group.name])}, ratio {load[group.name] / group.memory:.2f} of its memory "
                   f"({fmt_size(group.memory)}): overcommitted; reclaim, swap and OOM kills decide")


def _pack_overcommit(config: RunConfig) -> Iterator[str]:
    """Packed replicas whose heaps sum above the whole fleet's memory (pack then overcommits every node)."""
    fleet_bytes = sum(g.count * g.memory for g in config.nodes)
    names = ", ".join(g.name for g in config.nodes)
    for j, tenant in enumerate(config.tenants):
        total = tenant.workload.heap * tenant.replicas
        if tenant.placement == "pack" and total > fleet_bytes:
            yield (f"tenants.{j}.placement (node groups {names}): {tenant.replicas} packed heaps of "
                   f"{fmt_size(tenant.workload.heap)} sum to {fmt_size(total)}, ratio {total / fleet_bytes:.2f} "
                   f"of the fleet's memory ({fmt_size(fleet_bytes)}): overcommitted; reclaim, swap and OOM kills "
                   "decide")

