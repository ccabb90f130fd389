"""The run file's table-checked sections, its unit-bearing field types, and the kernel and node sections.

Every key has a documented default, so a config names only what it changes; unknown keys are errors
(``extra="forbid"``). Sizes, durations and rates accept the strings of ``clustersim.units`` and are stored
resolved, in bytes, seconds and bytes per second. Allowed values live in one table per section (``CHOICES``,
``BOUNDS``), checked by one validator, as scikit-learn's ``_parameter_constraints`` are. For the kernel's
tunables those tables, and the defaults, are read from the kernel's own declarations
(``clustersim.kernel.settings``, ``profiles``, ``costs``), so ``check`` rejects what the kernel would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from clustersim.kernel.costs import COST_NAMES
from clustersim.kernel.errors import KernelError
from clustersim.kernel.profiles import DEFAULT_PROFILE, PROFILES, PROPOSALS, profile_at_least
from clustersim.kernel.settings import (
    NODE_MEMORY_ALLOWED,
    SWAP_TUNABLES,
    THP_TUNABLES,
    VM_TUNABLES,
    check_node_memory,
)
from clustersim.units import UnitError, format_size, parse_duration, parse_rate, parse_size

from .names import check_cgroup_path, check_name

# A swap device the run file names without a size gets this much (the kernel's own default is no swap).
SWAP_DEVICE_SIZE_DEFAULT = 8 << 30

# ---- unit-bearing field types --------------------------------------------------------------------------

def _unit(parse: Any, allowed: str) -> BeforeValidator:
    def convert(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise PydanticCustomError("finite", "a finite " + allowed.removeprefix("a "))
        try:
            return parse(value)
        except (UnitError, TypeError):
            raise PydanticCustomError("unit", allowed) from None
    return BeforeValidator(convert)


def _limit(value: Any) -> Any:
    if value is None or value == "max":
        return None
    try:
        return parse_size(value)
    except (UnitError, TypeError):
        raise PydanticCustomError("unit", "a size like '4G', or 'max' for no limit") from None


_PER = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def _frequency(value: Any) -> float:
    """Events per second from a number or ``'N/s'``, ``'N/m'``, ``'N/h'``."""
    count, per = [*str(value).split("/", 1), "s"][:2] if isinstance(value, str) else (value, "s")
    try:
        rate = float(count) / _PER[per.strip().lower()]
    except (KeyError, ValueError, TypeError):
        raise PydanticCustomError("unit", "a number of events per second, or like '2/h', '1/m'") from None
    if isinstance(value, bool) or not math.isfinite(rate) or rate < 0:
        raise PydanticCustomError("unit", "a finite number of events per second >= 0")
    return rate


_SIZE = _unit(parse_size, "a size >= 0 like '4K', '200M', '64GiB', or bytes")
Size = Annotated[int, _SIZE]
Duration = Annotated[float, _unit(parse_duration, "a duration >= 0 like '250ms', '10s', '5m', or seconds")]
Rate = Annotated[float, _unit(parse_rate, "a rate >= 0 like '10MiB/s', or bytes per second")]
Limit = Annotated[int | None, BeforeValidator(_limit)]
Frequency = Annotated[float, BeforeValidator(_frequency)]


# ---- the table-checked base ----------------------------------------------------------------------------

class Bounds(NamedTuple):
    """Inclusive bounds of a number (None: unbounded on that side); ``lo_open`` excludes ``lo``."""

    lo: float | None
    hi: float | None
    lo_open: bool = False


class Section(BaseModel):
    """A config mapping: unknown keys rejected, allowed values in ``CHOICES`` and ``BOUNDS`` (``Bounds`` or an
    inclusive ``(lo, hi)`` pair)."""

    # strict: a count or seed is an integer, not 1.0 or true; allow_inf_nan: every number is finite
    model_config = ConfigDict(extra="forbid", validate_assignment=False, strict=True, allow_inf_nan=False)
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}
    BOUNDS: ClassVar[dict[str, Bounds]] = {}

    @field_validator("*")
    @classmethod
    def _check_tables(cls, value: Any, info: Any) -> Any:
        name = info.field_name
        if name in cls.CHOICES:
            _check_choice(value, cls.CHOICES[name])
        if name in cls.BOUNDS and value is not None:
            _check_bounds(value, cls.BOUNDS[name], _is_size(cls, name))
        return value


def _is_size(cls: type[BaseModel], name: str) -> bool:
    """True for a field of type Size: its bounds are printed with suffixes (``>= 4K``)."""
    return any(meta is _SIZE for meta in cls.model_fields[name].metadata)


def declared_tables(declared: Mapping[str, Any]) -> tuple[dict[str, tuple[Any, ...]], dict[str, Bounds]]:
    """``CHOICES`` and ``BOUNDS`` of a section from a lower layer's declarations (kernel tunables, allocator
    options): anything with ``choices``, ``lo``, ``hi`` (and optionally ``lo_open``) attributes."""
    choices = {key: d.choices for key, d in declared.items() if d.choices}
    bounds = {key: Bounds(d.lo, d.hi, getattr(d, "lo_open", False)) for key, d in declared.items()
              if d.lo is not None or d.hi is not None}
    return choices, bounds


def _check_choice(value: Any, allowed: tuple[Any, ...]) -> None:
    items = value if isinstance(value, list) else [value]
    if any(item not in allowed for item in items):
        what = "each one of" if isinstance(value, list) else "one of"
        raise PydanticCustomError("choice", f"{what} {', '.join(map(str, allowed))}")


def _check_bounds(value: float, bounds: tuple[float | None, ...], size: bool = False) -> None:
    lo, hi, lo_open = Bounds(*bounds)   # a plain (lo, hi) pair is inclusive at both ends
    show = format_size if size else _plain_number
    below = lo is not None and (value < lo or (lo_open and value == lo))
    if below or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            text = f"in {'(' if lo_open else '['}{show(lo)}, {show(hi)}]"
        elif lo is not None:
            text = f"{'>' if lo_open else '>='} {show(lo)}"
        else:
            text = f"<= {show(hi)}"
        raise PydanticCustomError("bounds", text)


def _plain_number(x: float) -> str:
    """A bound as written: whole numbers in full (33554432, not 3.35544e+07), others as ``%g``; 2^63-1 so."""
    if float(x).is_integer() and x > 1 << 32 and (int(x) + 1).bit_count() == 1:
        return f"2^{int(x).bit_length()}-1"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ---- kernel --------------------------------------------------------------------------------------------

_THP, _VM, _SWAP = THP_TUNABLES, VM_TUNABLES, SWAP_TUNABLES


class ThpConfig(Section):
    """/sys/kernel/mm/transparent_hugepage: policy and khugepaged knobs (Linux defaults)."""

    CHOICES, BOUNDS = declared_tables(_THP)
    enabled: str = _THP["enabled"].default
    defrag: str = _THP["defrag"].default
    max_ptes_none: int = _THP["max_ptes_none"].default
    max_ptes_swap: int = _THP["max_ptes_swap"].default
    pages_to_scan: int = _THP["pages_to_scan"].default
    scan_sleep: Duration = _THP["scan_sleep"].default
    alloc_sleep: Duration = _THP["alloc_sleep"].default
    shrink_underused: bool = _THP["shrink_underused"].default


class VmConfig(Section):
    """/proc/sys/vm knobs; ``min_free_kbytes`` None means the kernel's sqrt(lowmem * 16) formula."""

    CHOICES, BOUNDS = declared_tables(_VM)
    swappiness: int = _VM["swappiness"].default
    watermark_scale_factor: int = _VM["watermark_scale_factor"].default
    min_free_kbytes: int | None = _VM["min_free_kbytes"].default
    kernel_share: float = _VM["kernel_share"].default
    compaction_proactiveness: int = _VM["compaction_proactiveness"].default


def _cost_name(value: str) -> str:
    if value not in COST_NAMES:
        raise PydanticCustomError("choice", f"a cost name of the kernel's table: {', '.join(COST_NAMES)}")
    return value


# Each unknown cost name is its own problem (``kernel.costs.<name>``), so every typo is listed at once.
CostName = Annotated[str, AfterValidator(_cost_name)]
CgroupPath = Annotated[str, AfterValidator(check_cgroup_path)]
SafeName = Annotated[str, AfterValidator(check_name)]


class KernelConfig(Section):
    """A kernel profile (named bundle of semantics), proposal flags over it, and its tunables."""

    CHOICES = {"profile": PROFILES, "proposals": PROPOSALS}
    profile: str = DEFAULT_PROFILE
    proposals: list[str] = Field(default_factory=list)
    thp: ThpConfig = Field(default_factory=ThpConfig)
    vm: VmConfig = Field(default_factory=VmConfig)
    costs: dict[CostName, Duration] = Field(default_factory=dict)

    def profile_at_least(self, profile: str) -> bool:
        return profile_at_least(self.profile, profile)


# ---- memcg and swap ------------------------------------------------------------------------------------

class Memcg(Section):
    """cgroup v2 memory controller files of one cgroup; limits None mean 'max'."""

    min: Size = 0
    low: Size = 0
    high: Limit = None
    max: Limit = None
    swap_max: Limit = None
    zswap_max: Limit = None
    oom_group: bool = False


def _swap_tables(*keys: str) -> tuple[dict[str, tuple[Any, ...]], dict[str, Bounds]]:
    return declared_tables({key: _SWAP[key] for key in keys})


class SwapNone(Section):
    """No swap device: anonymous memory is not reclaimable."""

    kind: Literal["none"] = "none"


class SwapDisk(Section):
    """A swap partition on a disk; latency and bandwidth from the device preset."""

    CHOICES, BOUNDS = _swap_tables("size", "device")
    kind: Literal["disk"] = "disk"
    size: Size = SWAP_DEVICE_SIZE_DEFAULT
    device: str = _SWAP["device"].default


class SwapZram(Section):
    """A compressed RAM block device; compressed pages take node memory."""

    CHOICES, BOUNDS = _swap_tables("size", "compression_ratio")
    kind: Literal["zram"] = "zram"
    size: Size = SWAP_DEVICE_SIZE_DEFAULT
    compression_ratio: float = _SWAP["compression_ratio"].default


class SwapZswap(Section):
    """A compressed pool, capped at a share of RAM, in front of a disk swap device."""

    CHOICES, BOUNDS = _swap_tables("size", "device", "compression_ratio", "max_pool_percent")
    kind: Literal["zswap"] = "zswap"
    size: Size = SWAP_DEVICE_SIZE_DEFAULT
    device: str = _SWAP["device"].default
    compression_ratio: float = _SWAP["compression_ratio"].default
    max_pool_percent: int = _SWAP["max_pool_percent"].default


def kind_of(default: str) -> Any:
    """The discriminator of a union of sections by their ``kind`` key (``default`` when it is absent)."""
    def tag(value: Any) -> str:
        kind = value.get("kind", default) if isinstance(value, Mapping) else getattr(value, "kind", default)
        return str(kind)
    return Discriminator(tag)


Swap = Annotated[
    Annotated[SwapNone, Tag("none")] | Annotated[SwapDisk, Tag("disk")]
    | Annotated[SwapZram, Tag("zram")] | Annotated[SwapZswap, Tag("zswap")],
    kind_of("none"),
]
SWAP_TAGS = frozenset({"none", "disk", "zram", "zswap"})


class Background(Section):
    """A node's own services and its aged start; off by default (no file set, no burn-in).

    The services read ``file_set`` bytes of files in a cycle at ``file_rate``, in a memcg under ``cgroup``;
    before the tenants are placed the node runs ``burn_in`` of that plus ``churn_jobs`` short-lived jobs at a
    time (clustersim/fleet/background.py says what they are), in ticks of ``burn_in_tick``.
    """

    BOUNDS = {"burn_in": Bounds(0, 7 * 86400), "burn_in_tick": Bounds(0.1, 600), "churn_jobs": Bounds(0, 64),
              "churn_size": Bounds(2 << 20, None), "churn_lifetime": Bounds(1, 86400)}
    file_set: Size = 0
    file_rate: Rate = 0.0
    cgroup: CgroupPath = "system.slice"
    burn_in: Duration = 0.0
    burn_in_tick: Duration = 10.0
    churn_jobs: int = 4
    churn_size: Size = 512 << 20
    churn_lifetime: Duration = 600.0
    churn_hugepage: bool = False

    @model_validator(mode="after")
    def _rate_needs_files(self) -> Background:
        if self.file_rate > 0 and self.file_set == 0:
            raise PydanticCustomError("background", "file_rate > 0 needs a file_set > 0 to read")
        return self

    @property
    def enabled(self) -> bool:
        """Anything to run: files to read or a burn-in."""
        return (self.file_set > 0 and self.file_rate > 0) or self.burn_in > 0


class NodeGroup(Section):
    """``count`` identical nodes: memory, swap, a memcg tree (path -> settings) and kernel overrides."""

    BOUNDS = {"count": Bounds(1, None)}
    name: SafeName = "group0"
    count: int = 1
    memory: Size = 16 << 30
    swap: Swap = Field(default_factory=SwapNone)
    cgroups: dict[CgroupPath, Memcg] = Field(default_factory=dict)
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    background: Background = Field(default_factory=Background)

    @field_validator("memory")
    @classmethod
    def _whole_pageblocks(cls, value: int) -> int:
        try:
            return check_node_memory(value)
        except KernelError:
            raise PydanticCustomError("bounds", NODE_MEMORY_ALLOWED) from None
