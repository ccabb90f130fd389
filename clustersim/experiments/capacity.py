"""How much simulated node memory the machine running the simulation can hold.

The kernel model keeps per-pageblock and per-zone state for every node it builds (free lists, pageblock
migratetypes, the memcg tree), so its memory grows with the simulated node memory even before any tenant
allocates. Measured with tracemalloc on ``clustersim.kernel.Node`` (64G, 256G and 1T nodes), construction
peaks at about 10 KiB of Python and numpy state per GiB of node memory; ``STATE_BYTES_PER_GIB`` allows 16
KiB. A fleet whose nodes (count x memory, over all groups) would need more than half of this machine's
physical memory (``os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')``) for that state is refused
by ``check``, before any node is built, instead of failing with a MemoryError inside the run. The other half
is left for the tenants' page tables, span tables and the results, which grow with the heaps, not the nodes.
``tests/experiments/test_experiments_capacity.py`` re-measures the ratio.
"""

from __future__ import annotations

import os

STATE_BYTES_PER_GIB = 16 << 10   # model state per GiB of simulated node memory (measured ~10 KiB)
HOST_SHARE = 0.5                 # share of the host's physical memory node state may take


def physical_memory_bytes() -> int | None:
    """This machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def max_fleet_memory_bytes(physical: int | None = None) -> int | None:
    """The most simulated node memory (all nodes together) this machine holds; None: no known bound."""
    physical = physical_memory_bytes() if physical is None else physical
    if not physical or physical <= 0:
        return None
    return int(physical * HOST_SHARE / STATE_BYTES_PER_GIB) << 30
