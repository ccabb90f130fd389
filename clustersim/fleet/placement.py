"""Placement of tenants' replicas onto nodes: spread, pack, or explicit counts per node group.

`spread` deals replicas round-robin over every node of the fleet, the way a scheduler balancing replica
counts does. `pack` fills one node before the next, by committed heap against node memory (a bin-packing
scheduler's first fit). An explicit mapping gives a replica count per node group, spread inside the group.
"""

from __future__ import annotations

from dataclasses import dataclass

# Pack fills a node up to this share of its memory with tenants' target heaps, leaving room for the kernel,
# page tables and allocator slack (a scheduler's usual reservation, not a measured value).
PACK_FILL = 0.85


@dataclass(frozen=True)
class Slot:
    """One node of the fleet: its group, index within the group and memory."""

    group: str
    index: int
    memory_bytes: int


def place(slots: list[Slot], placement: str | dict[str, int], replicas: int, heap_bytes: int,
          committed: dict[Slot, int]) -> list[Slot]:
    """The node of each replica; ``committed`` (heap bytes per node so far) is updated."""
    if isinstance(placement, dict):
        chosen = _explicit(slots, placement)
    elif placement == "pack":
        chosen = _pack(slots, replicas, heap_bytes, committed)
    else:
        chosen = _spread(slots, replicas, committed)
    for slot in chosen:
        committed[slot] = committed.get(slot, 0) + heap_bytes
    return chosen


def _spread(slots: list[Slot], replicas: int, committed: dict[Slot, int]) -> list[Slot]:
    """Round-robin starting from the least committed node, so successive tenants interleave."""
    start = min(range(len(slots)), key=lambda i: (committed.get(slots[i], 0), i))
    return [slots[(start + k) % len(slots)] for k in range(replicas)]


def _pack(slots: list[Slot], replicas: int, heap_bytes: int, committed: dict[Slot, int]) -> list[Slot]:
    out, load = [], dict(committed)
    for _ in range(replicas):
        slot = next((s for s in slots if load.get(s, 0) + heap_bytes <= PACK_FILL * s.memory_bytes), None)
        if slot is None:   # nothing has room: the least loaded node takes it (overcommit)
            slot = min(slots, key=lambda s: load.get(s, 0) / s.memory_bytes)
        load[slot] = load.get(slot, 0) + heap_bytes
        out.append(slot)
    return out


def _explicit(slots: list[Slot], counts: dict[str, int]) -> list[Slot]:
    out = []
    for group, count in counts.items():
        members = [s for s in slots if s.group == group]
        out.extend(members[k % len(members)] for k in range(count))
    return out
