"""Tenant kinds' defaults, the TLB factor, and the little behaviour batch and filecache tenants need.

- service and cache: requests per second with a base service time (lognormal from median and p99, or fixed)
  that the TLB factor stretches as the heap's THP coverage falls, served on worker threads; the request
  model (arrivals, queue, stalls) is the fleet's (``clustersim.fleet.queue``); the defaults are here.
- batch: throughput in work units per second, slowed by the same TLB factor.
- filecache: reads a file set into the page cache at a rate, sequentially or at random.

Left out: CPU contention between tenants, and any change of demand with latency (open-loop load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from clustersim.units import parse_rate, parse_size

# Default TLB sensitivity: share of service time spent in page walks when no heap byte is on a hugepage.
# Source: Hunter et al., "Beyond malloc efficiency to fleet efficiency" (OSDI 2021), Table 1, fleet-average
# row: dTLB page walks take 23.3% of cycles with the fleet's partial hugepage coverage at the time. The same
# paper's 1% fleet experiment puts that coverage at about 11.8% of heap for binaries with periodic release,
# the common configuration. Under our model (walk time proportional to the share of the heap not on
# hugepages, `tlb_factor` below) a walk share σ at coverage c means a walk share at 0% coverage of
# s = σ / (1 - c + σ·c) = 0.233 / (0.882 + 0.027) ≈ 0.256, which we round to 0.25.
# Known gap: Table 1 also shows walks falling to 12.4% of cycles while coverage only rose to about 23%,
# which the linear form cannot produce; hugepages evidently cover the hot data first. Weighting coverage
# by hot bytes (see access.py) is the refinement if this matters.
DEFAULT_TLB_SENSITIVITY = 0.25

# Defaults of a service tenant, read by the run-file schema and the fleet's process agent alike.
DEFAULT_RPS = 1000.0                    # requests per second of one process
DEFAULT_SERVICE_TIME_S = (0.001, 0.010)  # base service time's (median, p99): a 1 ms RPC with a 10x tail
DEFAULT_REFILL_RATE = float(1 << 30)     # bytes/s a cache refills lost entries at (about 1 GB/s, as above)
DEFAULT_RESTART_DELAY_S = 10.0           # how long a killed process stays down before it is restarted
DEFAULT_THREADS = 8                      # worker threads serving one process's request queue


def tlb_factor(coverage: float | np.ndarray,
               sensitivity: float = DEFAULT_TLB_SENSITIVITY) -> float | np.ndarray:
    """Service-time multiplier at THP `coverage` (share of heap on hugepages); 1 at coverage 1.

    Time = non-walk work + walks, walks proportional to the uncovered share: T(c) = T0·(1 - s + s·(1 - c)),
    so T(c)/T(1) = 1 + s·(1 - c)/(1 - s), with s = `sensitivity` (walk share at coverage 0).
    """
    _check_sensitivity(sensitivity)
    if isinstance(coverage, np.ndarray):
        uncovered = 1.0 - np.clip(coverage, 0.0, 1.0)
    else:   # a scalar each tick per process: plain float arithmetic, the same values without numpy's overhead
        uncovered = 1.0 - min(max(float(coverage), 0.0), 1.0)
    return 1.0 + sensitivity * uncovered / (1.0 - sensitivity)


def _check_sensitivity(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"tlb_sensitivity: {value!r} must be in [0, 1)")


@dataclass(frozen=True)
class BatchTenant:
    """Throughput job: `throughput_per_s` work units per second at full THP coverage."""

    throughput_per_s: float
    tlb_sensitivity: float = DEFAULT_TLB_SENSITIVITY
    kind: Literal["batch"] = "batch"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.throughput_per_s) and self.throughput_per_s >= 0):
            raise ValueError(f"throughput_per_s: {self.throughput_per_s!r} must be a finite rate >= 0")
        _check_sensitivity(self.tlb_sensitivity)

    def work_done(self, dt_s: float, coverage: float, stalled_s: float = 0.0) -> float:
        """Work units completed in dt_s, less the time lost to stalls."""
        busy_s = max(0.0, dt_s - stalled_s)
        return self.throughput_per_s * busy_s / float(tlb_factor(coverage, self.tlb_sensitivity))


@dataclass(frozen=True)
class FileReads:
    """File reads of one step: byte offsets into the file set and lengths (int64)."""

    offset_bytes: np.ndarray
    length_bytes: np.ndarray


@dataclass(frozen=True)
class FileCacheTenant:
    """Page-cache heavy job: reads `file_set_bytes` at `read_rate_bytes_per_s` in `chunk_bytes` reads."""

    read_rate_bytes_per_s: float | str
    file_set_bytes: int | str
    chunk_bytes: int | str = 1 << 20
    pattern: Literal["sequential", "uniform"] = "sequential"
    kind: Literal["filecache"] = "filecache"

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_rate_bytes_per_s", parse_rate(self.read_rate_bytes_per_s, "read_rate"))
        object.__setattr__(self, "file_set_bytes", parse_size(self.file_set_bytes, "file_set_bytes"))
        object.__setattr__(self, "chunk_bytes", parse_size(self.chunk_bytes, "chunk_bytes"))
        if self.pattern not in ("sequential", "uniform"):
            raise ValueError(f"pattern: {self.pattern!r} is not allowed; use 'sequential' or 'uniform'")
        if not 0 < self.chunk_bytes <= self.file_set_bytes:
            raise ValueError(f"chunk_bytes: {self.chunk_bytes!r} must be in (0, file_set_bytes]")

    def reads(self, t_s: float, dt_s: float, rng: np.random.Generator) -> FileReads:
        """Reads issued in [t_s, t_s + dt_s). Sequential reads are a function of time only (a cursor that
        wraps round the file set); uniform reads draw chunk-aligned offsets from `rng`."""
        first = math.floor(self.read_rate_bytes_per_s * t_s / self.chunk_bytes)
        last = math.floor(self.read_rate_bytes_per_s * (t_s + dt_s) / self.chunk_bytes)
        n_chunks = self.file_set_bytes // self.chunk_bytes
        if self.pattern == "sequential":
            index = np.arange(first, last, dtype=np.int64) % n_chunks
        else:
            index = rng.integers(0, n_chunks, size=last - first, dtype=np.int64)
        return FileReads(index * self.chunk_bytes, np.full(index.size, self.chunk_bytes, dtype=np.int64))


Tenant = BatchTenant | FileCacheTenant
TENANT_KINDS: dict[str, type] = {"batch": BatchTenant, "filecache": FileCacheTenant}


def make_tenant(kind: str, **params: object) -> Tenant:
    """The tenant of `kind` built from keyword parameters; ValueError names the kind and the allowed ones."""
    if kind not in TENANT_KINDS:
        raise ValueError(f"tenant kind: {kind!r} is not allowed; allowed: {', '.join(TENANT_KINDS)}")
    return TENANT_KINDS[kind](**params)
