"""Page-heap benchmark: what the legacy tcmalloc, jemalloc and glibc heaps cost per allocation unit, and a
mixed node's seconds per simulated node-hour.

Per allocator: one 64 GiB swapless node running ``--procs`` services of 1.5 GiB heaps at the run files'
default churn (64 MiB/s), 1 s ticks. After a warm-up minute (the heaps fill), ``--minutes`` simulated
minutes are timed: the page heap's batch hooks (``_place_batch``/``_unplace_batch``, where placement and
coalescing happen) and the allocator's whole ``alloc``/``free``/``background`` calls (their kernel calls
included), each divided by the allocation units placed in the window.

Fleet: 32 processes of 1.5 GiB on one 64 GiB swapless node, half legacy tcmalloc, half Temeraire (the
fleet benchmark's allocator settings); the same window, scaled to seconds per simulated node-hour.

The hooks are timed by wrapping the allocator classes' methods, so the script measures any checkout that
has them:  PYTHONPATH=CHECKOUT python benchmarks/page_heap_bench.py [--kind KIND] [--minutes N]
Times are CPU seconds of this process (``time.process_time``), so other load on the machine inflates them
less than wall time; the fleet line gives both.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import Counter

from clustersim.allocators.registry import ALLOCATORS
from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet

KINDS = ("tcmalloc", "jemalloc", "glibc")
WARM_UP_S = 60.0
SETTINGS = {"temeraire": {"hugepage_advice": True, "release_rate": "2MiB/s"},
            "tcmalloc": {"hugepage_advice": True, "release_rate": "2MiB/s"}}


def config(kinds: dict[str, int], seconds: float) -> dict:
    """One 64 GiB swapless node with ``kinds[kind]`` 1.5 GiB services per allocator kind."""
    tenants = [{"name": kind, "replicas": n, "cgroup": "workload.slice", "placement": "spread",
                "allocator": {"kind": kind, **SETTINGS.get(kind, {})},
                "workload": {"kind": "service", "profile": "tcmalloc/beta", "heap": "1536M", "rps": 1000}}
               for kind, n in kinds.items()]
    return {"name": "page-heap-bench", "seed": 1, "duration": f"{seconds:g}s", "tick": "1s",
            "kernel": {"thp": {"enabled": "madvise"}},
            "nodes": [{"name": "n", "count": 1, "memory": "64G"}], "tenants": tenants}


class HookTimer:
    """Wall time and units of an allocator class's batch hooks and public calls while ``on``."""

    HOOKS = ("_place_batch", "_unplace_batch")
    CALLS = ("alloc", "free", "background")

    def __init__(self, cls: type) -> None:
        self.seconds: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.on = False
        for name in self.HOOKS + self.CALLS:
            self._wrap(cls, name)

    def _wrap(self, cls: type, name: str) -> None:
        inner = getattr(cls, name)

        def timed(obj, *args):
            if not self.on:
                return inner(obj, *args)
            t0 = time.process_time()
            out = inner(obj, *args)
            self.seconds[name] += time.process_time() - t0
            if name in self.HOOKS:
                self.units[name] += len(args[-1])
            return out

        setattr(cls, name, timed)

    def hook_seconds(self) -> float:
        return sum(self.seconds[n] for n in self.HOOKS)

    def call_seconds(self) -> float:
        return sum(self.seconds[n] for n in self.CALLS)


def timed_window(kinds: dict[str, int], minutes: float, timers: list[HookTimer]) -> tuple[float, float]:
    """(CPU, wall) seconds of ``minutes`` simulated minutes after the warm-up; timers count only in the
    window."""
    fleet = Fleet(load_config(config(kinds, WARM_UP_S + 60.0 * minutes)))
    fleet.run_until(WARM_UP_S)
    gc.collect()
    for t in timers:
        t.on = True
    cpu, wall = time.process_time(), time.perf_counter()
    fleet.run_until(WARM_UP_S + 60.0 * minutes)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for t in timers:
        t.on = False
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=(*KINDS, "all"), default="all")
    parser.add_argument("--procs", type=int, default=8, help="processes per node in the per-allocator runs")
    parser.add_argument("--minutes", type=float, default=3.0, help="simulated minutes timed per run")
    parser.add_argument("--skip-fleet", action="store_true", help="only the per-allocator runs")
    args = parser.parse_args()
    timed_window({"tcmalloc": 1, "jemalloc": 1, "glibc": 1}, 0.25, [])   # compiles or loads the hot loops
    print(f"{'allocator':>10} {'units':>9} {'hooks s':>8} {'us/unit':>8} {'calls s':>8} {'us/unit':>8} "
          f"{'run cpu s':>9}", flush=True)
    for kind in KINDS if args.kind == "all" else (args.kind,):
        timer = HookTimer(ALLOCATORS[kind])
        cpu, _ = timed_window({kind: args.procs}, args.minutes, [timer])
        units = timer.units["_place_batch"]
        print(f"{kind:>10} {units:>9,} {timer.hook_seconds():8.2f} {1e6 * timer.hook_seconds() / units:8.2f} "
              f"{timer.call_seconds():8.2f} {1e6 * timer.call_seconds() / units:8.2f} {cpu:9.1f}", flush=True)
    if not args.skip_fleet:
        cpu, wall = timed_window({"tcmalloc": 16, "temeraire": 16}, args.minutes, [])
        print(f"32 x 1.5 GiB, half legacy tcmalloc, half Temeraire, swapless, {args.minutes:g} simulated min: "
              f"{cpu:.1f} CPU s ({wall:.1f} wall s) = {cpu * 60 / args.minutes:.0f} CPU s per simulated "
              f"node-hour", flush=True)


if __name__ == "__main__":
    main()
