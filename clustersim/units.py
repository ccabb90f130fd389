"""Sizes, durations and rates as the kernel and our configs write them.

Sizes take binary suffixes the way the kernel's memparse() reads them (``4K``, ``200M``, ``1.5G``) plus the
IEC spellings (``64GiB``, ``4KiB``) and ``B``; durations take ``ms``, ``s``, ``m``, ``h``; rates are a size
per second (``10MiB/s``). A bare number is bytes (sizes) or seconds (durations).
"""

from __future__ import annotations

import math
import re

PAGE_SIZE = 4096
HPAGE_PAGES = 512
HPAGE_SIZE = PAGE_SIZE * HPAGE_PAGES

_SIZE_SUFFIX = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_TIME_SUFFIX = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
_SIZE_RE = re.compile(rf"^\s*{_NUMBER}\s*([a-zA-Z]*)\s*$")


class UnitError(ValueError):
    """A size, duration or rate that cannot be read; the message says what is allowed."""


def parse_size(value: int | float | str, what: str = "size") -> int:
    """Bytes from ``4K``/``200M``/``64GiB``/a bare number of bytes; rejects negatives and fractions of a byte."""
    if isinstance(value, bool):
        raise UnitError(f"{what}: {value!r} is not a size; use bytes or a string like '4K', '200M', '64GiB'")
    if isinstance(value, int | float):
        number, mult = float(value), 1
    else:
        m = _SIZE_RE.match(str(value))
        if not m or m.group(2).lower() not in _SIZE_SUFFIX:
            raise UnitError(f"{what}: {value!r} is not a size; use bytes or a string like '4K', '200M', '64GiB'")
        number, mult = float(m.group(1)), _SIZE_SUFFIX[m.group(2).lower()]
    nbytes = number * mult
    if not math.isfinite(nbytes) or nbytes < 0:
        raise UnitError(f"{what}: {value!r} must be a finite size >= 0")
    if nbytes != int(nbytes):
        raise UnitError(f"{what}: {value!r} is not a whole number of bytes")
    return int(nbytes)


def parse_duration(value: int | float | str, what: str = "duration") -> float:
    """Seconds from ``250ms``/``10s``/``5m``/``1h``/a bare number of seconds; rejects negatives."""
    if isinstance(value, bool):
        raise UnitError(f"{what}: {value!r} is not a duration; use seconds or '250ms', '10s', '5m', '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _SIZE_RE.match(str(value))
        if not m or m.group(2).lower() not in _TIME_SUFFIX:
            raise UnitError(f"{what}: {value!r} is not a duration; use seconds or '250ms', '10s', '5m', '1h'")
        seconds = float(m.group(1)) * _TIME_SUFFIX[m.group(2).lower()]
    if not math.isfinite(seconds) or seconds < 0:
        raise UnitError(f"{what}: {value!r} must be a finite duration >= 0")
    return seconds


def parse_rate(value: int | float | str, what: str = "rate") -> float:
    """Bytes per second from ``10MiB/s``, ``1G/s`` or a bare number of bytes per second."""
    if isinstance(value, str) and "/" in value:
        size, _, per = value.partition("/")
        if per.strip().lower() not in ("s", "sec"):
            raise UnitError(f"{what}: {value!r} must be a size per second, like '10MiB/s'")
        return float(parse_size(size, what))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise UnitError(f"{what}: {value!r} must be a finite rate >= 0 (bytes per second)")
        return float(value)
    raise UnitError(f"{what}: {value!r} is not a rate; use bytes per second or a string like '10MiB/s'")


def pages(nbytes: int) -> int:
    """Whole 4 KiB pages covering ``nbytes`` (rounded up)."""
    return -(-int(nbytes) // PAGE_SIZE)


def format_size(nbytes: float) -> str:
    """Bytes as the shortest binary-suffixed string (``16G``, ``1.5G``, ``512M``, ``4K``); plain below 1K."""
    for suffix, mult in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if abs(nbytes) >= mult:
            return f"{nbytes / mult:.4g}{suffix}"
    return f"{nbytes:g}"
