"""Tenant behaviour, the TLB factor, the access pattern and the modulation records."""

import numpy as np
import pytest

from clustersim.workloads.access import AccessPattern
from clustersim.workloads.modulation import Diurnal, Restarts, Spikes, Startup
from clustersim.workloads.tenants import (
    DEFAULT_TLB_SENSITIVITY,
    FileCacheTenant,
    make_tenant,
    tlb_factor,
)

MIB = 1 << 20


def test_tlb_factor_is_one_at_full_coverage_and_grows_as_coverage_falls():
    assert tlb_factor(1.0, 0.25) == 1.0
    assert tlb_factor(0.0, 0.25) == pytest.approx(1 / 0.75)     # walks were a quarter of time at 0%
    factors = tlb_factor(np.linspace(0, 1, 11), 0.25)
    assert np.all(np.diff(factors) < 0)
    assert tlb_factor(0.0, 0.0) == 1.0


def test_default_tlb_sensitivity_follows_from_temeraire_table_1():
    # Walk share 23.3% at about 11.8% coverage, walks proportional to the uncovered share.
    sigma, coverage = 0.233, 0.118
    assert sigma / (1 - coverage + sigma * coverage) == pytest.approx(DEFAULT_TLB_SENSITIVITY, abs=0.01)


def test_tlb_sensitivity_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="tlb_sensitivity"):
        tlb_factor(0.5, 1.0)


def test_sequential_file_reads_cover_the_rate_and_wrap_round_the_file_set():
    tenant = FileCacheTenant(read_rate_bytes_per_s="8MiB/s", file_set_bytes="20M", chunk_bytes="1M")
    rng = np.random.default_rng(0)
    reads = [tenant.reads(float(t), 1.0, rng) for t in range(5)]
    assert sum(int(r.length_bytes.sum()) for r in reads) == 40 * MIB
    offsets = np.concatenate([r.offset_bytes for r in reads])
    assert offsets.max() < 20 * MIB and offsets[20] == 0


def test_uniform_file_reads_are_deterministic_given_the_rng():
    tenant = FileCacheTenant(read_rate_bytes_per_s=4 * MIB, file_set_bytes="1G", pattern="uniform")
    a = tenant.reads(0.0, 1.0, np.random.default_rng(3)).offset_bytes
    b = tenant.reads(0.0, 1.0, np.random.default_rng(3)).offset_bytes
    np.testing.assert_array_equal(a, b)
    assert np.all(a % MIB == 0)


def test_unknown_tenant_kind_names_the_allowed_kinds():
    with pytest.raises(ValueError, match=r"'web'.*batch, filecache"):
        make_tenant("web", rps=1)
    assert make_tenant("batch", throughput_per_s=10).work_done(1.0, coverage=1.0) == 10


def test_hot_share_of_live_bytes_matches_hot_share():
    # 100k spans of random size: the hot byte share is within 4 binomial sd (weighted) of hot_share.
    rng = np.random.default_rng(1)
    ids = np.arange(100_000)
    sizes = rng.integers(1, 64, size=ids.size) * 8192
    pattern = AccessPattern(np.random.default_rng(5), hot_share=0.2)
    hot = pattern.hot_mask(ids, t_s=0.0)
    share = sizes[hot].sum() / sizes.sum()
    sd = np.sqrt(0.2 * 0.8 * np.sum(sizes.astype(float) ** 2)) / sizes.sum()
    assert abs(share - 0.2) <= 4 * sd


def test_hot_set_is_deterministic_given_the_rng_and_drifts_gradually():
    ids = np.arange(50_000)
    a = AccessPattern(np.random.default_rng(5), hot_share=0.2, drift_per_s=0.01)
    b = AccessPattern(np.random.default_rng(5), hot_share=0.2, drift_per_s=0.01)
    other = AccessPattern(np.random.default_rng(6), hot_share=0.2, drift_per_s=0.01)
    np.testing.assert_array_equal(a.hot_ids(ids, 3.0), b.hot_ids(ids, 3.0))
    assert not np.array_equal(a.hot_ids(ids, 3.0), other.hot_ids(ids, 3.0))
    # Moving the window by 0.01 keeps 0.19/0.20 = 95% of the hot set.
    now, later = a.hot_mask(ids, 0.0), a.hot_mask(ids, 1.0)
    assert (now & later).sum() / now.sum() == pytest.approx(0.95, abs=0.02)


def test_modulation_records_validate_and_parse_units():
    assert Diurnal(amplitude=0.5, period_s="1h").factor(900.0) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="amplitude"):
        Diurnal(amplitude=1.5)
    spikes = Spikes(rate_per_s=100, size_bytes="1M", lifetime_s="30ms")
    assert spikes.mean_extra_bytes() == pytest.approx(3 * MIB)
    with pytest.raises(ValueError, match="transient_bytes"):
        Startup(transient_bytes="1G")
    restarts = Restarts(interval_s="10m", offset_s=30)
    assert [t for t in range(0, 1300) if restarts.restarts_in(float(t), 1.0)] == [630, 1230]
    assert not Restarts().restarts_in(0.0, 1e9)
