"""The node-memory bound of ``check`` rests on a measured ratio: model state per GiB of node memory.

capacity.py declares 16 KiB of state per GiB of simulated node memory (measured about 10 KiB at 64G, 256G
and 1T); this test measures a kernel node's construction with tracemalloc and keeps the declaration honest,
and checks the bound's arithmetic on a given physical memory.
"""

from __future__ import annotations

import tracemalloc

from clustersim.experiments.capacity import STATE_BYTES_PER_GIB, max_fleet_memory_bytes
from clustersim.kernel import Node


def test_a_node_needs_at_most_the_declared_state_per_gib() -> None:
    Node(memory="1G")                        # imports and compiled code are not node state
    tracemalloc.start()
    node = Node(memory="64G")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert node is not None
    assert peak <= 64 * STATE_BYTES_PER_GIB


def test_half_of_physical_memory_bounds_the_fleet() -> None:
    # 16 GiB of RAM, half for node state at 16 KiB per GiB: 8 GiB / 16 KiB = 512Ki GiB = 512 TiB of nodes.
    assert max_fleet_memory_bytes(16 << 30) == 512 << 40
    assert max_fleet_memory_bytes(0) is None
