"""Node tunables with Linux names: /sys/kernel/mm/transparent_hugepage, /proc/sys/vm, the swap device.

Each settings class checks its values when built and names the key, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import KernelError, duration_arg, size_arg

THP_ENABLED = ("always", "madvise", "never")
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")
SWAP_KINDS = ("none", "disk", "zram", "zswap")
DISK_DEVICES = ("nvme", "hdd")


def _reject(key: str, value: object, allowed: str) -> KernelError:
    return KernelError("EINVAL", f"{key}={value!r} is not allowed; {allowed}")


def _known(section: str, given: dict, cls: type) -> None:
    names = {f.name for f in fields(cls)}
    for key in given:
        if key not in names:
            raise _reject(f"{section}.{key}", given[key], f"known keys: {', '.join(sorted(names))}")


def _int_in(key: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _reject(key, value, f"an integer in [{lo}, {hi}]")
    return value


@dataclass(frozen=True)
class THPSettings:
    """transparent_hugepage/ and khugepaged/ knobs; defaults are the kernel's (transhuge.rst)."""

    enabled: str = "madvise"
    defrag: str = "madvise"
    max_ptes_none: int = 511
    max_ptes_swap: int = 64
    pages_to_scan: int = 4096
    scan_sleep: float = 10.0
    alloc_sleep: float = 60.0
    shrink_underused: bool = True

    @classmethod
    def build(cls, given: dict | None) -> THPSettings:
        """Validated settings from a mapping of overrides (durations accept '10s', '10ms')."""
        given = dict(given or {})
        _known("thp", given, cls)
        s = {**{f.name: f.default for f in fields(cls)}, **given}
        if s["enabled"] not in THP_ENABLED:
            raise _reject("thp.enabled", s["enabled"], f"one of {THP_ENABLED}")
        if s["defrag"] not in THP_DEFRAG:
            raise _reject("thp.defrag", s["defrag"], f"one of {THP_DEFRAG}")
        s["max_ptes_none"] = _int_in("thp.max_ptes_none", s["max_ptes_none"], 0, 511)
        s["max_ptes_swap"] = _int_in("thp.max_ptes_swap", s["max_ptes_swap"], 0, 511)
        s["pages_to_scan"] = _int_in("thp.pages_to_scan", s["pages_to_scan"], 1, 1 << 30)
        s["scan_sleep"] = duration_arg("thp.scan_sleep", s["scan_sleep"])
        s["alloc_sleep"] = duration_arg("thp.alloc_sleep", s["alloc_sleep"])
        if s["scan_sleep"] <= 0 or s["alloc_sleep"] <= 0:
            raise _reject("thp.scan_sleep/alloc_sleep", (s["scan_sleep"], s["alloc_sleep"]), "durations > 0")
        if not isinstance(s["shrink_underused"], bool):
            raise _reject("thp.shrink_underused", s["shrink_underused"], "true or false")
        return cls(**s)


@dataclass(frozen=True)
class VMSettings:
    """/proc/sys/vm knobs (Documentation/admin-guide/sysctl/vm.rst). min_free_kbytes None = kernel formula."""

    swappiness: int = 60
    watermark_scale_factor: int = 10
    min_free_kbytes: int | None = None
    kernel_share: float = 0.02
    compaction_proactiveness: int = 20

    @classmethod
    def build(cls, given: dict | None) -> VMSettings:
        """Validated settings from a mapping of overrides."""
        given = dict(given or {})
        _known("vm", given, cls)
        s = {**{f.name: f.default for f in fields(cls)}, **given}
        s["swappiness"] = _int_in("vm.swappiness", s["swappiness"], 0, 200)
        s["watermark_scale_factor"] = _int_in("vm.watermark_scale_factor", s["watermark_scale_factor"], 1, 3000)
        if s["min_free_kbytes"] is not None:
            s["min_free_kbytes"] = _int_in("vm.min_free_kbytes", s["min_free_kbytes"], 128, 1 << 40)
        share = s["kernel_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 0.5:
            raise _reject("vm.kernel_share", share, "a share of memory in [0, 0.5)")
        s["compaction_proactiveness"] = _int_in("vm.compaction_proactiveness", s["compaction_proactiveness"],
                                                0, 100)
        return cls(**s)


@dataclass(frozen=True)
class SwapSettings:
    """The node's swap: none, a disk (nvme/hdd), zram (compressed RAM) or zswap (compressed pool + disk)."""

    kind: str = "none"
    size: int = 0
    device: str = "nvme"
    compression_ratio: float = 3.0
    max_pool_percent: int = 20

    @classmethod
    def build(cls, given: dict | None) -> SwapSettings:
        """Validated settings; a swap of kind other than none needs a size > 0."""
        given = dict(given or {})
        _known("swap", given, cls)
        s = {**{f.name: f.default for f in fields(cls)}, **given}
        if s["kind"] not in SWAP_KINDS:
            raise _reject("swap.kind", s["kind"], f"one of {SWAP_KINDS}")
        s["size"] = size_arg("swap.size", s["size"])
        if s["kind"] != "none" and s["size"] < 4096:
            raise _reject("swap.size", s["size"], f"a size of at least 4K for swap kind {s['kind']!r}")
        if s["device"] not in DISK_DEVICES:
            raise _reject("swap.device", s["device"], f"one of {DISK_DEVICES}")
        ratio = s["compression_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 1.0 <= ratio <= 20.0:
            raise _reject("swap.compression_ratio", ratio, "a number in [1, 20]")
        s["max_pool_percent"] = _int_in("swap.max_pool_percent", s["max_pool_percent"], 1, 100)
        return cls(**s)
