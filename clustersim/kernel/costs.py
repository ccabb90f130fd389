"""The cost table: seconds per kernel operation, each default with its source.

Calibration (cal) = docs/calibration.md, Linux 6.18 in a KVM guest (medians, warm regime); lit =
docs/literature.md; [E] = an estimate with no measurement yet. In that guest, accessed/dirty-bit updates and
single-page TLB invalidations are trapped by the hypervisor, so they are separate entries
(``ad_bit_update_s``, ``invlpg_s``) that a bare-metal table should lower (tens of ns there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from .errors import KernelError

US = 1e-6


@dataclass(frozen=True)
class Costs:
    """Seconds per operation. Override any field with Node(costs={...})."""

    syscall_s: float = 0.15 * US            # cal: madvise on an unpopulated range, 148 ns
    madvise_base_s: float = 0.72 * US       # cal: 4 KiB DONTNEED 1.12 us = syscall + base + one page
    zap_page_s: float = 0.095 * US          # cal: DONTNEED marginal 95.2 ns/page above 33 pages
    lazyfree_page_s: float = 0.110 * US     # cal: FREE marginal 110 ns/page above 33 pages
    invlpg_s: float = 0.13 * US             # cal: +0.22-0.25 us/page up to 33 pages, minus the page work (VM-trapped)
    tlb_flush_ceiling_pages: int = 33       # Linux tlb_single_page_flush_ceiling; above it one full flush
    full_flush_s: float = 0.2 * US          # cal: a 34-page call (4.3 us) is 2x cheaper than 33 pages (8.6 us)
    zap_thp_s: float = 4.8 * US             # cal: whole-PMD DONTNEED 5.65 us per 2 MiB
    lazyfree_pmd_s: float = 0.45 * US       # cal: whole-PMD FREE 1.3 us per 2 MiB (marks the PMD clean)
    split_pmd_s: float = 8.2 * US           # cal: 4 KiB DONTNEED inside a THP 9.3 us per call
    split_folio_s: float = 112.0 * US       # cal: 4 KiB FREE inside a THP 121.6 us per call (folio split)
    remote_shootdown_s: float = 16.0 * US   # cal: 4 KiB madvise with another thread running, 17.3 vs 1.12 us
    write_page_s: float = 0.035 * US        # cal: writing a resident 4 KiB page, 34-40 ns (the app's own store)
    fault_4k_s: float = 1.34 * US           # cal: warm 4 KiB write fault 1.376 us, less the write itself
    fault_thp_s: float = 238.0 * US         # cal: warm THP write fault 255.8 us per 2 MiB, less 512 writes
    ad_bit_update_s: float = 0.40 * US      # cal: write after FREE 0.41-0.42 us/page (A/D update, VM-trapped)
    zero_page_s: float = 0.43 * US          # cal: user memset 2 MiB 218 us / 512
    collapse_base_s: float = 300.0 * US     # cal: MADV_COLLAPSE of a sparse range 0.31 ms; lit: 233 us at 511 none
    collapse_page_s: float = 0.82 * US      # cal: full range 0.73 ms -> (730-310)/511 us per present page
    swapin_zram_s: float = 1.8 * US         # lit: zram swap-in incl. fault path ~1.8 us/page (LKML)
    swapin_zswap_s: float = 6.0 * US        # lit: Google zswap far-memory access ~6 us (ASPLOS'19)
    swapin_nvme_s: float = 100.0 * US       # lit [E]: NVMe 4K random read 80-120 us
    swapin_hdd_s: float = 7000.0 * US       # lit [E]: HDD 5-10 ms
    swapout_zram_s: float = 3.0 * US        # [E]: lz4 compression of one 4 KiB page
    swapout_nvme_s: float = 2.0 * US        # [E]: 2 GB/s write bandwidth
    swapout_hdd_s: float = 40.0 * US        # [E]: 100 MB/s write bandwidth
    reclaim_page_s: float = 0.3 * US        # [E]: scan, unmap and free one page in shrink_folio_list
    migrate_page_s: float = 1.5 * US        # [E]: compaction: unmap, copy 4 KiB (0.43 us), remap, flush
    split_folio_reclaim_s: float = 50.0 * US  # lit [E]: split_huge_page 10-50 us

    @classmethod
    def build(cls, overrides: dict | None) -> Costs:
        """The default table with overrides applied; an unknown name or a negative value is EINVAL."""
        costs = cls()
        for key, value in (overrides or {}).items():
            if key not in COST_NAMES:
                raise KernelError("EINVAL", f"costs.{key} is unknown; known: {', '.join(sorted(COST_NAMES))}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0:
                raise KernelError("EINVAL", f"costs.{key}={value!r} must be a number of seconds >= 0")
            costs = replace(costs, **{key: type(getattr(costs, key))(value)})
        return costs

    def madvise_pages_s(self, pages: int, per_page_s: float) -> float:
        """One call touching ``pages`` present PTEs: per-page INVLPG up to the ceiling, then one full flush."""
        if pages <= 0:
            return self.syscall_s
        flush = pages * self.invlpg_s if pages <= self.tlb_flush_ceiling_pages else self.full_flush_s
        return self.syscall_s + self.madvise_base_s + pages * per_page_s + flush


COST_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Costs))   # the keys Node(costs={...}) accepts
