"""Golden timelines: a fixed, seeded mix of syscalls gives exactly the recorded timeline, call by call.

Guards refactors of the syscall paths (task, fault, memory, pagetable, page_alloc, slowpath, madvise) that must
not change any result: the value every call returned (seconds by repr, so to the last bit) or the error it
raised, and the end state - vmstat, memcg counters and events, per-process faults and stalls, the pageblock
counters and every page-table row. The timelines are text files in ``golden/``; a failure shows the diff.
A timeline that changes on purpose (a modelling change, not a speed-up) is re-recorded with
``CLUSTERSIM_UPDATE_GOLDEN=1``, which rewrites the files and skips these tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_scenarios import CONFIGS, allocator_scenario, scenario, timeline

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_seeded_mix_of_syscalls_gives_the_recorded_timeline(name, golden_text):
    # Random touch/access/madvise batches over three or two mappings per process, with a memcg over its
    # max (reclaim, swap or OOM), one over its high (throttling), khugepaged every second, and invalid
    # calls whose errors are logged: every returned value and the whole end state match the recorded timeline.
    node, rec = scenario(CONFIGS[name])
    node.check()
    golden_text(GOLDEN_DIR / f"{name}.log", timeline(node, rec))


def test_allocator_driven_heaps_give_the_recorded_timeline(golden_text):
    # Four heaps, two of them capped by memory.max, allocate, free and release through touch_batch and
    # madvise_batch as the fleet does: every returned value and the end state match the recorded timeline.
    node, rec = allocator_scenario()
    node.check()
    golden_text(GOLDEN_DIR / "allocators.log", timeline(node, rec))
