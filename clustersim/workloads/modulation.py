"""How a process's allocation demand varies over time: diurnal load, spikes, start-up and restarts.

The diurnal factor (`diurnal_factor`, one definition for the heap and the request rate) multiplies the steady
birth rate of every span class and a service's request rate, so the live heap follows it low-pass
filtered by each class's lifetime (a class living W seconds follows a period P with gain
1/sqrt(1 + (2πW/P)^2)); spikes and start-up add extra short-lived bytes, as the options of tcmalloc's
empirical driver do (docs/empirical-driver.md at google/tcmalloc 50feb296: spikes every `spike_rate` held for
`spike_lifetime`, transient start-up bytes); a restart empties the heap and repeats the start-up.

These are plain parameter records with small pure functions of time; `HeapDemand` draws the randomness.
Left out: weekly cycles, correlated load across processes (the fleet can give replicas the same phase),
and restart jitter (give each replica its own `offset_s`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from clustersim.units import parse_duration, parse_size


def diurnal_factor(t_s: float, amplitude: float, period_s: float, phase_s: float) -> float:
    """1 + amplitude·sin(2π(t_s - phase_s)/period_s): the daily curve shifted ``phase_s`` later in time.

    A positive phase delays the cycle, so the peak is at t = phase_s + period_s/4 (mod period_s). The heap's
    birth rate and a service's request rate both take this factor, so load and heap stay in step.
    """
    if amplitude == 0.0:
        return 1.0
    return 1.0 + amplitude * math.sin(2.0 * math.pi * (t_s - phase_s) / period_s)


@dataclass(frozen=True)
class Diurnal:
    """Birth-rate factor 1 + amplitude·sin(2π(t - phase_s)/period_s); amplitude in [0, 1]."""

    amplitude: float = 0.0
    period_s: float | str = 86400.0
    phase_s: float | str = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "period_s", parse_duration(self.period_s, "diurnal.period_s"))
        object.__setattr__(self, "phase_s", parse_duration(self.phase_s, "diurnal.phase_s"))
        if not 0.0 <= self.amplitude <= 1.0:
            raise ValueError(f"diurnal.amplitude: {self.amplitude!r} must be in [0, 1]")
        if self.period_s <= 0:
            raise ValueError(f"diurnal.period_s: {self.period_s!r} must be > 0")

    def factor(self, t_s: float) -> float:
        """``diurnal_factor`` at ``t_s`` with this record's parameters."""
        return diurnal_factor(t_s, self.amplitude, self.period_s, self.phase_s)


@dataclass(frozen=True)
class Spikes:
    """Poisson bursts of `size_bytes` extra allocations, each burst freed `lifetime_s` after its birth.

    Mean extra live bytes by Little's law: rate_per_s · size_bytes · lifetime_s.
    """

    rate_per_s: float = 0.0
    size_bytes: int | str = 0
    lifetime_s: float | str = 0.03

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_bytes", parse_size(self.size_bytes, "spikes.size_bytes"))
        object.__setattr__(self, "lifetime_s", parse_duration(self.lifetime_s, "spikes.lifetime_s"))
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s >= 0):
            raise ValueError(f"spikes.rate_per_s: {self.rate_per_s!r} must be a finite rate >= 0")

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0 and self.size_bytes > 0

    def mean_extra_bytes(self) -> float:
        return self.rate_per_s * self.size_bytes * self.lifetime_s


@dataclass(frozen=True)
class Startup:
    """After each (re)start: the steady heap is built over `duration_s`, and `transient_bytes` more are born
    over the same window and all freed when it ends (parsing buffers, warm-up copies)."""

    duration_s: float | str = 0.0
    transient_bytes: int | str = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "duration_s", parse_duration(self.duration_s, "startup.duration_s"))
        transient_bytes = parse_size(self.transient_bytes, "startup.transient_bytes")
        object.__setattr__(self, "transient_bytes", transient_bytes)
        if self.transient_bytes > 0 and self.duration_s == 0:
            raise ValueError("startup.transient_bytes: needs startup.duration_s > 0 to be held anywhere")


@dataclass(frozen=True)
class Restarts:
    """Restarts at offset_s + k·interval_s for k >= 1; `interval_s` None means never."""

    interval_s: float | str | None = None
    offset_s: float | str = 0.0

    def __post_init__(self) -> None:
        if self.interval_s is not None:
            object.__setattr__(self, "interval_s", parse_duration(self.interval_s, "restarts.interval_s"))
            if self.interval_s <= 0:
                raise ValueError(f"restarts.interval_s: {self.interval_s!r} must be > 0 or None")
        object.__setattr__(self, "offset_s", parse_duration(self.offset_s, "restarts.offset_s"))

    def restarts_in(self, t_s: float, dt_s: float) -> bool:
        """True when a restart time falls in [t_s, t_s + dt_s)."""
        if self.interval_s is None:
            return False
        k_next = max(1, math.ceil((t_s - self.offset_s) / self.interval_s))
        return self.offset_s + k_next * self.interval_s < t_s + dt_s


@dataclass(frozen=True)
class Modulation:
    """Everything that varies a process's demand over time; the default varies nothing."""

    diurnal: Diurnal = field(default_factory=Diurnal)
    spikes: Spikes = field(default_factory=Spikes)
    startup: Startup = field(default_factory=Startup)
    restarts: Restarts = field(default_factory=Restarts)

    def birth_factor(self, t_s: float, dt_s: float) -> float:
        """Multiplier of the steady birth rate over [t_s, t_s + dt_s), taken at the interval's midpoint."""
        return self.diurnal.factor(t_s + 0.5 * dt_s)
