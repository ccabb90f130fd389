"""senpai: a userspace controller that sizes a cgroup's memory from its memory pressure.

Follows facebookincubator/senpai, senpai.py (the one file of the project; parameter names and defaults are its
argparse options). Once a second it reads the cgroup's memory.pressure, adds the growth of the ``some``
total (microseconds of stall) to an integral, and:

- if the integral exceeds the target ``pressure``, backs off at once: the limit grows by
  ``min(max_backoff * (integral / pressure / coeff_backoff) ** 2, max_backoff)`` of itself;
- otherwise, every ``interval`` seconds (``grace_ticks`` counts down), probes: the limit shrinks by
  ``min(max_probe * (pressure / max(integral, 1) / coeff_probe) ** 2, max_probe)`` of itself;

and each adjustment resets the integral. The limit is memory.high (``knob: memory.high``, as senpai.py
writes it), clamped to [min_size, max_size] and rounded down to 4096 bytes; if memory.high no longer
reads back as the limit senpai last wrote (at start: ``max``), it restarts from memory.current.

``knob: memory.reclaim`` is the variant TMO (Weiner et al., ASPLOS '22, section 3.3) describes for its
production senpai: the same probe/backoff decisions, but a probe writes ``memory.current * adj`` bytes to
memory.reclaim (Linux 5.19+, cgroup-v2.rst) and leaves memory.high at ``max``, so a workload that grows is
never throttled by a stale limit; a backoff then only stops probing (resets the integral).

The controller reads and writes only the cgroup's control files through the kernel's ``Cgroup`` handle. It
never kills: memory.high throttles and memory.reclaim fails with EAGAIN when short, which senpai ignores.

Its cost is counted in two parts: its own CPU (SENPAI_TICK_CPU_S per tick: reading two files and writing
one, a Python process waking once a second) and the kernel's reclaim CPU that its writes run in its context
(the write's reclaim cost, returned by ``Cgroup.write``), with the bytes that reclaim took from the cgroup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..kernel import KernelError, Node

SENPAI_TICK_S = 1.0            # senpai.py: time.sleep(1) between ticks
# Own CPU of one tick: Python reading memory.pressure and memory.high (a few µs of syscalls each) and the
# interpreter's work around them; 50 µs is the order of a Python loop iteration with three small file
# reads. The kernel's reclaim that a write triggers is counted separately, from the cost table.
SENPAI_TICK_CPU_S = 50e-6
PAGE_MASK = ~4095              # senpai.py: limit &= ~4095
KNOBS = ("memory.high", "memory.reclaim")


@dataclass(frozen=True)
class SenpaiOptions:
    """senpai.py's argparse options (names and defaults), and which control file it acts through."""

    min_size: int = 100 << 20          # --min-size: bytes
    max_size: int = 100 << 30          # --max-size: bytes
    interval: int = 6                  # --interval: ticks (seconds) between probes
    pressure: int = 10 * 1000          # --pressure: µs of `some` stall per interval that is the target
    max_probe: float = 0.01            # --max-probe: largest shrink, a fraction of the limit
    max_backoff: float = 1.0           # --max-backoff: largest growth, a fraction of the limit
    coeff_probe: int = 10              # --coeff-probe: probe reaches max_probe at pressure / coeff_probe
    coeff_backoff: int = 20            # --coeff-backoff: backoff reaches max_backoff at coeff_backoff x target
    knob: str = "memory.high"          # memory.high (senpai.py) or memory.reclaim (TMO's variant)

    def __post_init__(self) -> None:
        if self.knob not in KNOBS:
            raise ValueError(f"senpai knob={self.knob!r}: one of {', '.join(KNOBS)}")
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(f"senpai min_size={self.min_size}, max_size={self.max_size}: need 0 < min <= max")
        if self.interval < 1 or self.pressure < 1:
            raise ValueError(f"senpai interval={self.interval}, pressure={self.pressure}: both >= 1")


DEFAULTS = {f.name: f.default for f in fields(SenpaiOptions)}


@dataclass
class SenpaiBook:
    """What a controller did: ticks, adjustments, its CPU and the reclaim its writes ran."""

    ticks: int = 0
    probes: int = 0
    backoffs: int = 0
    resets: int = 0
    cpu_s: float = 0.0                  # its own CPU, SENPAI_TICK_CPU_S per tick
    reclaim_cpu_s: float = 0.0          # kernel reclaim run in its writes' context
    reclaimed_bytes: int = 0            # memory.current before a write minus after it, summed
    limits: list[tuple[float, int]] = field(default_factory=list)   # (time, limit) after each adjustment


class Senpai:
    """One senpai instance on one cgroup (senpai.py's ``Senpai`` and ``Cgroup`` classes in one)."""

    def __init__(self, node: Node, path: str, options: SenpaiOptions | None = None) -> None:
        """Args:
            node: the kernel whose cgroup file system holds the cgroup.
            path: the cgroup's path (must exist).
            options: senpai's parameters; None: its defaults.
        """
        self.node, self.path = node, path
        self.conf = options or SenpaiOptions()
        self.book = SenpaiBook()
        self.limit: int | None = None
        self.cgroup = node.cgroup(path)
        self.last_total = self._total()
        self.integral = 0
        self.grace_ticks = self.conf.interval
        if self.conf.knob == "memory.high":
            self.set_limit(None)

    def counters(self) -> dict[str, float]:
        """The fleet's summary counters of this instance (results_contract: ``senpai_*``)."""
        b = self.book
        return {"senpai_cpu_s": b.cpu_s, "senpai_reclaim_cpu_s": b.reclaim_cpu_s,
                "senpai_reclaimed_bytes": float(b.reclaimed_bytes)}

    # --- control files ---------------------------------------------------------------------------------
    def _total(self) -> int:
        """memory.pressure's first line, ``some ... total=``: µs of stall since the cgroup was made."""
        return int(self.cgroup.pressure["some"]["total"])

    def read_limit(self) -> int:
        high = self.cgroup.high
        return (1 << 64) - 1 if high == "max" else int(high)

    def _write(self, name: str, value: int) -> None:
        """Write one control file, booking the reclaim it ran; a short memory.reclaim (EAGAIN) is ignored."""
        before = self.cgroup.current
        try:
            self.book.reclaim_cpu_s += self.cgroup.write(name, value)
        except KernelError as err:
            if err.errno != "EAGAIN":
                raise
            self.book.reclaim_cpu_s += getattr(err, "cost_s", 0.0)
        self.book.reclaimed_bytes += max(0, before - self.cgroup.current)

    # --- senpai.py's Cgroup: the limit -----------------------------------------------------------------
    def set_limit(self, limit: int | None) -> None:
        self.import_limit(limit)
        self._write("high", self.limit)
        self.book.limits.append((self.node.time, self.limit))

    def import_limit(self, limit: int | None) -> None:
        """Sanitize the limit: restart from memory.current after a race, clamp, round down to 4096 bytes."""
        if self.read_limit() != self.limit:
            self.book.resets += 1
            limit = self.cgroup.current
        limit = max(self.conf.min_size, min(self.conf.max_size, limit))
        self.limit = limit & PAGE_MASK

    def scale_limit(self, factor: float) -> None:
        x = self.read_limit()
        self.set_limit(int(x + x * factor))

    # --- senpai.py's Senpai: one tick ------------------------------------------------------------------
    def tick(self) -> None:
        """One second of senpai.py's loop: integrate the stall, back off above target, else probe on time."""
        self.book.ticks += 1
        self.book.cpu_s += SENPAI_TICK_CPU_S
        total = self._total()
        delta, self.last_total = total - self.last_total, total
        self.integral += delta
        c = self.conf
        if self.integral > c.pressure:
            # Back off exponentially as pressure deviates from the target (senpai.py's comment): the curve
            # reaches max_backoff when pressure is coeff_backoff times the target.
            err = self.integral / c.pressure
            adj = min((err / c.coeff_backoff) ** 2 * c.max_backoff, c.max_backoff)
            self.book.backoffs += 1
            self.adjust(adj)
            self.grace_ticks = c.interval - 1
            return
        if self.grace_ticks:
            self.grace_ticks -= 1
            return
        # Tighten: more aggressive as pressure falls below target, max_probe at target / coeff_probe.
        err = c.pressure / max(self.integral, 1)
        adj = min((err / c.coeff_probe) ** 2 * c.max_probe, c.max_probe)
        self.book.probes += 1
        self.adjust(-adj)
        self.grace_ticks = c.interval - 1

    def adjust(self, factor: float) -> None:
        """memory.high: scale the limit by 1 + factor. memory.reclaim: a probe reclaims -factor of usage."""
        if self.conf.knob == "memory.high":
            self.scale_limit(factor)
        elif factor < 0:
            self._write("reclaim", int(self.cgroup.current * -factor) & PAGE_MASK)
        self.integral = 0


__all__ = ["DEFAULTS", "KNOBS", "SENPAI_TICK_CPU_S", "SENPAI_TICK_S", "Senpai", "SenpaiBook", "SenpaiOptions"]
