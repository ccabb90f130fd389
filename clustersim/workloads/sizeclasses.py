"""tcmalloc-style size classes: which class a small request falls in and how long that class's spans are.

Follows the rule tcmalloc has used to generate its tables since gperftools (`SizeMap::Init`): class sizes
step by 1/8 of the size's power of two (so rounding wastes at most 12.5% per object), and a span is the
smallest multiple of an 8 KiB tcmalloc page whose tail (span mod class size) is at most 1/8 of the span;
adjacent sizes with the same pages and object count merge into one class. Requests above kMaxSize
(256 KiB) get a span of their own, rounded up to 8 KiB.

Left out: the 16-byte minimum alignment details, per-CPU/transfer caches, sampling, and the hand-tuned
tables newer tcmalloc ships (`kLegacySizeClasses`, 86 classes for 8 KiB pages). gperftools also demanded a
quarter transfer batch of objects per span; the newer tables do not (4 KiB and 8 KiB objects get one-page
spans), so neither do we. The result has 85 classes with class sizes and span lengths close to the legacy
table (one-page spans up to about 1.5 KiB, 1-32 pages above), which is all a span-level model needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

TCMALLOC_PAGE_BYTES = 8192      # tcmalloc's default page (kPageShift 13)
MAX_SMALL_BYTES = 256 * 1024    # kMaxSize: larger requests bypass size classes
_ALIGN_BYTES = 8                # kAlignment
_MIN_ALIGN_BYTES = 16           # kMinAlign for sizes >= 16
_TAIL_WASTE_FRACTION = 8        # span tail must be <= span / 8


@dataclass(frozen=True, eq=False)
class SizeClasses:
    """Class sizes and span lengths, ascending; class 0 is the smallest."""

    class_bytes: np.ndarray
    span_bytes: np.ndarray

    @property
    def objects_per_span(self) -> np.ndarray:
        return self.span_bytes // self.class_bytes

    def class_of(self, size_bytes: np.ndarray) -> np.ndarray:
        """Class index for each request size; REQUIRES 0 < size <= MAX_SMALL_BYTES."""
        size_bytes = np.asarray(size_bytes)
        assert np.all((size_bytes > 0) & (size_bytes <= MAX_SMALL_BYTES)), "size outside small classes"
        return np.searchsorted(self.class_bytes, size_bytes, side="left")


def round_up(nbytes: np.ndarray | int, quantum: int) -> np.ndarray:
    """`nbytes` rounded up to a multiple of `quantum`."""
    return -(-np.asarray(nbytes, dtype=np.int64) // quantum) * quantum


@cache
def tcmalloc_size_classes() -> SizeClasses:
    """The generated size-class table for 8 KiB tcmalloc pages (cached; arrays are read-only)."""
    sizes: list[int] = []
    spans: list[int] = []
    size = _ALIGN_BYTES
    while size <= MAX_SMALL_BYTES:
        span = _span_bytes_for(size)
        if sizes and span == spans[-1] and span // size == spans[-1] // sizes[-1]:
            sizes[-1] = size    # same pages and object count: widen the previous class
        else:
            sizes.append(size)
            spans.append(span)
        size += _alignment_for(size)
    table = SizeClasses(np.array(sizes, dtype=np.int64), np.array(spans, dtype=np.int64))
    table.class_bytes.flags.writeable = False
    table.span_bytes.flags.writeable = False
    return table


def _alignment_for(size: int) -> int:
    if size >= 128:
        return min((1 << (size.bit_length() - 1)) // 8, TCMALLOC_PAGE_BYTES)
    return _MIN_ALIGN_BYTES if size >= _MIN_ALIGN_BYTES else _ALIGN_BYTES


def _span_bytes_for(size: int) -> int:
    span = TCMALLOC_PAGE_BYTES * -(-size // TCMALLOC_PAGE_BYTES)
    while span % size > span // _TAIL_WASTE_FRACTION:
        span += TCMALLOC_PAGE_BYTES
    return span
