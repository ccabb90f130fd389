"""Node tunables with Linux names: /sys/kernel/mm/transparent_hugepage, /proc/sys/vm, the swap device.

Each tunable is declared once, in the tables below (``THP_TUNABLES``, ``VM_TUNABLES``, ``SWAP_TUNABLES``):
its default, its allowed values or inclusive bounds, and where they come from. The settings classes take
their defaults from the tables and check their values against them when built, naming the key, the value
and what is allowed; the run-file schema reads the same tables. The node's memory size has its own check,
``check_node_memory``: a whole number of pageblocks, and enough of them for the watermarks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..units import HPAGE_PAGES, PAGE_SIZE, format_size
from .errors import KernelError, duration_arg, size_arg

THP_ENABLED = ("always", "madvise", "never")
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")
SWAP_KINDS = ("none", "disk", "zram", "zswap")
DISK_DEVICES = ("nvme", "hdd")

# Node memory is handed out in pageblocks (pageblock_order = HPAGE_PMD_ORDER on x86-64: 2 MiB), and the
# model needs 64 of them so that the min/low/high watermarks and the kernel's own share leave room to run.
PAGEBLOCK_BYTES = HPAGE_PAGES * PAGE_SIZE
NODE_MEMORY_MIN_BYTES = 64 * PAGEBLOCK_BYTES
NODE_MEMORY_ALLOWED = f"a multiple of {PAGEBLOCK_BYTES >> 20}M and at least {NODE_MEMORY_MIN_BYTES >> 20}M"


@dataclass(frozen=True)
class Tunable:
    """One knob: its default and what it may be, with the source of both.

    ``kind`` is ``choice`` (one of ``choices``), ``int`` or ``float`` (within ``lo``..``hi``, inclusive;
    ``lo_open`` excludes ``lo``), ``duration`` (seconds or '10s', within the bounds), ``size`` (bytes or
    '4G') or ``bool``. A default of None means "unset" (the kernel computes the value) and is always allowed.
    """

    default: Any
    kind: str
    source: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def allowed(self) -> str:
        """What is accepted, in words: ``one of (...)``, ``an integer in [0, 511]``, ``a duration > 0``."""
        if self.kind == "choice":
            return f"one of {self.choices}"
        if self.kind == "bool":
            return "true or false"
        noun = {"int": "an integer", "float": "a number", "duration": "a duration", "size": "a size"}[self.kind]
        if self.kind == "size" and self.hi is None:
            return f"a size of at least {format_size(self.lo or 0)}"
        if self.lo is not None and self.hi is not None:
            return f"{noun} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{noun} {'>' if self.lo_open else '>='} {self.lo:g}"
        return noun if self.hi is None else f"{noun} <= {self.hi:g}"

    def check(self, key: str, value: Any) -> Any:
        """``value`` parsed (durations, sizes) and checked; EINVAL names the key, the value and the bound."""
        if value is None and self.default is None:
            return None
        if self.kind == "choice":
            ok = value in self.choices
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        else:
            number = self._number(key, value)
            ok = number is not None and self._within(number)
            value = value if number is None else number   # a non-number is reported as given
        if not ok:
            raise _reject(key, value, self.allowed())
        return value

    def _number(self, key: str, value: Any) -> Any:
        if self.kind == "duration":
            return duration_arg(key, value)
        if self.kind == "size":
            return size_arg(key, value)
        types = int if self.kind == "int" else int | float
        return value if isinstance(value, types) and not isinstance(value, bool) else None

    def _within(self, value: float) -> bool:
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return self.hi is None or value <= self.hi


THP_TUNABLES: dict[str, Tunable] = {
    "enabled": Tunable("madvise", "choice", "transhuge.rst; madvise is the distributions' default",
                       choices=THP_ENABLED),
    "defrag": Tunable("madvise", "choice", "transhuge.rst: the kernel's default", choices=THP_DEFRAG),
    "max_ptes_none": Tunable(511, "int", "khugepaged default HPAGE_PMD_NR - 1; at most 511 PTEs of 512",
                             lo=0, hi=511),
    "max_ptes_swap": Tunable(64, "int", "khugepaged default HPAGE_PMD_NR / 8", lo=0, hi=511),
    "pages_to_scan": Tunable(4096, "int", "khugepaged default HPAGE_PMD_NR * 8", lo=1, hi=1 << 30),
    "scan_sleep": Tunable(10.0, "duration", "scan_sleep_millisecs default 10000; 0 would spin",
                          lo=0, lo_open=True),
    "alloc_sleep": Tunable(60.0, "duration", "alloc_sleep_millisecs default 60000; 0 would spin",
                           lo=0, lo_open=True),
    "shrink_underused": Tunable(True, "bool", "on since 6.12 (thp_underused_split_page)"),
}

VM_TUNABLES: dict[str, Tunable] = {
    "swappiness": Tunable(60, "int", "sysctl/vm.rst: default 60, range 0-200", lo=0, hi=200),
    "watermark_scale_factor": Tunable(10, "int", "sysctl/vm.rst: default 10 (0.1%), range 1-3000",
                                      lo=1, hi=3000),
    "min_free_kbytes": Tunable(None, "int", "None: the kernel's sqrt(lowmem * 16) formula; a set value at "
                               "least that formula's own floor of 128 (calculate_min_free_kbytes)",
                               lo=128, hi=1 << 40),
    "kernel_share": Tunable(0.02, "float", "memory the kernel holds at boot (page tables, slab); under half "
                            "so that user memory is always the larger part", lo=0, hi=0.49),
    "compaction_proactiveness": Tunable(20, "int", "sysctl/vm.rst: default 20, range 0-100", lo=0, hi=100),
}

SWAP_TUNABLES: dict[str, Tunable] = {
    "kind": Tunable("none", "choice", "no swap unless configured", choices=SWAP_KINDS),
    "size": Tunable(0, "size", "bytes of swap space; a device needs at least one 4K page", lo=PAGE_SIZE),
    "device": Tunable("nvme", "choice", "the disk behind disk swap and zswap's writeback",
                      choices=DISK_DEVICES),
    "compression_ratio": Tunable(3.0, "float", "zram/zswap: lz4 and zstd give 2-4x on anonymous memory; "
                                 "the model caps it at 20x, far beyond measured ratios", lo=1.0, hi=20.0),
    "max_pool_percent": Tunable(20, "int", "zswap.max_pool_percent default 20, a percent of RAM",
                                lo=1, hi=100),
}


def _reject(key: str, value: object, allowed: str) -> KernelError:
    return KernelError("EINVAL", f"{key}={value!r} is not allowed; {allowed}")


def _build(section: str, table: dict[str, Tunable], given: dict | None) -> dict[str, Any]:
    """The checked values of ``table``'s keys: ``given`` over the defaults; unknown keys are EINVAL."""
    if given is not None and not isinstance(given, dict):
        raise _reject(section, given, f"a mapping of {section} settings: {', '.join(sorted(table))}")
    given = dict(given or {})
    for key in given:
        if key not in table:
            raise _reject(f"{section}.{key}", given[key], f"known keys: {', '.join(sorted(table))}")
    return {key: t.check(f"{section}.{key}", given.get(key, t.default)) for key, t in table.items()}


def check_node_memory(memory: object) -> int:
    """Node memory in bytes; EINVAL unless it is a whole number of pageblocks and at least the minimum."""
    total = size_arg("memory", memory)
    if total < NODE_MEMORY_MIN_BYTES or total % PAGEBLOCK_BYTES:
        raise KernelError("EINVAL", f"memory={memory!r} must be {NODE_MEMORY_ALLOWED}")
    return total


@dataclass(frozen=True)
class THPSettings:
    """transparent_hugepage/ and khugepaged/ knobs (transhuge.rst); defaults from ``THP_TUNABLES``."""

    enabled: str = THP_TUNABLES["enabled"].default
    defrag: str = THP_TUNABLES["defrag"].default
    max_ptes_none: int = THP_TUNABLES["max_ptes_none"].default
    max_ptes_swap: int = THP_TUNABLES["max_ptes_swap"].default
    pages_to_scan: int = THP_TUNABLES["pages_to_scan"].default
    scan_sleep: float = THP_TUNABLES["scan_sleep"].default
    alloc_sleep: float = THP_TUNABLES["alloc_sleep"].default
    shrink_underused: bool = THP_TUNABLES["shrink_underused"].default

    @classmethod
    def build(cls, given: dict | None) -> THPSettings:
        """Validated settings from a mapping of overrides (durations accept '10s', '10ms')."""
        return cls(**_build("thp", THP_TUNABLES, given))


@dataclass(frozen=True)
class VMSettings:
    """/proc/sys/vm knobs (Documentation/admin-guide/sysctl/vm.rst); defaults from ``VM_TUNABLES``."""

    swappiness: int = VM_TUNABLES["swappiness"].default
    watermark_scale_factor: int = VM_TUNABLES["watermark_scale_factor"].default
    min_free_kbytes: int | None = VM_TUNABLES["min_free_kbytes"].default
    kernel_share: float = VM_TUNABLES["kernel_share"].default
    compaction_proactiveness: int = VM_TUNABLES["compaction_proactiveness"].default

    @classmethod
    def build(cls, given: dict | None) -> VMSettings:
        """Validated settings from a mapping of overrides."""
        return cls(**_build("vm", VM_TUNABLES, given))


@dataclass(frozen=True)
class SwapSettings:
    """The node's swap: none, a disk (nvme/hdd), zram (compressed RAM) or zswap (compressed pool + disk)."""

    kind: str = SWAP_TUNABLES["kind"].default
    size: int = SWAP_TUNABLES["size"].default
    device: str = SWAP_TUNABLES["device"].default
    compression_ratio: float = SWAP_TUNABLES["compression_ratio"].default
    max_pool_percent: int = SWAP_TUNABLES["max_pool_percent"].default

    @classmethod
    def build(cls, given: dict | None) -> SwapSettings:
        """Validated settings; the size bound applies to a device, so kind none takes any size (default 0)."""
        if given is not None and not isinstance(given, dict):
            return cls(**_build("swap", SWAP_TUNABLES, given))   # raises: not a mapping
        given = dict(given or {})
        device = given.get("kind", SWAP_TUNABLES["kind"].default) != "none"
        return cls(**_build("swap", SWAP_TUNABLES if device else _NO_DEVICE_TUNABLES, given))


# Kind none: no device, so its size is not bounded below.
_NO_DEVICE_TUNABLES = {**SWAP_TUNABLES, "size": Tunable(0, "size", "no swap device", lo=0)}

for _cls, _table in ((THPSettings, THP_TUNABLES), (VMSettings, VM_TUNABLES), (SwapSettings, SWAP_TUNABLES)):
    assert [f.name for f in fields(_cls)] == list(_table), f"{_cls.__name__} fields differ from its table"
