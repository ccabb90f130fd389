"""Real allocation profiles and malloc traces, read from the data shipped in the package.

A profile is a table of object sizes with a relative allocation rate and a relative live count per size, as
google/tcmalloc's empirical driver (tcmalloc/testing/empirical_distributions.cc, 2019-2022) and
google/fleetbench's "Y22" set (fleetbench/tcmalloc/distributions/) give them. Units of rate and count are
arbitrary but consistent within one profile, so lifetimes by Little's law are in the profile's own time unit;
`HeapDemand` fixes that unit from an allocation rate in bytes/s.

Traces are the valgrind malloc/free sequences of small programs from rustwasm/wee_alloc: order only, no
timestamps and no threads. Nothing here is downloaded; everything comes from `clustersim/data/`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

TCMALLOC_PROFILES = (
    "beta", "bravo", "charlie", "delta", "echo", "foxtrot", "merced", "sierra", "sigma", "uniform",
)
FLEETBENCH_INDICES = tuple(range(10))
# Index to name, checked upstream by exact comparison with fleetbench commit b6af5f9 (see SOURCE.md).
FLEETBENCH_NAMES = (
    "bravo", "beta", "charlie", "delta", "echo", "foxtrot", "merced", "sierra", "sigma", "uniform",
)
TRACES = (
    "cpp-demangle", "dogfood", "ffmpeg", "find", "gcc-hello", "grep-random-data", "grep-recursive", "ls",
    "source-map",
)
MIB = 1 << 20


@dataclass(frozen=True, eq=False)
class Profile:
    """One allocation profile: per row a request size, a relative malloc rate and a relative live count.

    `base_heap_bytes` is the heap the upstream driver targets (fleetbench only; None for the tcmalloc set).
    """

    name: str
    size_bytes: np.ndarray
    alloc_rate: np.ndarray
    num_live: np.ndarray
    base_heap_bytes: int | None = None
    live_byte_share: np.ndarray = field(init=False, repr=False)
    mean_lifetime: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        assert self.size_bytes.shape == self.alloc_rate.shape == self.num_live.shape, "row arrays differ"
        assert np.all(self.alloc_rate > 0) and np.all(self.num_live > 0), f"{self.name}: rates must be > 0"
        live_bytes = self.num_live * self.size_bytes
        object.__setattr__(self, "live_byte_share", live_bytes / live_bytes.sum())
        # Little's law: mean lifetime = live count / arrival rate, in the profile's own time unit.
        object.__setattr__(self, "mean_lifetime", self.num_live / self.alloc_rate)
        for array in (self.size_bytes, self.alloc_rate, self.num_live):
            array.flags.writeable = False
        self.live_byte_share.flags.writeable = False
        self.mean_lifetime.flags.writeable = False

    @property
    def rows(self) -> int:
        return int(self.size_bytes.size)

    def alloc_byte_rate(self) -> float:
        """Σ alloc_rate·size: bytes allocated per profile time unit at the profile's own live scale."""
        return float(np.dot(self.alloc_rate, self.size_bytes))

    def live_bytes(self) -> float:
        """Σ num_live·size: live bytes at the profile's own scale."""
        return float(np.dot(self.num_live, self.size_bytes))


@dataclass(frozen=True, eq=False)
class Trace:
    """A malloc trace: per event op (True = allocate, False = free), allocation ordinal and size in bytes."""

    name: str
    is_alloc: np.ndarray
    alloc_id: np.ndarray
    size_bytes: np.ndarray


def list_profiles() -> list[str]:
    """Every name `load_profile` accepts."""
    names = [f"tcmalloc/{p}" for p in TCMALLOC_PROFILES]
    return names + [f"fleetbench/TCMALLOC_{i}" for i in FLEETBENCH_INDICES]


def list_traces() -> list[str]:
    """Every name `load_trace` accepts."""
    return list(TRACES)


def load_profile(name: str) -> Profile:
    """The profile `tcmalloc/<name>` or `fleetbench/TCMALLOC_<i>`; ValueError lists the allowed names."""
    if name not in list_profiles():
        raise ValueError(f"profile: {name!r} is not a known profile; allowed: {', '.join(list_profiles())}")
    return _load_profile_cached(name)


def load_trace(name: str) -> Trace:
    """The wee_alloc trace `name` (e.g. 'gcc-hello'); ValueError lists the allowed names."""
    if name not in TRACES:
        raise ValueError(f"trace: {name!r} is not a known trace; allowed: {', '.join(TRACES)}")
    rows = list(csv.DictReader(io.StringIO(_read_text("wee-alloc-traces", f"{name}.csv"))))
    return Trace(
        name=name,
        is_alloc=np.array([r["op"] == "A" for r in rows], dtype=bool),
        alloc_id=np.array([int(r["id"]) for r in rows], dtype=np.int64),
        size_bytes=np.array([int(r["size"]) for r in rows], dtype=np.int64),
    )


@cache
def _load_profile_cached(name: str) -> Profile:
    family, _, member = name.partition("/")
    if family == "tcmalloc":
        return _tcmalloc_profile(member)
    return _fleetbench_profile(int(member.removeprefix("TCMALLOC_")))


def _read_text(folder: str, filename: str) -> str:
    return (resources.files("clustersim") / "data" / folder / filename).read_text(encoding="utf-8")


def _tcmalloc_profile(member: str) -> Profile:
    table = _tcmalloc_table()
    rows = table[member]
    return Profile(name=f"tcmalloc/{member}", size_bytes=rows[:, 0].astype(np.int64),
                   alloc_rate=rows[:, 1].copy(), num_live=rows[:, 2].copy())


@cache
def _tcmalloc_table() -> dict[str, np.ndarray]:
    reader = csv.DictReader(io.StringIO(_read_text("tcmalloc-empirical", "empirical_distributions.csv")))
    grouped: dict[str, list[tuple[float, float, float]]] = {}
    for r in reader:
        grouped.setdefault(r["profile"], []).append(
            (float(r["size_bytes"]), float(r["alloc_rate"]), float(r["num_live"])))
    return {p: np.array(v, dtype=np.float64) for p, v in grouped.items()}


def _fleetbench_profile(index: int) -> Profile:
    rows = np.loadtxt(io.StringIO(_read_text("fleetbench-tcmalloc", f"TCMALLOC_{index}.csv")),
                      delimiter=",", dtype=np.float64, ndmin=2)
    return Profile(name=f"fleetbench/TCMALLOC_{index}", size_bytes=rows[:, 0].astype(np.int64),
                   alloc_rate=rows[:, 1].copy(), num_live=rows[:, 2].copy(),
                   base_heap_bytes=_fleetbench_heap_mib()[index] * MIB)


@cache
def _fleetbench_heap_mib() -> dict[int, int]:
    rows = np.loadtxt(io.StringIO(_read_text("fleetbench-tcmalloc", "heap_size.csv")),
                      delimiter=",", dtype=np.int64, ndmin=2)
    return {int(i): int(mib) for i, mib in rows}
