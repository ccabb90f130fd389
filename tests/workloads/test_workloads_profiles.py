"""Profiles and traces load from the packaged data and agree with the numbers in data/README.md."""

import numpy as np
import pytest

from clustersim.workloads.profiles import list_profiles, load_profile, load_trace
from clustersim.workloads.sizeclasses import MAX_SMALL_BYTES, TCMALLOC_PAGE_BYTES, tcmalloc_size_classes

MIB = 1 << 20


def test_every_listed_profile_loads_with_its_row_count():
    # Row counts from the SOURCE.md files: tcmalloc profiles 747-1125 rows, fleetbench 979-1228.
    names = list_profiles()
    assert len(names) == 20
    for name in names:
        profile = load_profile(name)
        assert 740 <= profile.rows <= 1228, name
        assert profile.live_byte_share.sum() == pytest.approx(1.0, rel=1e-12)


def test_fleetbench_profiles_carry_base_heap_from_heap_size_csv():
    assert load_profile("fleetbench/TCMALLOC_1").base_heap_bytes == 93 * MIB
    assert load_profile("fleetbench/TCMALLOC_5").base_heap_bytes == 616 * MIB
    assert load_profile("tcmalloc/beta").base_heap_bytes is None


@pytest.mark.parametrize(("name", "share_small"), [
    ("tcmalloc/beta", 0.999), ("tcmalloc/delta", 0.846), ("tcmalloc/foxtrot", 0.640),
    ("tcmalloc/sigma", 0.052),
])
def test_live_bytes_in_small_objects_match_the_data_readme(name, share_small):
    # data/README.md gives the share to 0.1 percentage point; allow half a point for its rounding.
    profile = load_profile(name)
    small = profile.size_bytes <= MAX_SMALL_BYTES
    assert profile.live_byte_share[small].sum() == pytest.approx(share_small, abs=0.005)


def test_mean_lifetime_is_littles_law_in_profile_units():
    profile = load_profile("tcmalloc/sigma")
    np.testing.assert_allclose(profile.mean_lifetime, profile.num_live / profile.alloc_rate)


def test_unknown_profile_error_names_the_value_and_the_allowed_names():
    with pytest.raises(ValueError, match=r"'tcmalloc/gamma'.*allowed:.*tcmalloc/beta.*fleetbench/TCMALLOC_9"):
        load_profile("tcmalloc/gamma")


def test_profiles_are_read_only():
    profile = load_profile("tcmalloc/beta")
    with pytest.raises(ValueError):
        profile.size_bytes[0] = 3


def test_gcc_trace_matches_its_summary_row():
    # summary.csv: gcc-hello 11431 allocations, 6344 frees, peak live requested bytes 9303005.
    trace = load_trace("gcc-hello")
    assert int(trace.is_alloc.sum()) == 11431
    assert int((~trace.is_alloc).sum()) == 6344
    signed = np.where(trace.is_alloc, trace.size_bytes, -trace.size_bytes)
    assert int(np.cumsum(signed).max()) == 9303005


def test_unknown_trace_error_lists_the_traces():
    with pytest.raises(ValueError, match=r"'vim'.*allowed:.*gcc-hello"):
        load_trace("vim")


def test_size_class_spans_waste_at_most_an_eighth_in_their_tail():
    table = tcmalloc_size_classes()
    assert table.class_bytes[-1] == MAX_SMALL_BYTES
    assert np.all(table.span_bytes % TCMALLOC_PAGE_BYTES == 0)
    tail = table.span_bytes % table.class_bytes
    assert np.all(tail * 8 <= table.span_bytes)
    sizes = np.arange(1, MAX_SMALL_BYTES + 1)
    assert np.all(table.class_bytes[table.class_of(sizes)] >= sizes)
