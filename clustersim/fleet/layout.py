"""The fleet's layout, fixed once before anything runs: placement, the result rows, and the split into shards.

Nodes do not interact after placement: each kernel serves only the processes placed on it. So a fleet can
run as shards, contiguous ranges of nodes (in fleet order) that each build and run only their own nodes
and processes, and their results merge exactly (``state.py``). Placement is cheap and fleet-wide, so it is
done once here, and each shard receives only its own replicas. The facts every shard and the merge share
(the tenants, the (tenant, node group) pairs that have replicas, the time-series rows) come from the whole
placement too, so they are the same whatever the split. A serial run is the one shard of every node.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from .build import Placed, placement, slots


@dataclass(frozen=True)
class Layout:
    """What every shard and the merge agree on: fleet-wide sizes and the order of the result rows."""

    tenants: tuple[str, ...]                 # config order
    pairs: tuple[tuple[str, str], ...]       # (tenant, group) with replicas: tenants in order, groups in node order
    keys: tuple[tuple[str, str], ...]        # (group, tenant) time-series rows, in order of their first replica
    node_groups: tuple[str, ...]             # each node's group, fleet order
    processes: int                           # replicas in the whole fleet

    @property
    def nodes(self) -> int:
        return len(self.node_groups)


@dataclass(frozen=True)
class Shard:
    """A contiguous range of the fleet's nodes and the replicas placed on them (fleet order)."""

    layout: Layout
    nodes: range
    placed: tuple[Placed, ...]

    def describe(self) -> str:
        last = self.nodes.stop - 1
        span = f"node {self.nodes.start}" if last == self.nodes.start else f"nodes {self.nodes.start}-{last}"
        return f"{span}, {len(self.placed)} processes"


def shards(config, count: int = 1) -> list[Shard]:
    """The fleet split into at most ``count`` shards of contiguous nodes, balanced by process count."""
    fleet_slots = slots(config)
    placed = placement(config, fleet_slots)
    layout = _layout(config, [s.group for s in fleet_slots], placed)
    bounds = split_points(_weights(len(fleet_slots), placed), count)
    return [Shard(layout, range(a, b), tuple(p for p in placed if a <= p.node < b))
            for a, b in pairwise(bounds)]


def whole(config) -> Shard:
    """Every node of the fleet as one shard: the serial run."""
    return shards(config, 1)[0]


def _layout(config, node_groups: list[str], placed: list[Placed]) -> Layout:
    tenants = tuple(t.name for t in config.tenants)
    groups = list(dict.fromkeys(node_groups))
    have = {(tenants[p.tenant], node_groups[p.node]) for p in placed}
    pairs = tuple((t, g) for t in tenants for g in groups if (t, g) in have)
    keys = tuple(dict.fromkeys((node_groups[p.node], tenants[p.tenant]) for p in placed))
    return Layout(tenants, pairs, keys, tuple(node_groups), len(placed))


def _weights(nodes: int, placed: list[Placed]) -> list[int]:
    """A node's cost: its processes, plus one for its kernel (an idle node still advances every tick)."""
    weights = [1] * nodes
    for p in placed:
        weights[p.node] += 1
    return weights


def split_points(weights: list[int], count: int) -> list[int]:
    """Boundaries of at most ``count`` contiguous, non-empty ranges whose weight sums are near equal.

    Boundary j is the first node where the running weight reaches j/count of the total, kept strictly
    increasing so that no range is empty.
    """
    count = max(1, min(count, len(weights)))
    total, running, bounds = sum(weights), 0, [0]
    for i, w in enumerate(weights):
        running += w
        j = len(bounds)
        left = len(weights) - (i + 1)
        if j < count and (running * count >= j * total or left == count - j) and left > 0:
            bounds.append(i + 1)
    bounds.append(len(weights))
    return bounds
