"""The page table's compiled set helpers answer what the numpy expressions they replace answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clustersim.kernel.pagetable import in_rows, in_sorted
from clustersim.units import HPAGE_PAGES

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
