"""Mappings: VMAs as runs of page-table rows, and mmap/munmap/page-cache regions over the node's state.

A `Region` is one `struct vm_area_struct` (include/linux/mm_types.h): ``nvhp`` contiguous rows of the node's
page table, one per 2 MiB of the mapping. `map_region` and `unmap_region` are the parts of mm/mmap.c (mmap_region,
do_vmi_munmap) that give rows to a mapping and take them back; unmapping frees what the rows held as
unmap_vmas() and free_pgtables() do (mm/memory.c). `file_region` is a file's page cache, a mapping-less region
(mm/filemap.c). `RangeBatch` is the argument of the batch syscalls: byte ranges over several mappings.
Left out: VMA merging and splitting (a partial munmap), mremap, shared and file-backed mappings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from .khugepaged import khugepaged_exit, khugepaged_register
from .memcg import Memcg
from .memory import charging, free_folios, free_page_tables, unmap_pages
from .mm import MM, Task
from .pagetable import NONE


@dataclass(eq=False)
class Region:
    """One anonymous (or page-cache) mapping: ``nvhp`` contiguous rows of the node's page table."""

    id: int
    proc: Task | None
    start_row: int
    nvhp: int
    npages: int
    kind: str = "anon"
    name: str = ""
    mapped: bool = True

    @property
    def length(self) -> int:
        return self.npages * PAGE_SIZE

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.start_row, self.start_row + self.nvhp)

    def flat(self, first_page: np.ndarray, npages: np.ndarray) -> np.ndarray:
        """Flat page-table indices of page ranges given as first page and count within the region."""
        total = int(npages.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        base = self.start_row * HPAGE_PAGES + first_page.astype(np.int64)
        starts = np.repeat(base - np.concatenate([[0], np.cumsum(npages)[:-1]]), npages)
        return starts + np.arange(total, dtype=np.int64)


@dataclass(slots=True)
class RangeBatch:
    """Byte ranges over several mappings, grouped by mapping: ``counts[i]`` consecutive (offset, length)
    pairs belong to ``regions[i]``. What the (region, offsets, lengths) triples of a batch call say, in one
    pair of arrays: a caller that already holds its ranges that way (an allocator splitting its page ranges
    by VMA) hands them over without cutting them into per-mapping arrays first."""

    regions: list[Region]
    offsets: np.ndarray
    lengths: np.ndarray
    counts: list[int]

    def __iter__(self):
        """The (region, offsets, lengths) triples."""
        end = 0
        for region, k in zip(self.regions, self.counts, strict=True):
            yield region, self.offsets[end:end + k], self.lengths[end:end + k]
            end += k

    def __len__(self) -> int:
        return len(self.regions)


def map_region(mm: MM, proc: Task | None, npages: int, kind: str = "anon", memcg: Memcg | None = None
               ) -> Region:
    """A new mapping of ``npages`` pages: fresh page-table rows, owned by ``proc`` (None for page cache)."""
    nvhp = -(-npages // HPAGE_PAGES)
    start = mm.pt.alloc_rows(nvhp)
    rid = mm.next_region_id
    mm.next_region_id += 1
    region = Region(rid, proc, start, nvhp, npages, kind)
    rows = region.rows
    mm.pt.region[rows] = rid
    mm.pt.memcg[rows] = (memcg or proc.memcg).idx
    mm.pt.full[rows] = True
    if npages % HPAGE_PAGES:   # the last vhp ends inside the VMA: never PMD-mapped
        mm.pt.full[rows[-1]] = False
    mm.regions[rid] = region
    if proc is not None:
        proc.regions.append(region)
        if mm.thp.enabled == "always":
            khugepaged_register(mm, region)
    return region


def unmap_region(mm: MM, region: Region) -> None:
    """Free everything the region held and give its rows back."""
    unmap_all_rows(mm, region)
    mm.pt.free_rows(region.start_row, region.nvhp)
    region.mapped = False
    khugepaged_exit(mm, region)
    del mm.regions[region.id]


def file_region(mm: MM, name: str, npages: int, memcg: Memcg) -> Region:
    """The page-cache region of file ``name``, grown to ``npages`` if needed."""
    region = mm.files.get(name)
    if region is not None and region.npages >= npages:
        return region
    if region is not None:   # grow: a new, larger region; the cached pages are dropped and re-read
        unmap_region(mm, region)
    region = map_region(mm, None, npages, "file", memcg)
    region.ever_read = False
    mm.pt.full[region.rows] = False
    mm.files[name] = region
    return region


def unmap_all_rows(mm: MM, region: Region) -> None:
    """Free everything the region's rows hold (shared by munmap, exit and file eviction)."""
    rows = region.rows
    pt = mm.pt
    flat = pt.pages_of(rows)
    busy = flat[pt.flat_state[flat] != NONE]
    with charging(mm, rows):
        unmap_pages(mm, busy)
        free_folios(mm, rows[pt.folio[rows] >= 0])
        free_page_tables(mm, rows)


__all__ = ["RangeBatch", "Region", "file_region", "map_region", "unmap_all_rows", "unmap_region"]
