"""The page table's compiled set helpers answer what the numpy expressions they replace answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clustersim.kernel.pagetable import QUEUED, ZERO, _pages_in_rows, _state_total, in_rows, in_sorted, state_mask
from clustersim.kernel.vmscan import _first_rows, _group_rows, _slab_freeable, lru_rows
from clustersim.units import HPAGE_PAGES


def _counts(state: np.ndarray) -> np.ndarray:
    """The page table's per-row state counts of a state array (rows x 512)."""
    return np.stack([np.bincount(row, minlength=7) for row in state]).astype(np.int32)


pages = st.lists(st.integers(0, 40 * HPAGE_PAGES), max_size=3000)
rows = st.lists(st.integers(0, 45), max_size=12)


@settings(max_examples=200, deadline=None)
@given(flat=pages, members=rows, ordered=st.booleans())
def test_in_rows_is_isin_of_the_pages_rows(flat, members, ordered):
    """Sorted pages take the per-row slice path, unsorted ones the per-page search: both equal np.isin."""
    flat = np.array(sorted(set(flat)) if ordered else flat, dtype=np.int64)
    members = np.unique(np.array(members, dtype=np.int64))
    assert np.array_equal(in_rows(flat, members), np.isin(flat // HPAGE_PAGES, members))


def test_in_rows_of_sorted_pages_marks_exactly_the_rows_slices():
    """Pages 0..4*512 in rows 1 and 3: exactly 1,024 marked, the first at page 512."""
    flat = np.arange(4 * HPAGE_PAGES, dtype=np.int64)
    mask = in_rows(flat, np.array([1, 3], dtype=np.int64))
    assert mask.sum() == 2 * HPAGE_PAGES
    assert np.flatnonzero(mask)[0] == HPAGE_PAGES and not mask[2 * HPAGE_PAGES]


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(0, 500), max_size=200), members=st.lists(st.integers(0, 500), max_size=50))
def test_in_sorted_is_isin(values, members):
    values, members = np.array(values, dtype=np.int64), np.unique(np.array(members, dtype=np.int64))
    assert np.array_equal(in_sorted(values, members), np.isin(values, members))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nrows=st.integers(1, 12),
       states=st.sets(st.integers(0, 6), min_size=1, max_size=3))
def test_pages_in_rows_is_the_nonzero_of_isin(seed, nrows, states):
    """The page-table rows' pages in some states, in the rows' given order: what np.isin and np.nonzero of
    the rows' states gave (row by row, ascending within a row)."""
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 7, (16, HPAGE_PAGES)).astype(np.uint8)
    rows = rng.choice(16, nrows, replace=False).astype(np.int64)
    r, c = np.nonzero(np.isin(state[rows], sorted(states)))
    want = rows[r] * HPAGE_PAGES + c
    got = _pages_in_rows(state, _counts(state), rows, state_mask(tuple(sorted(states))), nrows * HPAGE_PAGES)
    assert np.array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), distinct=st.integers(1, 20))
def test_lru_rows_is_the_lexsort_of_activity_then_access_time(seed, n, distinct):
    """Reclaim's row order equals np.lexsort's, ties in access time included (few distinct times)."""
    rng = np.random.default_rng(seed)
    atime = rng.integers(0, distinct, 400).astype(np.float64)
    active = rng.random(400) < 0.4
    rows = rng.choice(400, n, replace=False).astype(np.int64)
    want = rows[np.lexsort((atime[rows], active[rows]))]
    assert np.array_equal(lru_rows(rows, atime, active), want)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), states=st.sets(st.integers(0, 6), min_size=1, max_size=3))
def test_state_total_is_the_sum_of_the_rows_columns(seed, states):
    rng = np.random.default_rng(seed)
    cnt = rng.integers(0, HPAGE_PAGES, (50, 7)).astype(np.int32)
    rows = rng.choice(50, 20, replace=False).astype(np.int64)
    want = cnt[rows][:, sorted(states)].sum()
    assert _state_total(cnt, rows, state_mask(tuple(sorted(states)))) == want


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nrows=st.integers(0, 300), nmemcgs=st.integers(1, 8))
def test_group_rows_is_the_stable_argsort_by_memcg_of_the_rows_reclaim_can_act_on(seed, nrows, nmemcgs):
    """Reclaim's rows per memcg equal what np.isin and a stable argsort by memcg gave, less the rows with
    neither a present page nor a folio; a memcg owning only such rows keeps an empty group."""
    rng = np.random.default_rng(seed)
    memcg = rng.integers(-1, nmemcgs, 320).astype(np.int32)
    npres = np.where(rng.random(320) < 0.5, 0, rng.integers(1, HPAGE_PAGES, 320)).astype(np.int32)
    folio = np.where(rng.random(320) < 0.2, rng.integers(0, 9, 320), -1).astype(np.int32)
    member = rng.random(nmemcgs) < 0.7
    got, bounds, owns = _group_rows(memcg, npres, folio, nrows, member)
    rows = np.flatnonzero(np.isin(memcg[:nrows], np.flatnonzero(member)))
    assert np.array_equal(np.flatnonzero(owns), np.unique(memcg[rows]))
    kept = rows[(npres[rows] > 0) | (folio[rows] >= 0)]
    kept = kept[np.argsort(memcg[kept], kind="stable")]
    assert np.array_equal(got, kept)
    for m in range(nmemcgs):
        assert np.array_equal(got[bounds[m]:bounds[m + 1]], kept[memcg[kept] == m])


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(-1, 6000), states=st.sets(st.integers(0, 6), min_size=1,
                                                                                  max_size=3))
def test_first_rows_is_the_prefix_the_cumulative_counts_reach_n_in(seed, n, states):
    """Reclaim's walk down the LRU equals the numpy it replaced: the rows with pages in the states, up to
    the searchsorted of n in their cumulative counts, inclusive."""
    rng = np.random.default_rng(seed)
    cnt = np.where(rng.random((60, 7)) < 0.5, 0, rng.integers(0, 200, (60, 7))).astype(np.int32)
    lru = rng.permutation(60)[: rng.integers(0, 61)].astype(np.int64)
    mask = state_mask(tuple(sorted(states)))
    have = cnt[lru][:, sorted(states)].sum(axis=1)
    rows, have = lru[have > 0], have[have > 0]
    want = rows[: int(np.searchsorted(np.cumsum(have), n)) + 1]
    assert np.array_equal(_first_rows(cnt, lru, mask, n), want)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3000), states=st.sets(st.integers(0, 6), min_size=1,
                                                                                 max_size=3))
def test_the_first_n_pages_of_rows_are_reclaims_batch_by_lru_rank_then_address(seed, n, states):
    """Reclaim's batch (the first n pages of the chosen rows, sorted) equals the numpy it replaced: the
    chosen rows' pages ranked by their row's place in the LRU, ascending within a row, the first n of them,
    in ascending order."""
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 7, (16, HPAGE_PAGES)).astype(np.uint8)
    mask = state_mask(tuple(sorted(states)))
    chosen = rng.permutation(16)[: rng.integers(0, 8)].astype(np.int64)
    cnt = _counts(state)
    flat = _pages_in_rows(state, cnt, np.sort(chosen), mask, len(chosen) * HPAGE_PAGES)
    if len(flat) > n:
        sorter = np.argsort(chosen)
        rank = sorter[np.searchsorted(chosen, flat // HPAGE_PAGES, sorter=sorter)]
        flat = np.sort(flat[np.argsort(rank, kind="stable")][:n])
    assert np.array_equal(np.sort(_pages_in_rows(state, cnt, chosen, mask, n)), flat)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), zero_limit=st.sampled_from([0, 64, 511, HPAGE_PAGES]))
def test_slab_freeable_counts_what_each_shrinker_would_find(seed, zero_limit):
    """Deferred folios, underused folios (zero pages above the limit) and rows with queued pages, as the
    numpy expressions of the three shrinkers count them."""
    rng = np.random.default_rng(seed)
    folio = np.where(rng.random(80) < 0.5, rng.integers(0, 50, 80), -1).astype(np.int32)
    deferred = (rng.random(80) < 0.3) & (folio >= 0)
    cnt = np.where(rng.random((80, 7)) < 0.5, 0, rng.integers(0, HPAGE_PAGES + 1, (80, 7))).astype(np.int32)
    rows = rng.choice(80, 40, replace=False).astype(np.int64)
    want = (int(np.count_nonzero(deferred[rows])),
            int(np.count_nonzero((folio[rows] >= 0) & (cnt[rows, ZERO] > zero_limit))),
            int(np.count_nonzero(cnt[rows, QUEUED])))
    assert _slab_freeable(deferred, folio, cnt, rows, zero_limit) == want
