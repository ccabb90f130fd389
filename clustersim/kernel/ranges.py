"""Byte ranges of syscall arguments: checked against their mapping and turned into flat page indices.

A range is an offset and a length in bytes inside one mapping. As in madvise(2) and the other mm syscalls,
a range outside the mapping is ENOMEM, a negative offset or length EINVAL, and an unaligned offset EINVAL
where the call needs page alignment; lengths round up to whole pages. A dead task is ESRCH before any
question about its mappings. The batch calls (touch_batch, madvise_batch, access_batch) check all the
ranges of a batch in one compiled pass and fall back to the per-mapping checks only to raise the error the
first bad range gets.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES, PAGE_SIZE
from .errors import KernelError, size_arg
from .mm import Task
from .pagetable import expand_ranges
from .vma import RangeBatch, Region

_INT64 = np.dtype(np.int64)
_NO_RANGES = np.empty(0, dtype=np.int64)


def check_alive(task: Task) -> None:
    """ESRCH if the task has exited or was killed."""
    if not task.alive:
        raise KernelError("ESRCH", f"process {task.name!r} (pid {task.pid}) has exited or was killed")


def check_own(task: Task, region: Region) -> None:
    """ESRCH for a dead task, else EINVAL unless ``region`` is a live mapping of the task."""
    check_alive(task)   # a dead task has no mm: ESRCH before any question about its mappings
    if region.proc is not task or not region.mapped:
        raise KernelError("EINVAL", "region is not a live mapping of this process")


def pages(task: Task, region: Region, offset: int | str, length: int | str | None, *, aligned: bool
          ) -> tuple[np.ndarray, np.ndarray]:
    """First page (within the region) and page count of one range; ``length`` None runs to the end."""
    off = size_arg("offset", offset)
    ln = region.length - off if length is None else size_arg("length", length)
    return pages_many(task, region, np.array([off]), np.array([ln]), aligned=aligned)


def pages_many(task: Task, region: Region, offsets, lengths, *, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
    """First page (within the region) and page count of each range, every range checked."""
    check_own(task, region)
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    ln = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if off.shape != ln.shape:
        raise KernelError("EINVAL", f"{len(off)} offsets but {len(ln)} lengths")
    if (off < 0).any() or (ln < 0).any():
        raise KernelError("EINVAL", "offsets and lengths must be >= 0")
    if aligned and (off % PAGE_SIZE).any():
        bad = int(off[off % PAGE_SIZE != 0][0])
        raise KernelError("EINVAL", f"offset {bad} is not aligned to the 4096-byte page size")
    if (off + ln > region.length).any():
        bad = int(np.flatnonzero(off + ln > region.length)[0])
        raise KernelError("ENOMEM", f"range [{off[bad]}, {off[bad] + ln[bad]}) lies outside the "
                                    f"{region.length}-byte mapping")
    first = off // PAGE_SIZE
    last = -(-(off + ln) // PAGE_SIZE)
    return first, np.maximum(last - first, 0)


def batch_flat(task: Task, batch, *, aligned: bool = False) -> np.ndarray:
    """Sorted distinct flat pages of (region, offsets, lengths) triples, each range checked."""
    return expand_ranges(*batch_pages(task, batch, aligned=aligned))


def batch_pages(task: Task, batch, *, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
    """First flat page and page count of every range of (region, offsets, lengths) triples.

    The ranges of all mappings are checked in one compiled pass: a batch is a few dozen ranges over a
    handful of VMAs, where per-VMA numpy calls would cost more than the work. Any bad range sends the
    batch through the per-mapping checks instead, so the error raised is the one the first bad range in
    batch order gets, exactly as when each mapping was checked in turn.
    """
    if type(batch) is RangeBatch:
        got = _range_batch_pages(task, batch, aligned)
        if got is not None:
            return got
    batch = list(batch)   # read twice when a range is bad
    got = _range_batch_pages(task, _sorted_batch(task, batch, aligned), aligned)
    if got is None:
        _raise_first_error(task, batch, aligned)
    return got


def _sorted_batch(task: Task, batch: list, aligned: bool) -> RangeBatch:
    """(region, offsets, lengths) triples as a RangeBatch in address order (so the pages come out sorted);
    offsets or lengths that are not matching int64 arrays raise the first error of the batch."""
    regions, offs, lens = [], [], []
    for region, off, ln in sorted(batch, key=_start_row):
        try:
            off, ln = _int64(off), _int64(ln)
        except (TypeError, ValueError):
            _raise_first_error(task, batch, aligned)
        if off.shape != ln.shape:
            _raise_first_error(task, batch, aligned)
        regions.append(region)
        offs.append(off)
        lens.append(ln)
    if len(offs) == 1:
        return RangeBatch(regions, offs[0], lens[0], [len(offs[0])])
    return RangeBatch(regions, np.concatenate(offs or [_NO_RANGES]), np.concatenate(lens or [_NO_RANGES]),
                      [len(o) for o in offs])


def _range_batch_pages(task: Task, batch: RangeBatch, aligned: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """batch_pages() of a RangeBatch whose mappings are live, the task's and in address order; None
    when they are not or a range is bad (the caller then sorts, or raises the first range's error)."""
    off, ln = batch.offsets, batch.lengths
    if not (off.dtype == _INT64 == ln.dtype and off.ndim == 1 and off.shape == ln.shape
            and sum(batch.counts) == len(off)):
        return None
    bounds, last = [], -1
    for r, k in zip(batch.regions, batch.counts, strict=True):
        if r.proc is not task or not r.mapped or r.start_row < last:
            return None
        last = r.start_row
        bounds += (last * HPAGE_PAGES, r.length, k)
    check_alive(task)
    first, n, ok = _batch_ranges(off, ln, np.array(bounds, dtype=np.int64).reshape(-1, 3), aligned)
    return (first, n) if ok else None


def _raise_first_error(task: Task, batch, aligned: bool):
    """Check each mapping's ranges in turn, as separate calls would: raises the first range's error."""
    for region, off, ln in batch:
        pages_many(task, region, off, ln, aligned=aligned)
    raise AssertionError("a range failed the batch check but passed the per-mapping one")


@njit
def _batch_ranges(off, ln, bounds, aligned):
    """First flat page and page count of each byte range, its mapping given per run of ranges by
    ``bounds`` rows (first row * 512, mapping length, ranges); ok is False if any range is bad."""
    first = np.empty(off.shape[0], dtype=np.int64)
    count = np.empty(off.shape[0], dtype=np.int64)
    ok, i = True, 0
    for m in range(bounds.shape[0]):
        base, limit = bounds[m, 0], bounds[m, 1]
        for _ in range(bounds[m, 2]):
            o, n = off[i], ln[i]
            end = o + n
            if o < 0 or n < 0 or end > limit or (aligned and o % PAGE_SIZE != 0):
                ok = False
            f = o // PAGE_SIZE
            first[i] = base + f
            count[i] = (end + (PAGE_SIZE - 1)) // PAGE_SIZE - f
            i += 1
    return first, count, ok


def _start_row(triple) -> int:
    return triple[0].start_row


def _int64(values) -> np.ndarray:
    """A 1-d int64 array of ``values`` (no copy when it already is one)."""
    # dtype ==, not is: arrays made by compiled code carry an equal but distinct dtype object
    if type(values) is np.ndarray and values.dtype == _INT64 and values.ndim == 1:
        return values
    return np.asarray(values, dtype=np.int64).reshape(-1)


__all__ = ["batch_flat", "batch_pages", "check_alive", "check_own", "pages", "pages_many"]
