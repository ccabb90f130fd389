"""docs/linux-rules.md K19 migratetype fallback (claim or steal), K20 direct compaction deferral, K21 kcompactd's
bounded proactive work, and the slab pool that grows with load (clustersim/kernel/slab.py)."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import MB

from clustersim.kernel import Node, compaction, slab
from clustersim.kernel.page_alloc import CLAIM_PAGES, MOVABLE, UNMOVABLE, PhysMem
from clustersim.kernel.pagetable import IS_PRESENT, NONE, SWAP
from clustersim.units import HPAGE_PAGES

NBLOCKS = 8


def full_movable(holes: dict[int, int]) -> PhysMem:
    """Eight pageblocks entirely used by movable pages, then ``holes[b]`` pages freed in block b."""
    phys = PhysMem(NBLOCKS * HPAGE_PAGES, 128, 10)
    phys.alloc_pages(NBLOCKS * HPAGE_PAGES)
    for b, k in holes.items():
        phys.free_pages(np.full(k, b, dtype=np.int32))
    return phys


def test_k19_unmovable_fallback_claims_a_block_at_least_half_free():
    phys = full_movable({3: 300, 5: 100})
    got = phys.alloc_pages(10, movable=False)
    # block 3 has the most free pages and 300 >= 256: claimed whole, the request served from it
    assert (got == 3).all() and phys.mt[3] == UNMOVABLE and phys.mt[5] == MOVABLE
    assert (phys.fallback_claims, phys.fallback_steal_pages) == (1, 0)
    # the next unmovable pages go to the claimed block first (its own type), not to block 5
    assert (phys.alloc_pages(200, movable=False) == 3).all()
    assert phys.unmov[3] == 210 and phys.unmov[5] == 0


def test_k19_unmovable_fallback_steals_from_the_fullest_blocks_when_none_is_claimable():
    phys = full_movable({2: 100, 5: 200})
    got = phys.alloc_pages(150, movable=False)
    # neither block reaches CLAIM_PAGES free: pages are stolen, fullest block (2) first, types unchanged
    assert CLAIM_PAGES == 256
    assert (got[:100] == 2).all() and (got[100:] == 5).all()
    assert (phys.fallback_claims, phys.fallback_steal_pages) == (0, 150)
    assert phys.mt[2] == MOVABLE and phys.mt[5] == MOVABLE and phys.mixed_blocks() == 2
    # block 5 now has 150 free + 50 unmovable = 200 < 256: the next unmovable page is stolen again
    phys.alloc_pages(1, movable=False)
    assert (phys.fallback_claims, phys.fallback_steal_pages) == (0, 151)


def test_k19_compatible_pages_count_towards_the_claim():
    # 200 free pages and 60 unmovable ones already in the movable block: 260 >= 256, claimed
    phys = full_movable({4: 260})
    phys.alloc_pages(60, movable=False)   # stolen or claimed: 260 free alone already claims
    assert phys.mt[4] == UNMOVABLE
    phys2 = full_movable({4: 200, 6: 255})
    phys2.mt[4] = MOVABLE
    phys2.alloc_pages(1, movable=False)   # 255 + 0 < 256 and 200 + 0 < 256: steal from block 4 (fuller)
    assert phys2.fallback_steal_pages == 1 and phys2.unmov[4] == 1
    phys2.free_pages(np.full(56, 4, dtype=np.int32))   # block 4: 255 free + 1 unmovable = 256
    phys2.alloc_pages(1, movable=False)
    assert phys2.fallback_claims == 1 and phys2.mt[4] == UNMOVABLE


def test_k19_stolen_blocks_cannot_become_free_when_the_movable_pages_go():
    claimed, stolen = full_movable({3: 300}), full_movable({2: 100, 5: 200})
    claimed.alloc_pages(150, movable=False)
    stolen.alloc_pages(150, movable=False)
    for phys in (claimed, stolen):
        movable_pages = phys.used - phys.unmov
        phys.free_pages(np.repeat(np.arange(NBLOCKS, dtype=np.int32), movable_pages))
        # every block holding an unmovable page stays in use: no THP can be born there
        assert phys.free_blocks == NBLOCKS - phys.unmovable_blocks()
    assert claimed.free_blocks == 7 and stolen.free_blocks == 6


def test_k19_movable_fallback_claims_an_unmovable_block_by_its_movable_pages():
    phys = PhysMem(NBLOCKS * HPAGE_PAGES, 128, 10)
    phys.alloc_pages(NBLOCKS * HPAGE_PAGES, movable=False)
    phys.free_pages(np.full(300, 1, dtype=np.int32), movable=False)
    phys.alloc_pages(1)
    assert phys.mt[1] == MOVABLE and phys.fallback_claims == 1 and phys.mixed_blocks() == 1


def test_k20_failed_direct_compaction_defers_the_next_attempts(monkeypatch):
    node = Node("256M")
    mm = node.mm
    calls = []
    monkeypatch.setattr(compaction, "compact", lambda mm_, want: (calls.append(want), (0, 0.0))[1])
    for _ in range(200):
        compaction.direct_compact(mm, 1)
    # runs at attempts 1, 3, 7, 15, 31, 63, then every 64th (COMPACT_MAX_DEFER_SHIFT 6): 127, 191
    assert len(calls) == 8 and mm.compact_deferred == 192 and mm.compact_defer_shift == 6
    assert mm.vmstat["compact_stall"] == 200 and mm.vmstat["compact_fail"] == 200
    monkeypatch.setattr(compaction, "compact", lambda mm_, want: (calls.append(want), (1, 0.0))[1])
    for _ in range(64):
        compaction.direct_compact(mm, 1)
    # the 64th attempt since the last run runs, succeeds and resets the shift: every attempt after runs
    assert mm.compact_defer_shift == 0 and mm.vmstat["compact_success"] >= 1
    runs = len(calls)
    compaction.direct_compact(mm, 1)
    assert len(calls) == runs + 1


def test_k21_proactive_marks_have_a_floor():
    assert compaction.score_wmarks(20) == (80, 90)
    assert compaction.score_wmarks(95) == (5, 15)
    assert compaction.score_wmarks(100) == (5, 15)


def test_k21_kcompactd_work_is_bounded_and_backs_off_without_progress(monkeypatch):
    node = Node("1G")
    mm = node.mm
    wants = []
    monkeypatch.setattr(mm.phys, "fragmentation_score", lambda: 99.0)
    monkeypatch.setattr(compaction, "compact", lambda mm_, want: (wants.append(want), (want, 0.0))[1])
    compaction.kcompactd(mm, 10.0)
    # at most PROACTIVE_ROUNDS rounds of nblocks/64 blocks: an eighth of the node per wake-up
    assert wants == [mm.phys.nblocks // 64] * compaction.PROACTIVE_ROUNDS
    # the score stayed at 99: the next wake-up is 500 ms << 6 = 32 s away
    assert mm.next_kcompactd == pytest.approx(10.0 + 32.0)
    scores = iter([99.0, 99.0, 50.0, 50.0])
    monkeypatch.setattr(mm.phys, "fragmentation_score", lambda: next(scores, 50.0))
    compaction.kcompactd(mm, 50.0)
    assert mm.next_kcompactd == pytest.approx(50.5)


def test_slab_pool_follows_threads_files_and_cached_pages():
    node = Node("256M")
    unmov0 = int(node.phys.unmov.sum())
    p = node.spawn(threads=8)
    assert slab.pages(node.mm) == 8 * 4                       # one 16 KiB stack per thread, at spawn
    p.read_file(64 * MB, "data")
    node.advance(0.1)
    # 16384 cached pages: 256 xa_nodes of 576 B, plus one inode+dentry of 1280 B: 148736 B = 37 pages
    assert slab.pages(node.mm) == 32 + 37
    assert int(node.phys.unmov.sum()) == unmov0 + 32 + 37 + p.pagetable_pages()
    p.exit()
    assert slab.pages(node.mm) == 37                          # the stacks go with the task
    node.check()


def test_slab_growth_under_a_full_page_cache_pollutes_movable_blocks():
    node = Node("256M")
    reader = node.spawn()
    for k in range(8):                                        # 512 MiB of files through a 256 MiB node
        reader.read_file(64 * MB, f"f{k}")
        node.advance(1.0)
    phys = node.phys
    assert phys.free_blocks == 0
    before, blocks_before = phys.fallback_claims + phys.fallback_steal_pages, phys.unmovable_blocks()
    node.spawn(threads=512)                                   # 8 MiB of kernel stacks with no free block left
    node.advance(1.0)
    node.check()
    # 2048 unmovable pages land in blocks the page cache used (reclaim made room there): 4 blocks at least
    assert phys.fallback_claims + phys.fallback_steal_pages > before
    assert phys.unmovable_blocks() >= blocks_before + 2048 // HPAGE_PAGES


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_the_migration_scanner_takes_exactly_the_present_pages_of_the_source_blocks(dtype):
    """The compiled scan equals the numpy expression it replaced: present pages (by state) whose block is
    a source, in the first rows, ascending; unmapped pages (block -1), stale blocks of absent pages and
    rows with no present page (skipped whole) are left alone."""
    rng = np.random.default_rng(7)
    rows, nblocks = 40, 64
    pages = rows * HPAGE_PAGES
    blocks = rng.integers(-1, nblocks, pages).astype(dtype)
    states = rng.integers(0, 7, pages).astype(np.uint8)
    for r in (2, 11, 30):   # rows of swapped and unmapped pages only, with stale block ids
        states[r * HPAGE_PAGES:(r + 1) * HPAGE_PAGES] = rng.choice([NONE, SWAP], HPAGE_PAGES)
    npres = IS_PRESENT[states].reshape(rows, HPAGE_PAGES).sum(axis=1).astype(np.int32)
    sources = np.sort(rng.choice(nblocks, 9, replace=False))
    nrows = 37
    want = np.flatnonzero(np.isin(blocks[: nrows * HPAGE_PAGES], sources))
    want = want[IS_PRESENT[states[want]]]
    got = compaction._present_in_blocks(blocks, states, IS_PRESENT, npres, nrows, sources, nblocks, len(want))
    assert np.array_equal(got, want)
    with pytest.raises(AssertionError, match="more present pages"):   # the frames bound is checked
        compaction._present_in_blocks(blocks, states, IS_PRESENT, npres, nrows, sources, nblocks, len(want) - 1)
    assert len(want) > 1000 and (npres[[2, 11, 30]] == 0).all()
