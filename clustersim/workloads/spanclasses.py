"""From an object-level allocation profile to span classes: span length, birth rate and lifetime per class.

This is the empirical driver's recipe (google/tcmalloc tcmalloc/testing/empirical.h, 2019-2022) carried to
span level. Per profile row i: live objects N_i = k·num_live_i with k chosen so Σ N_i·size_i = heap_bytes, and
births λ_i = c·alloc_rate_i objects/s with c chosen so Σ λ_i·size_i = churn_bytes_per_s; this fixes the
profile's time unit. Little's law gives each row's mean lifetime N_i/λ_i in seconds.

Small rows (<= 256 KiB) share their size class's spans: a class holding L objects born at Λ objects/s with
n objects per span has L/n live spans born at Λ/n spans/s, mean span lifetime L/Λ (Little's law again).
Large rows get one span each, rounded up to 8 KiB.

Grouping (the stated simplification): small spans of one class are handed out in allocation units of
`spans_per_unit` = ceil(min_span_bytes / span_bytes) spans that are born and die together, which bounds the
number of events per step by churn·dt/min_span_bytes. With min_span_bytes = 8 KiB every unit is one span.

Left out: partially filled spans (a span is counted as fully packed, so live span bytes = live objects'
class-rounded bytes plus tail waste, never the fragmentation inside spans), per-object lifetimes inside a
span (a span lives as long as its class's mean object lifetime, which underestimates how long real spans
stay pinned by their longest-lived object), and per-CPU caches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clustersim.workloads.profiles import Profile
from clustersim.workloads.sizeclasses import (
    MAX_SMALL_BYTES,
    TCMALLOC_PAGE_BYTES,
    round_up,
    tcmalloc_size_classes,
)


@dataclass(frozen=True, eq=False)
class SpanClasses:
    """Per class (small size classes first, then one per large row): the steady span flow in seconds."""

    request_bytes: np.ndarray           # int64, largest request the class serves (class size or row size)
    span_bytes: np.ndarray              # int64, a multiple of 8 KiB
    spans_per_unit: np.ndarray          # int64, spans handed out together
    span_birth_rate_per_s: np.ndarray   # float64, spans per second at birth factor 1
    lifetime_s: np.ndarray              # float64, mean span lifetime
    live_payload_bytes: np.ndarray      # float64, requested bytes alive in the class at steady state
    payload_birth_rate: np.ndarray      # float64, requested bytes born per second
    is_small: np.ndarray                # bool

    @property
    def unit_bytes(self) -> np.ndarray:
        return self.span_bytes * self.spans_per_unit

    @property
    def live_spans(self) -> np.ndarray:
        """Steady live spans per class (Little's law: birth rate x lifetime)."""
        return self.span_birth_rate_per_s * self.lifetime_s

    @property
    def live_span_bytes(self) -> np.ndarray:
        return self.live_spans * self.span_bytes

    @property
    def payload_per_span_bytes(self) -> np.ndarray:
        return self.live_payload_bytes / self.live_spans

    @property
    def birth_byte_rate(self) -> np.ndarray:
        """Span bytes born per second per class."""
        return self.span_birth_rate_per_s * self.span_bytes


def build_span_classes(profile: Profile, heap_bytes: float, churn_bytes_per_s: float,
                       min_span_bytes: int) -> SpanClasses:
    """Span classes for `profile` at `heap_bytes` live requested bytes and `churn_bytes_per_s` births."""
    assert heap_bytes > 0 and churn_bytes_per_s > 0 and min_span_bytes > 0
    size = profile.size_bytes.astype(np.float64)
    live_objects = profile.num_live * (heap_bytes / profile.live_bytes())
    births_per_s = profile.alloc_rate * (churn_bytes_per_s / profile.alloc_byte_rate())
    small = profile.size_bytes <= MAX_SMALL_BYTES
    small_part = _small_classes(profile.size_bytes[small], live_objects[small], births_per_s[small],
                                size[small])
    large_part = _large_classes(profile.size_bytes[~small], live_objects[~small], births_per_s[~small],
                                size[~small])
    parts = [np.concatenate(columns) for columns in zip(small_part, large_part, strict=True)]
    request_bytes, span_bytes, span_births, span_live, payload, payload_births, is_small = parts
    spans_per_unit = np.where(is_small, np.maximum(1, -(-min_span_bytes // span_bytes)), 1)
    return SpanClasses(
        request_bytes=request_bytes.astype(np.int64),
        span_bytes=span_bytes.astype(np.int64),
        spans_per_unit=spans_per_unit.astype(np.int64),
        span_birth_rate_per_s=span_births,
        lifetime_s=span_live / span_births,
        live_payload_bytes=payload,
        payload_birth_rate=payload_births,
        is_small=is_small.astype(bool),
    )


def _small_classes(size_bytes, live_objects, births_per_s, size) -> tuple[np.ndarray, ...]:
    table = tcmalloc_size_classes()
    cls = table.class_of(size_bytes)
    used = np.unique(cls)
    per_span = table.objects_per_span[used].astype(np.float64)
    objects_live = np.bincount(cls, weights=live_objects, minlength=table.class_bytes.size)[used]
    objects_born = np.bincount(cls, weights=births_per_s, minlength=table.class_bytes.size)[used]
    payload = np.bincount(cls, weights=live_objects * size, minlength=table.class_bytes.size)[used]
    payload_births = np.bincount(cls, weights=births_per_s * size, minlength=table.class_bytes.size)[used]
    return (table.class_bytes[used], table.span_bytes[used], objects_born / per_span, objects_live / per_span,
            payload, payload_births, np.ones(used.size, dtype=bool))


def _large_classes(size_bytes, live_objects, births_per_s, size) -> tuple[np.ndarray, ...]:
    span_bytes = round_up(size_bytes, TCMALLOC_PAGE_BYTES)
    return (size_bytes, span_bytes, births_per_s, live_objects, live_objects * size, births_per_s * size,
            np.zeros(size_bytes.size, dtype=bool))
