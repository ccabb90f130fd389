"""The run file's schema: tenants (allocator, workload, memcg limits), and the run that holds them.

The allocator sections take their defaults, allowed values and bounds from the allocator models' own
``OPTIONS`` tables through ``clustersim.allocators.registry`` (``section_options``, ``SECTION_SWITCHES``), the
same correspondence the fleet uses to build the allocators, so a section ``check`` accepts is one the
allocator accepts. The kernel and node sections are in sections.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from clustersim.allocators.options import BASE_OPTIONS
from clustersim.allocators.registry import SECTION_SWITCHES, section_options
from clustersim.daemons.senpai import DEFAULTS as SENPAI
from clustersim.daemons.senpai import KNOBS
from clustersim.units import PAGE_SIZE
from clustersim.workloads import list_profiles
from clustersim.workloads.access import DEFAULT_HOT_SHARE
from clustersim.workloads.demand import DEFAULT_MIN_SPAN_BYTES
from clustersim.workloads.tenants import (
    DEFAULT_REFILL_RATE,
    DEFAULT_RESTART_DELAY_S,
    DEFAULT_RPS,
    DEFAULT_SERVICE_TIME_S,
    DEFAULT_THREADS,
    DEFAULT_TLB_SENSITIVITY,
)

from .sections import (
    SWAP_TAGS,
    Bounds,
    CgroupPath,
    Duration,
    Frequency,
    KernelConfig,
    Memcg,
    NodeGroup,
    Rate,
    SafeName,
    Section,
    Size,
    declared_tables,
    kind_of,
)

# Default slowdown of a request when none of its heap is THP-backed (factor 1 + s * (1 - coverage)).
# The default TLB sensitivity and the profile names belong to the workload package; one source each.
TLB_SENSITIVITY_DEFAULT = DEFAULT_TLB_SENSITIVITY
WORKLOAD_PROFILES: dict[str, tuple[str, ...]] = {
    source: tuple(n.partition("/")[2] for n in list_profiles() if n.startswith(source + "/"))
    for source in dict.fromkeys(n.partition("/")[0] for n in list_profiles())
}
# Seeds are stored as signed 64-bit integers (Parquet int64) and fed to numpy's SeedSequence.
SEED_MAX = (1 << 63) - 1
# Span grouping quantum: small spans of one class born in the same tick are one allocation unit of at
# least this size (workloads.md). 256 KiB keeps about 64 births per tick for a heap turning over 16 MiB/s.
SPAN_QUANTUM_DEFAULT = DEFAULT_MIN_SPAN_BYTES


# ---- allocators ----------------------------------------------------------------------------------------

_ADVICE = BASE_OPTIONS["release_advice"]
_TC, _TEM = section_options("tcmalloc"), section_options("temeraire")
_JE, _GLIBC = section_options("jemalloc"), section_options("glibc")


def _allocator_tables(declared: dict) -> tuple[dict[str, tuple[Any, ...]], dict[str, Bounds]]:
    choices, bounds = declared_tables(declared)
    return {**AllocatorBase.CHOICES, **choices}, bounds


class AllocatorBase(Section):
    """Options every allocator has: the release advice, MADV_HUGEPAGE on the heap, MADV_COLLAPSE use."""

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"madvise": _ADVICE.choices}
    madvise: str = _ADVICE.default
    hugepage_advice: bool = SECTION_SWITCHES["hugepage_advice"].default
    collapse: bool = SECTION_SWITCHES["collapse"].default


class Tcmalloc(AllocatorBase):
    """Legacy tcmalloc page heap, with the release strategies proposed in the 2015 thread."""

    CHOICES, BOUNDS = _allocator_tables(_TC)
    kind: Literal["tcmalloc"] = "tcmalloc"
    release_rate: Rate = _TC["release_rate"].default
    prefer_split_hugepages: bool = _TC["prefer_split_hugepages"].default
    prefer_long_spans: bool = _TC["prefer_long_spans"].default
    refault_discount: bool = _TC["refault_discount"].default
    span_occupancy: float = _TC["span_occupancy"].default
    cpu_caches: int = _TC["cpu_caches"].default
    cpu_cache_size: Size = _TC["cpu_cache_size"].default


class Temeraire(AllocatorBase):
    """tcmalloc's hugepage-aware allocator (OSDI 2021)."""

    CHOICES, BOUNDS = _allocator_tables(_TEM)
    kind: Literal["temeraire"] = "temeraire"
    release_rate: Rate = _TEM["release_rate"].default
    skip_subrelease_short: Duration = _TEM["skip_subrelease_short"].default
    skip_subrelease_long: Duration = _TEM["skip_subrelease_long"].default
    span_occupancy: float = _TEM["span_occupancy"].default
    cpu_caches: int = _TEM["cpu_caches"].default
    cpu_cache_size: Size = _TEM["cpu_cache_size"].default


class Jemalloc(AllocatorBase):
    """jemalloc 5.2+ decay-based purging."""

    CHOICES, BOUNDS = _allocator_tables(_JE)
    kind: Literal["jemalloc"] = "jemalloc"
    dirty_decay_ms: int = _JE["dirty_decay_ms"].default
    muzzy_decay_ms: int = _JE["muzzy_decay_ms"].default
    background_thread: bool = _JE["background_thread"].default
    thp: str = _JE["thp"].default
    span_occupancy: float = _JE["span_occupancy"].default
    narenas: int = _JE["narenas"].default
    tcache: bool = _JE["tcache"].default


class Glibc(AllocatorBase):
    """glibc malloc: brk heap trimmed at the top, large blocks mmapped."""

    CHOICES, BOUNDS = _allocator_tables(_GLIBC)
    kind: Literal["glibc"] = "glibc"
    trim_threshold: Size = _GLIBC["trim_threshold"].default
    mmap_threshold: Size = _GLIBC["mmap_threshold"].default
    malloc_trim: bool = SECTION_SWITCHES["malloc_trim"].default


Allocator = Annotated[
    Annotated[Tcmalloc, Tag("tcmalloc")] | Annotated[Temeraire, Tag("temeraire")]
    | Annotated[Jemalloc, Tag("jemalloc")] | Annotated[Glibc, Tag("glibc")],
    kind_of("tcmalloc"),
]
UNION_TAGS = SWAP_TAGS | {"tcmalloc", "temeraire", "jemalloc", "glibc"}


# ---- workloads and tenants -----------------------------------------------------------------------------

class ServiceTime(Section):
    """Base request service time (lognormal through median and p99), before TLB factor and stalls."""

    BOUNDS: ClassVar[dict[str, Bounds]] = {"median": Bounds(0.0, None, lo_open=True)}  # log(median)
    median: Duration = DEFAULT_SERVICE_TIME_S[0]
    p99: Duration = DEFAULT_SERVICE_TIME_S[1]


class Diurnal(Section):
    """Heap and request-rate modulation: 1 + amplitude * sin(2 pi (t - phase) / period)."""

    # the period divides the phase of the cycle: zero is no period
    BOUNDS: ClassVar[dict[str, Bounds]] = {"amplitude": Bounds(0.0, 1.0), "period": Bounds(0.0, None, lo_open=True)}
    amplitude: float = 0.0
    period: Duration = 86400.0
    phase: Duration = 0.0


class Spikes(Section):
    """Transient extra bytes: ``rate`` spikes per second (or '2/h'), each ``size`` held for ``lifetime``."""

    rate: Frequency = 0.0
    size: Size = 0
    lifetime: Duration = 0.030


class Startup(Section):
    """A start-up phase of ``duration`` holding ``bytes`` extra, released when it ends."""

    duration: Duration = 0.0
    bytes: Size = 0


class Restarts(Section):
    """Planned restarts every ``interval`` (None: never); ``delay`` is also the restart delay after OOM."""

    BOUNDS: ClassVar[dict[str, Bounds]] = {"interval": Bounds(0.0, None, lo_open=True)}  # divides time
    interval: Duration | None = None
    delay: Duration = DEFAULT_RESTART_DELAY_S


class Workload(Section):
    """Demand of one process: heap from an allocation profile, churn, requests and file I/O."""

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"kind": ("service", "batch", "cache", "filecache")}
    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "rps": Bounds(0.0, None), "tlb_sensitivity": Bounds(0.0, 0.99), "hot_share": Bounds(0.0, 1.0),
        "span_quantum": Bounds(4096, 1 << 30), "threads": Bounds(1, 4096),
        "timeout": Bounds(0.0, None, lo_open=True),
        # the demand model scales the profile to at least one page of heap and divides by the churn
        "heap": Bounds(PAGE_SIZE, None), "churn": Bounds(0.0, None, lo_open=True)}
    kind: str = "service"
    profile: str = "tcmalloc/beta"
    heap: Size = 1 << 30
    churn: Rate = float(64 << 20)
    rps: float = DEFAULT_RPS
    service_time: ServiceTime = Field(default_factory=ServiceTime)
    threads: int = DEFAULT_THREADS
    timeout: Duration | None = None
    tlb_sensitivity: float = TLB_SENSITIVITY_DEFAULT
    hot_share: float = DEFAULT_HOT_SHARE
    diurnal: Diurnal = Field(default_factory=Diurnal)
    spikes: Spikes = Field(default_factory=Spikes)
    startup: Startup = Field(default_factory=Startup)
    restarts: Restarts = Field(default_factory=Restarts)
    file_rate: Rate = 0.0
    file_set: Size = 0
    refill_rate: Rate = DEFAULT_REFILL_RATE
    span_quantum: Size = SPAN_QUANTUM_DEFAULT

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        source, _, name = value.partition("/")
        if name not in WORKLOAD_PROFILES.get(source, ()):
            known = "; ".join(f"{src}/{{{','.join(names)}}}" for src, names in WORKLOAD_PROFILES.items())
            raise PydanticCustomError("choice", f"source/name, one of {known}")
        return value


class Senpai(Section):
    """senpai on each replica's memcg leaf: its parameters as senpai.py names them (clustersim.daemons.senpai)."""

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"knob": KNOBS}
    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "min_size": Bounds(PAGE_SIZE, None), "max_size": Bounds(PAGE_SIZE, None), "interval": Bounds(1, None),
        "pressure": Bounds(1, None), "max_probe": Bounds(0.0, 1.0, lo_open=True),
        "max_backoff": Bounds(0.0, None, lo_open=True), "coeff_probe": Bounds(1, None),
        "coeff_backoff": Bounds(1, None)}
    min_size: Size = SENPAI["min_size"]
    max_size: Size = SENPAI["max_size"]
    interval: int = SENPAI["interval"]
    pressure: int = SENPAI["pressure"]
    max_probe: float = SENPAI["max_probe"]
    max_backoff: float = SENPAI["max_backoff"]
    coeff_probe: int = SENPAI["coeff_probe"]
    coeff_backoff: int = SENPAI["coeff_backoff"]
    knob: str = SENPAI["knob"]

    @model_validator(mode="after")
    def _sizes_ordered(self) -> Senpai:
        if self.min_size > self.max_size:
            raise PydanticCustomError("bounds", f"min_size={self.min_size} <= max_size={self.max_size}")
        return self


class Tenant(Section):
    """``replicas`` processes of one service, each in its own memcg leaf ``<cgroup>/<name>-<i>``.

    ``placement`` is ``spread`` (round-robin over all nodes), ``pack`` (fill a node before the next) or a
    mapping node group name -> replica count.
    """

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}
    BOUNDS: ClassVar[dict[str, Bounds]] = {"replicas": Bounds(1, None)}
    PLACEMENTS: ClassVar[tuple[str, ...]] = ("spread", "pack")
    name: SafeName = "tenant0"
    replicas: int = 1
    placement: str | dict[str, int] = "spread"
    cgroup: CgroupPath = "workload.slice"
    limits: Memcg = Field(default_factory=Memcg)
    allocator: Allocator = Field(default_factory=Tcmalloc)
    workload: Workload = Field(default_factory=Workload)
    senpai: Senpai | None = None

    @field_validator("placement", mode="before")
    @classmethod
    def _placement_type(cls, value: Any) -> Any:
        if not isinstance(value, str | dict):
            raise PydanticCustomError("choice", "spread, pack, or a mapping node group -> replica count")
        return value

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str | dict[str, int]) -> str | dict[str, int]:
        if isinstance(value, str) and value not in cls.PLACEMENTS:
            raise PydanticCustomError("choice", "spread, pack, or a mapping node group -> replica count")
        if isinstance(value, dict) and any(count < 0 for count in value.values()):
            raise PydanticCustomError("bounds", "replica counts >= 0")
        return value


class RunConfig(Section):
    """One simulated run: the fleet (node groups), its kernel, tenants, duration, tick and seed.

    Node groups inherit the top-level ``kernel`` block and override parts of it; the resolved config holds
    each group's full effective kernel, so a reader never needs to merge.
    """

    BOUNDS: ClassVar[dict[str, Bounds]] = {"seed": Bounds(0, SEED_MAX), "duration": Bounds(0.0, None, lo_open=True),
                                           "tick": Bounds(0.0, None, lo_open=True),
                                           "sample_interval": Bounds(0.0, None, lo_open=True)}
    name: str = "run"
    seed: int = 0
    duration: Duration = 600.0
    tick: Duration = 1.0
    sample_interval: Duration | None = None
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    nodes: list[NodeGroup] = Field(default_factory=lambda: [NodeGroup()], min_length=1)
    tenants: list[Tenant] = Field(default_factory=list)

    def group(self, name: str) -> NodeGroup:
        return next(g for g in self.nodes if g.name == name)
