"""What the compiled loops produce, rendered as text, for the compiled-vs-plain-Python comparison.

``test_no_jit_equivalence`` runs ``outputs()`` in two fresh interpreters, one with ``NUMBA_DISABLE_JIT=1``,
and requires identical text. Covered: the kernel's golden scenarios (every syscall path), the legacy
tcmalloc, jemalloc, glibc and Temeraire syscall traces (the allocators' range loops, the page heaps' batch
loops, Temeraire's compiled placement, freeing, cache, region and subrelease calls), the latency histogram's
bucket loop, the request queue's recursion (stalls, freezes, timeouts), the compiled PCG64 draws and the
workloads' live-unit table and hot-set hash.
"""

from __future__ import annotations

import numba
import numpy as np
from golden_scenarios import CONFIGS, allocator_scenario, scenario, timeline
from test_syscall_trace import CASES, trace_lines

from clustersim.bits import float_bits, mul_hi
from clustersim.fleet.latency import GAMMA, HI_S, LO_S, LatencyHistogram, bucket_of
from clustersim.fleet.queue import RequestQueue
from clustersim.pcg64 import State, next_double, poisson, standard_exponential, standard_normal
from clustersim.workloads import HeapDemand
from clustersim.workloads.access import AccessPattern

TRACE_KINDS = ("tcmalloc", "jemalloc", "glibc", "temeraire")


def kernel_outputs() -> dict[str, list[str]]:
    out = {f"kernel/{name}": timeline(*scenario(config)) for name, config in sorted(CONFIGS.items())}
    out["kernel/allocators"] = timeline(*allocator_scenario())
    return out


def trace_outputs() -> dict[str, list[str]]:
    return {f"trace/{name}": trace_lines(name) for name in sorted(CASES) if CASES[name][0] in TRACE_KINDS}


def latency_lines() -> list[str]:
    """Bucket edges, special values, weighted adds, and 200 ticks of the request queue with per-thread
    stalls, freezes (some overlapping) and a timeout."""
    edges = LO_S * GAMMA ** np.arange(0, 2000, 37)
    special = np.array([0.0, LO_S, LO_S * (1 - 1e-12), HI_S, HI_S * 10, np.inf, np.nan, 1e-300])
    lines = [f"buckets {bucket_of(np.concatenate([edges, edges * (1 + 1e-9), special])).tolist()}"]
    rng = np.random.default_rng(2)
    hist = LatencyHistogram()
    queues = [RequestQueue(threads=1, median_s=9e-4, p99_s=9e-4, timeout_s=0.02),
              RequestQueue(threads=8, median_s=1e-3, p99_s=2e-2)]
    for t in range(200):
        for q in queues:
            stalls = rng.exponential(5e-3, size=int(rng.integers(0, 6)))
            freezes = rng.exponential(2e-2, size=int(rng.integers(0, 3)))
            out = q.serve(rng, float(t), 1.0, 900.0 + t, 1.0 + t / 400, float(rng.exponential(1e-3)), stalls,
                          freezes, hist)
            lines.append(f"tick {t} served={len(out)} sum={out.sum()!r} free={q.free.tolist()!r}")
        hist.add(rng.exponential(1e-3, 50), rng.random(50))   # one weight per latency
        if t % 20 == 19:
            lines.append(f"tick {t} total={hist.total!r} p50={hist.quantile_s(0.5)!r} p99={hist.quantile_s(0.99)!r}")
    lines += [f"stats {q.stats!r}" for q in queues]
    lines.append(f"counts {hist.counts.tolist()!r}")
    return lines


def demand_lines() -> list[str]:
    """Two profiles' span births and deaths over 40 one-second steps, with a restart halfway."""
    lines = []
    for profile in ("tcmalloc/beta", "tcmalloc/sigma"):
        demand = HeapDemand(profile, "64M", "8MiB/s", np.random.default_rng(9), min_span_bytes="64K")
        events = [demand.initial()]
        for t in range(40):
            events.append(demand.restart(float(t)) if t == 20 else demand.step(float(t), 1.0))
        for t, ev in enumerate(events):
            lines.append(f"{profile} {t} alloc {ev.alloc_ids.tolist()} {ev.alloc_bytes.tolist()} "
                         f"free {ev.free_ids.tolist()} {ev.free_bytes.tolist()}")
        lines.append(f"{profile} live {demand.live_units_per_class.tolist()} {demand.live_bytes}")
    return lines


def hot_set_lines() -> list[str]:
    """Keys and hot sets of the splitmix hash, fixed and drifting."""
    ids = np.concatenate([np.arange(0, 3000), np.array([2**62, 2**63 - 1, 12345678901])])
    lines = []
    for drift in (0.0, 0.01):
        pattern = AccessPattern(np.random.default_rng(5), hot_share=0.3, drift_per_s=drift)
        lines.append(f"keys {drift} {pattern.keys(ids).tolist()!r}")
        lines += [f"hot {drift} {t} {pattern.hot_ids(ids, float(t)).tolist()}" for t in (0, 7, 50)]
    return lines


def draw_lines() -> list[str]:
    """The compiled draws (numpy's PCG64 and ziggurats) and the two machine operations under them."""
    state = State(np.random.default_rng(4))
    w = state.load()
    lines = [f"uniform {[float(next_double(w)) for _ in range(300)]!r}",
             f"exponential {[float(standard_exponential(w)) for _ in range(3000)]!r}",
             f"normal {[float(standard_normal(w)) for _ in range(3000)]!r}"]
    lines += [f"poisson {lam} {[int(poisson(w, lam)) for _ in range(300)]!r}" for lam in (0.0, 2.5, 10.0, 640.0)]
    words = [int(v) for v in w]
    pairs = [(np.uint64(2**64 - 1 - 7 * k), np.uint64(3**k % 2**64)) for k in range(40)]
    lines.append(f"state {words} mul_hi {[int(_mul_hi(a, b)) for a, b in pairs]}")
    lines.append(f"float_bits {[int(_float_bits(float(v))) for v in (0.0, 1e-300, 0.5, 3.0, 1e300)]}")
    return lines


@numba.njit
def _mul_hi(a, b):
    return mul_hi(a, b)


@numba.njit
def _float_bits(x):
    return float_bits(x)


def outputs() -> dict[str, list[str]]:
    return {**kernel_outputs(), **trace_outputs(), "latency": latency_lines(), "workloads/demand": demand_lines(),
            "workloads/hot_set": hot_set_lines(), "draws": draw_lines()}
