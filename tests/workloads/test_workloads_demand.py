"""HeapDemand reproduces the profile's steady heap, size mix, lifetimes and churn at span level.

Tolerances come from the mechanism: with Poisson births and independent lifetimes, the number of live units
of a class at any instant is Poisson (M/G/inf), so live bytes have standard deviation sqrt(Σ μ_c·b_c²)
over classes with μ_c expected live units of b_c bytes. Grouping can hold back up to spans_per_unit - 1
spans per class, a bias bounded by Σ (g_c - 1)·span_c.
"""

import itertools

import numpy as np
import pytest

from clustersim.workloads.demand import HeapDemand
from clustersim.workloads.modulation import Diurnal, Modulation, Restarts, Spikes, Startup, diurnal_factor
from clustersim.workloads.sizeclasses import MAX_SMALL_BYTES

MIB = 1 << 20
GIB = 1 << 30


def run(demand: HeapDemand, seconds: int, dt_s: float = 1.0, t0_s: float = 0.0):
    """Step `demand` for `seconds`; yield (t_end, events) after each step."""
    for k in range(int(seconds / dt_s)):
        t_s = t0_s + k * dt_s
        yield t_s + dt_s, demand.step(t_s, dt_s)


def unit_sd(demand: HeapDemand, bytes_per_unit: np.ndarray) -> float:
    c = demand.classes
    mean_units = c.live_spans / c.spans_per_unit
    return float(np.sqrt(np.sum(mean_units * bytes_per_unit**2)))


def grouping_bias_bytes(demand: HeapDemand) -> float:
    c = demand.classes
    return float(np.sum((c.spans_per_unit - 1) * c.span_bytes))


@pytest.mark.parametrize("profile", ["tcmalloc/beta", "fleetbench/TCMALLOC_0"])
def test_steady_live_heap_matches_heap_bytes(profile):
    # A 1 GiB heap starts from the live distribution and runs 15 simulated minutes; the requested bytes alive
    # must equal heap_bytes, and the span bytes alive their steady value, within 4 sd plus the grouping bias.
    demand = HeapDemand(profile, GIB, None, np.random.default_rng(7))
    demand.initial()
    for _ in run(demand, 900):
        pass
    c = demand.classes
    payload_sd = unit_sd(demand, c.payload_per_span_bytes * c.spans_per_unit)
    span_sd = unit_sd(demand, c.unit_bytes.astype(float))
    assert abs(demand.live_payload_bytes - GIB) <= 4 * payload_sd + grouping_bias_bytes(demand)
    assert abs(demand.live_bytes - demand.steady_live_bytes()) <= 4 * span_sd + grouping_bias_bytes(demand)
    assert abs(demand.live_payload_bytes / GIB - 1) < 0.05          # "a few percent", stated plainly
    # Span bytes exceed requested bytes by size-class rounding and span tails only (at most 1/8 + 1/8).
    assert 1.0 <= demand.steady_live_bytes() / GIB <= 1.27


def test_live_share_per_size_band_matches_the_profile():
    # Bands <= 8 KiB, 8-256 KiB and > 256 KiB line up with size-class boundaries, so each class falls in one.
    demand = HeapDemand("fleetbench/TCMALLOC_0", GIB, None, np.random.default_rng(3))
    demand.initial()
    for _ in run(demand, 600):
        pass
    edges = [0, 8192, MAX_SMALL_BYTES, np.inf]
    c = demand.classes
    unit_payload = c.payload_per_span_bytes * c.spans_per_unit
    live_payload = demand.live_units_per_class * unit_payload
    profile = demand.profile
    for lo, hi in itertools.pairwise(edges):
        in_band = (c.request_bytes > lo) & (c.request_bytes <= hi)
        expected = profile.live_byte_share[(profile.size_bytes > lo) & (profile.size_bytes <= hi)].sum()
        mean_units = (c.live_spans / c.spans_per_unit)[in_band]
        sd = np.sqrt(np.sum(mean_units * unit_payload[in_band] ** 2)) / GIB
        got = live_payload[in_band].sum() / demand.live_payload_bytes
        assert abs(got - expected) <= 4 * sd + 0.01, (lo, hi, got, expected)


def test_mean_span_lifetime_per_class_is_littles_law():
    # Exact span level (8 KiB quantum). Per class, time-averaged live spans / measured birth rate must give
    # the class lifetime W. Live spans are sampled once per step dt, so the sample mean of a class with mean
    # μ = λW live spans has relative variance coth(dt/2W)·dt/(μT) (exponential autocorrelation; 2/(λT) when
    # W >> dt, 1/(μ·samples) when W << dt); the birth count adds 1/births. Allow 5 sd.
    demand = HeapDemand("tcmalloc/beta", 256 * MIB, None, np.random.default_rng(11), min_span_bytes=8192)
    demand.initial()
    seconds, dt_s = 1200, 1.0
    n_classes = demand.classes.span_bytes.size
    births = np.zeros(n_classes)
    live_sum = np.zeros(n_classes)
    for _, events in run(demand, seconds, dt_s):
        births += np.bincount(events.alloc_class, minlength=n_classes)
        live_sum += demand.live_units_per_class
    lifetime_s = demand.classes.lifetime_s
    checked = (births >= 2000) & (lifetime_s < seconds / 10)
    assert checked.sum() >= 10
    w_s, n_births = lifetime_s[checked], births[checked]
    mean_live = n_births / seconds * w_s
    measured_s = (live_sum[checked] * dt_s / seconds) / (n_births / seconds)
    rel_var = dt_s / (np.tanh(dt_s / (2 * w_s)) * mean_live * seconds) + 1 / n_births
    assert np.all(np.abs(measured_s / w_s - 1) <= 5 * np.sqrt(rel_var))


def test_allocated_bytes_per_second_match_churn():
    # churn fixes the profile's time unit: requested bytes born per second equal it exactly by construction;
    # allocated span bytes per second equal the class table's span byte rate within 4 sd of Poisson births.
    churn = 40 * MIB
    demand = HeapDemand("tcmalloc/beta", GIB, churn, np.random.default_rng(5))
    assert demand.classes.payload_birth_rate.sum() == pytest.approx(churn, rel=1e-9)
    demand.initial()
    seconds = 300
    allocated = sum(int(ev.alloc_bytes.sum()) for _, ev in run(demand, seconds))
    c = demand.classes
    expected = c.birth_byte_rate.sum() * seconds
    sd = np.sqrt(np.sum(c.span_birth_rate_per_s * seconds * c.span_bytes.astype(float) ** 2))
    assert abs(allocated - expected) <= 4 * sd + grouping_bias_bytes(demand)
    assert 1.0 <= expected / (churn * seconds) <= 1.27


def test_diurnal_amplitude_shows_in_the_live_heap():
    # Births follow 1 + A·sin(2πt/P). Each class is a first-order filter of its lifetime W, so the live heap
    # is 1 + Im(Z·e^{iωt}) with Z = A·Σ P_c/(1 + iωW_c) / heap. Fit sin and cos over two periods after one
    # period of settling; each coefficient's error is a few tenths of a percent (see the module docstring).
    period_s, amplitude = 1800.0, 0.5
    modulation = Modulation(diurnal=Diurnal(amplitude=amplitude, period_s=period_s))
    demand = HeapDemand("tcmalloc/beta", GIB, None, np.random.default_rng(2), modulation=modulation)
    demand.initial()
    times, live = [], []
    for t_end, _ in run(demand, int(3 * period_s)):
        if t_end > period_s:
            times.append(t_end)
            live.append(demand.live_payload_bytes / GIB)
    omega = 2 * np.pi / period_s
    t = np.array(times)
    design = np.column_stack([np.ones_like(t), np.sin(omega * t), np.cos(omega * t)])
    _, a_sin, b_cos = np.linalg.lstsq(design, np.array(live), rcond=None)[0]
    c = demand.classes
    z = amplitude * np.sum(c.live_payload_bytes / (1 + 1j * omega * c.lifetime_s)) / GIB
    assert abs(a_sin - z.real) < 0.03
    assert abs(b_cos - z.imag) < 0.03
    assert np.hypot(a_sin, b_cos) > 0.3


def test_spikes_add_their_mean_extra_bytes():
    # Spikes of 32 MiB at 0.5/s held 4 s add rate·size·lifetime = 64 MiB on average (Little's law). Over
    # 2000 s the baseline's time average wanders by about 2 MiB and the spike count's by about 3 MiB.
    spikes = Spikes(rate_per_s=0.5, size_bytes="32M", lifetime_s="4s")
    demand = HeapDemand("tcmalloc/beta", 256 * MIB, None, np.random.default_rng(9),
                        modulation=Modulation(spikes=spikes))
    demand.initial()
    extra = [demand.live_bytes - demand.steady_live_bytes() for _ in run(demand, 2000)]
    assert spikes.mean_extra_bytes() == 64 * MIB
    assert abs(np.mean(extra) - 64 * MIB) < 15 * MIB


def events_of(seed: int) -> list:
    modulation = Modulation(diurnal=Diurnal(amplitude=0.3, period_s=600), restarts=Restarts(interval_s=40),
                            spikes=Spikes(rate_per_s=1, size_bytes="4M", lifetime_s=2),
                            startup=Startup(duration_s=10, transient_bytes="16M"))
    demand = HeapDemand("tcmalloc/merced", 128 * MIB, None, np.random.default_rng(seed),
                        modulation=modulation)
    return [demand.initial()] + [ev for _, ev in run(demand, 100)]


def test_same_seed_gives_identical_events_and_another_seed_does_not():
    first, again, other = events_of(1), events_of(1), events_of(2)
    fields = ("alloc_ids", "alloc_bytes", "alloc_span_bytes", "alloc_class", "free_ids", "free_bytes")
    for a, b in zip(first, again, strict=True):
        assert a.restart == b.restart
        for f in fields:
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert any(a.alloc_bytes.size != b.alloc_bytes.size or np.any(a.alloc_bytes != b.alloc_bytes)
               for a, b in zip(first, other, strict=True))


def test_events_per_step_stay_below_the_documented_bound():
    # Every unit is >= min_span_bytes (small classes) or > 256 KiB (large), so unit births per second are at
    # most span churn / min_span_bytes; at steady state deaths match births. Bound per step: twice that
    # mean, plus 5 Poisson sd.
    for profile in ("tcmalloc/beta", "fleetbench/TCMALLOC_0", "tcmalloc/foxtrot"):
        demand = HeapDemand(profile, GIB, None, np.random.default_rng(4))
        span_churn = demand.classes.birth_byte_rate.sum()
        births_bound = span_churn / demand.min_span_bytes
        assert demand.mean_unit_births_per_s() <= births_bound
        bound = 2 * births_bound + 5 * np.sqrt(2 * births_bound)
        demand.initial()
        assert max(ev.n_events for _, ev in run(demand, 200)) <= bound, profile


def test_units_are_page_multiples_and_at_least_the_grouping_quantum():
    demand = HeapDemand("tcmalloc/beta", 256 * MIB, None, np.random.default_rng(0))
    events = demand.initial()
    assert np.all(events.alloc_bytes % 4096 == 0)
    assert np.all(events.alloc_bytes % events.alloc_span_bytes == 0)
    assert np.all(events.alloc_bytes >= demand.min_span_bytes)
    exact = HeapDemand("tcmalloc/beta", 256 * MIB, None, np.random.default_rng(0), min_span_bytes=8192)
    events = exact.initial()
    np.testing.assert_array_equal(events.alloc_bytes, events.alloc_span_bytes)


def test_restart_empties_the_heap_and_start_up_rebuilds_it():
    # Restart at t=100 with a 20 s start-up carrying 64 MiB of transient bytes: the restart step is flagged,
    # the heap right after it holds only what start-up has built so far, transient bytes peak at the end of
    # start-up and are gone after it, and ids never repeat.
    modulation = Modulation(restarts=Restarts(interval_s=100), startup=Startup(duration_s=20,
                                                                                transient_bytes="64M"))
    demand = HeapDemand("tcmalloc/beta", 256 * MIB, None, np.random.default_rng(6), modulation=modulation)
    first = demand.initial()
    steady = demand.steady_live_bytes()
    assert first.alloc_ids.size == 0            # start-up at t=0 spreads the starting heap over 20 s too
    seen: set[int] = set()
    live = {}
    for t_end, events in run(demand, 130):
        assert events.restart == (t_end == 101)
        new = set(events.alloc_ids.tolist())
        assert not new & seen
        seen |= new
        live[t_end] = demand.live_bytes
    assert live[101] < 0.2 * steady
    assert live[120] > steady + 32 * MIB        # base heap rebuilt plus most transient bytes
    assert abs(live[121] - steady) < 0.1 * steady   # transient bytes freed when start-up ends
    assert abs(live[21] - steady) < 0.1 * steady    # the same start-up ran from t=0


def test_heap_none_uses_the_fleetbench_base_heap_and_rejects_tcmalloc_profiles():
    demand = HeapDemand("fleetbench/TCMALLOC_1", None, None, np.random.default_rng(0))
    assert demand.heap_bytes == 93 * MIB
    with pytest.raises(ValueError, match="heap_bytes"):
        HeapDemand("tcmalloc/beta", None, None, np.random.default_rng(0))


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="rng"):
        HeapDemand("tcmalloc/beta", GIB, None, 42)


def test_a_positive_diurnal_phase_delays_the_cycle():
    # phase 6 h on a 24 h day: the peak moves from 6 h to 12 h, the trough from 18 h to 24 h.
    hour = 3600.0
    assert diurnal_factor(12 * hour, 0.4, 24 * hour, 6 * hour) == pytest.approx(1.4, abs=1e-12)
    assert diurnal_factor(24 * hour, 0.4, 24 * hour, 6 * hour) == pytest.approx(0.6, abs=1e-12)
    assert Diurnal(0.4, "24h", "6h").factor(12 * hour) == diurnal_factor(12 * hour, 0.4, 24 * hour, 6 * hour)
