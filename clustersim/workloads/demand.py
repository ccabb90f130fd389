"""Heap demand of one process as a flow of spans: which spans are born and which die in each time step.

The recipe is tcmalloc's empirical driver (tcmalloc/testing/empirical.h at google/tcmalloc 50feb296): the
profile's live counts are scaled to the target heap, Little's law gives lifetimes, births follow the
allocation rates, lifetimes are exponential and the starting heap is sampled from the live distribution. It
runs at span level instead of per object (see `spanclasses`): small objects are packed into size-class spans,
and small spans of one class born in the same step are grouped into allocation units of at least
`min_span_bytes` that live and die together.

Deaths: a live unit dies in [t, t+dt) with probability 1 - exp(-dt/lifetime). Because the exponential law is
memoryless this is the same as drawing each unit's death time once, at birth, as birth + Exp(lifetime);
we do the latter, so a step costs one comparison over the live table instead of one random draw per live
unit, and the result does not depend on the step length.

Order within a step: the caller applies `alloc_*` first, then `free_*`; a short-lived unit can be born and die
in the same step and then appears in both. With `restart` set, every unit alive before the step is gone (the
process exited at the step's start) and is not listed in `free_ids`.

Left out: object-level placement inside spans, allocation-site correlations (the profile has none), threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clustersim.jit import njit
from clustersim.pcg64 import State, next_double, poisson, standard_exponential, state_for
from clustersim.units import PAGE_SIZE, parse_rate, parse_size
from clustersim.workloads.modulation import Modulation
from clustersim.workloads.profiles import Profile, load_profile
from clustersim.workloads.spanclasses import SpanClasses, build_span_classes
from clustersim.workloads.spantable import LiveUnits, Rows

DEFAULT_TURNOVER_S = 60.0           # default churn: one heap's worth of allocations per minute
DEFAULT_MIN_SPAN_BYTES = 256 * 1024  # grouping quantum (run files: span_quantum): at most churn·dt/256 KiB events
_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class SpanEvents:
    """What one process asks of its allocator in one step; all arrays int64, bytes multiples of 4096."""

    alloc_ids: np.ndarray
    alloc_bytes: np.ndarray
    alloc_span_bytes: np.ndarray     # length of the spans a unit is made of (alloc_bytes is a multiple)
    alloc_class: np.ndarray          # index into HeapDemand.classes
    free_ids: np.ndarray
    free_bytes: np.ndarray
    restart: bool = False

    @property
    def n_events(self) -> int:
        return int(self.alloc_ids.size + self.free_ids.size)


@dataclass
class _Births:
    """Units to be born: class index, birth time and death time."""

    cls: np.ndarray
    birth_s: np.ndarray
    death_s: np.ndarray

    @staticmethod
    def empty() -> _Births:
        return _Births(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))

    @staticmethod
    def concat(parts: list[_Births]) -> _Births:
        parts = [p for p in parts if p.cls.size] or parts[:1]
        if len(parts) == 1:   # most steps: steady births only
            return parts[0]
        fields = ("cls", "birth_s", "death_s")
        return _Births(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def sorted_by_birth(self) -> _Births:
        order = np.argsort(self.birth_s, kind="stable")
        return _Births(self.cls[order], self.birth_s[order], self.death_s[order])

    def take_before(self, t_end_s: float) -> tuple[_Births, _Births]:
        """(born before t_end_s, the rest); REQUIRES sorted by birth."""
        if self.cls.size == 0:   # nothing pending, the usual case after start-up
            return self, self
        cut = int(np.searchsorted(self.birth_s, t_end_s, side="left"))
        head = _Births(self.cls[:cut], self.birth_s[:cut], self.death_s[:cut])
        return head, _Births(self.cls[cut:], self.birth_s[cut:], self.death_s[cut:])


@njit
def steady_births(w, rate_per_s, scale, carry, spans_per_unit, lifetime_s, t_s, dt_s):
    """One step's steady births, drawn from the PCG64 state ``w`` as numpy's calls drew them (pcg64.py): per
    class a Poisson count of spans at rate x ``scale``, which with the class's ``carry`` (updated in place)
    makes whole units of ``spans_per_unit``; then each unit's birth time, uniform over the step, and last its
    Exp(lifetime) life. Returns (class, birth time, death time) of each unit, classes in order."""
    k = rate_per_s.shape[0]
    units = np.empty(k, dtype=np.int64)
    for c in range(k):
        spans = poisson(w, rate_per_s[c] * scale) + carry[c]
        units[c] = spans // spans_per_unit[c]
        carry[c] = spans - units[c] * spans_per_unit[c]
    n = units.sum()
    cls, birth, death = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
    i = 0
    for c in range(k):
        for _ in range(units[c]):
            cls[i] = c
            i += 1
    for i in range(n):
        birth[i] = t_s + dt_s * next_double(w)
    for i in range(n):
        death[i] = birth[i] + standard_exponential(w) * lifetime_s[cls[i]]
    return cls, birth, death


class HeapDemand:
    """Span births and deaths of one process running an allocation profile.

    Args:
        profile: a `Profile` or a name accepted by `load_profile`.
        heap_bytes: target live heap in requested bytes (Σ live objects x size); None takes the profile's
            base heap (fleetbench profiles only).
        churn_bytes_per_s: allocation rate in requested bytes/s; fixes the profile's time unit. None means
            one heap's worth per DEFAULT_TURNOVER_S.
        rng: the only source of randomness.
        min_span_bytes: grouping quantum for small spans (8 KiB makes the flow exact at span level).
        modulation: diurnal factor, spikes, start-up and restarts; None varies nothing.
    """

    def __init__(self, profile: Profile | str, heap_bytes: int | str | None,
                 churn_bytes_per_s: float | str | None, rng: np.random.Generator, *,
                 min_span_bytes: int | str = DEFAULT_MIN_SPAN_BYTES,
                 modulation: Modulation | None = None) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.heap_bytes = self._resolve_heap(heap_bytes)
        self.churn_bytes_per_s = (self.heap_bytes / DEFAULT_TURNOVER_S if churn_bytes_per_s is None
                                  else parse_rate(churn_bytes_per_s, "churn_bytes_per_s"))
        self.min_span_bytes = parse_size(min_span_bytes, "min_span_bytes")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: {rng!r} must be a numpy.random.Generator")
        if self.churn_bytes_per_s <= 0 or self.min_span_bytes <= 0:
            raise ValueError("churn_bytes_per_s and min_span_bytes must be > 0")
        self.rng = rng
        self.modulation = modulation or Modulation()
        self.classes: SpanClasses = build_span_classes(
            self.profile, self.heap_bytes, self.churn_bytes_per_s, self.min_span_bytes)
        self._unit_bytes = self.classes.unit_bytes
        self._unit_payload_bytes = self.classes.payload_per_span_bytes * self.classes.spans_per_unit
        self._extra_share = self._small_birth_byte_share()
        self._carry_spans = np.zeros(self._unit_bytes.size, dtype=np.int64)
        self._table = LiveUnits(self._unit_bytes.size)
        self._pending = _Births.empty()
        self._next_id = 0
        self._draws: State | None = None

    # -- public API -------------------------------------------------------------------------------------

    def initial(self, t0_s: float = 0.0) -> SpanEvents:
        """Start the process at t0_s: the starting heap sampled from the live distribution (all of it at t0_s
        unless the modulation has a start-up phase, which spreads it over the phase)."""
        return self._start(t0_s, restart=False)

    def restart(self, t_s: float) -> SpanEvents:
        """Empty the heap at t_s (process exit, e.g. after an OOM kill) and start again."""
        return self._start(t_s, restart=True)

    def step(self, t_s: float, dt_s: float) -> SpanEvents:
        """Units born in [t_s, t_s + dt_s) and units that die in it (see the module docstring for order)."""
        assert dt_s > 0, f"dt_s={dt_s} must be > 0"
        restart = self.modulation.restarts.restarts_in(t_s, dt_s)
        if restart:
            self._exit()
            self._pending = self._startup_births(t_s)
        now, self._pending = self._pending.take_before(t_s + dt_s)
        births = _Births.concat([self._steady_births(t_s, dt_s), self._spike_births(t_s, dt_s), now])
        alloc_ids = self._add(births)
        removed = self._table.pop_before(t_s + dt_s)
        return self._events(alloc_ids, births.cls, removed.ids, self._unit_bytes[removed.cls], restart)

    @property
    def live_bytes(self) -> int:
        """Bytes of live spans (what the allocator holds for the application)."""
        return int(np.dot(self._table.units_per_class, self._unit_bytes))

    @property
    def live_payload_bytes(self) -> float:
        """Requested bytes inside the live spans (what the application asked for)."""
        return float(np.dot(self._table.units_per_class, self._unit_payload_bytes))

    @property
    def live_spans(self) -> int:
        return int(np.dot(self._table.units_per_class, self.classes.spans_per_unit))

    @property
    def live_units(self) -> int:
        return self._table.n

    @property
    def live_units_per_class(self) -> np.ndarray:
        return self._table.units_per_class

    @property
    def live_ids(self) -> np.ndarray:
        """Ids of the live units (a copy, in no particular order, aligned with `live_unit_bytes`)."""
        return self._table.column("ids")

    @property
    def live_unit_bytes(self) -> np.ndarray:
        return self._unit_bytes[self._table.column("cls")]

    def steady_live_bytes(self) -> float:
        """Expected live span bytes at birth factor 1, without spikes or start-up."""
        return float(self.classes.live_span_bytes.sum())

    def mean_unit_births_per_s(self) -> float:
        """Expected allocation units born per second at birth factor 1 (deaths match it at steady state).

        Bound: every unit is >= min_span_bytes or a large span, so this is <= span churn / min_span_bytes.
        """
        return float((self.classes.span_birth_rate_per_s / self.classes.spans_per_unit).sum())

    # -- births -----------------------------------------------------------------------------------------

    def _steady_births(self, t_s: float, dt_s: float) -> _Births:
        # Spans born this step per class, plus the spans carried over that did not fill a unit last time:
        # grouping delays a class's births until a unit is full, but never loses or adds bytes.
        factor = self.modulation.birth_factor(t_s, dt_s)
        self._draws = state_for(self.rng, self._draws)
        births = steady_births(self._draws.load(), self.classes.span_birth_rate_per_s, factor * dt_s,
                               self._carry_spans, self.classes.spans_per_unit, self.classes.lifetime_s, t_s, dt_s)
        self._draws.sync()
        return _Births(*births)

    def _spike_births(self, t_s: float, dt_s: float) -> _Births:
        spikes = self.modulation.spikes
        n_spikes = int(self.rng.poisson(spikes.rate_per_s * dt_s)) if spikes.enabled else 0
        if n_spikes == 0:
            return _Births.empty()
        cls = self._extra_units(n_spikes * spikes.size_bytes)
        spike_s = t_s + dt_s * self.rng.random(n_spikes)
        birth_s = spike_s[self.rng.integers(n_spikes, size=cls.size)]
        return _Births(cls, birth_s, birth_s + spikes.lifetime_s)

    def _startup_births(self, t_s: float) -> _Births:
        # The steady heap sampled from the live distribution (the driver's initial heap), born at t_s or
        # spread over the start-up phase; residual lifetimes are Exp(lifetime) by memorylessness.
        startup = self.modulation.startup
        units = self.rng.poisson(self.classes.live_spans / self.classes.spans_per_unit)
        cls = np.repeat(np.arange(units.size), units)
        birth_s = t_s + startup.duration_s * self.rng.random(cls.size)
        base = _Births(cls, birth_s, birth_s + self._exp_lifetimes(cls))
        extra_cls = self._extra_units(startup.transient_bytes)
        extra_birth_s = t_s + startup.duration_s * self.rng.random(extra_cls.size)
        transient = _Births(extra_cls, extra_birth_s, np.full(extra_cls.size, t_s + startup.duration_s))
        return _Births.concat([base, transient]).sorted_by_birth()

    def _extra_units(self, budget_bytes: float) -> np.ndarray:
        """Classes of small units holding about `budget_bytes`, mixed as the profile's small births are."""
        if budget_bytes <= 0:
            return _EMPTY_I64
        counts = self.rng.poisson(budget_bytes * self._extra_share / self._unit_bytes)
        return np.repeat(np.arange(counts.size), counts)

    def _exp_lifetimes(self, cls: np.ndarray) -> np.ndarray:
        return self.rng.standard_exponential(cls.size) * self.classes.lifetime_s[cls]

    def _small_birth_byte_share(self) -> np.ndarray:
        rate = np.where(self.classes.is_small, self.classes.birth_byte_rate, 0.0)
        return rate / rate.sum()

    # -- bookkeeping ------------------------------------------------------------------------------------

    def _start(self, t_s: float, restart: bool) -> SpanEvents:
        if restart:
            self._exit()
        self._pending = self._startup_births(t_s)
        now, self._pending = self._pending.take_before(np.nextafter(t_s, np.inf))
        alloc_ids = self._add(now)
        return self._events(alloc_ids, now.cls, _EMPTY_I64, _EMPTY_I64, restart)

    def _exit(self) -> None:
        self._table.clear()
        self._pending = _Births.empty()
        self._carry_spans[:] = 0

    def _add(self, births: _Births) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + births.cls.size, dtype=np.int64)
        self._next_id += births.cls.size
        self._table.add(Rows(ids, births.cls, births.death_s))
        return ids

    def _events(self, alloc_ids: np.ndarray, cls: np.ndarray, free_ids: np.ndarray, free_bytes: np.ndarray,
                restart: bool) -> SpanEvents:
        return SpanEvents(alloc_ids=alloc_ids, alloc_bytes=self._unit_bytes[cls],
                          alloc_span_bytes=self.classes.span_bytes[cls], alloc_class=cls, free_ids=free_ids,
                          free_bytes=free_bytes, restart=restart)

    def _resolve_heap(self, heap_bytes: int | str | None) -> int:
        if heap_bytes is None:
            if self.profile.base_heap_bytes is None:
                raise ValueError(f"heap_bytes: None needs a profile with a base heap; "
                                 f"{self.profile.name} has none")
            return self.profile.base_heap_bytes
        value = parse_size(heap_bytes, "heap_bytes")
        if value < PAGE_SIZE:
            raise ValueError(f"heap_bytes: {heap_bytes!r} must be >= {PAGE_SIZE}")
        return value
