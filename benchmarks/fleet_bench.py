"""Fleet benchmark: seconds of one core per simulated node-hour for the loads users run, and how time grows.

Cases (one 64 GiB node, 1 s ticks, each timed over ``--minutes`` simulated minutes and scaled to the hour,
after a warm-up fleet that loads numba's compiled code and a short run of the same case with two processes,
so that the code only this case calls is loaded before its timing starts, not counted twelve times over):

- ``light``: 16 services of 1 GiB heaps at 4 MiB/s churn, half Temeraire and half legacy tcmalloc, swapless;
- ``temeraire-3g``: 16 Temeraire services of 3 GiB heaps at the default churn (a heap turnover a minute),
  swapless;
- ``temeraire-3g-zram``: the same on 16G of zram with a 0.3 diurnal amplitude over a one-hour period. The
  node swaps from about the tenth to the thirty-fifth minute of the cycle (up to 9 GiB), so this case is
  always timed over the whole hour, whatever ``--minutes`` says: five minutes would time a node that has
  not begun to reclaim;
- ``mixed-32``: 32 services of 1.5 GiB, half legacy tcmalloc and half Temeraire, swapless.

For each: wall seconds per node-hour, allocation units (spans placed plus spans freed) and microseconds per
unit, and memory: the peak of a fresh process running the case with two nodes less that with one (memory
per node, what sizing a worker needs), and what a one-node run holds beyond an idle interpreter besides
its node (the compiled code it loads, once per process). ``--growth`` then times one variable at a time
(nodes, processes per node, heap size, churn) around the ``temeraire-3g`` case: microseconds per
allocation unit should stay flat. ``--profile CASE`` prints where one case's time goes: the wall time of
every compiled function Python calls (per node-hour, calls per process-tick, microseconds a call), the
interpreter's time between those calls, then a cProfile top-20 of the Python. The sharded rows (workers,
Dask) are in ``shard_bench.py``.

    python benchmarks/fleet_bench.py [--minutes 5] [--cases a,b] [--growth] [--profile CASE]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import subprocess
import sys
import time
from collections import Counter

from numba.core.registry import CPUDispatcher

from clustersim.allocators.base import HeapAllocator
from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet

GIB = 1 << 30
HUGEPAGE_AWARE = {"kind": "temeraire", "hugepage_advice": True, "release_rate": "2MiB/s"}
LEGACY = {"kind": "tcmalloc", "hugepage_advice": True, "release_rate": "2MiB/s"}


def fleet(tenants: list[dict], *, nodes: int = 1, swap: dict | None = None, minutes: float = 5) -> dict:
    """A run config of ``nodes`` 64 GiB nodes with the given tenants (replicas per node, spread)."""
    return {"name": "bench", "seed": 1, "duration": f"{minutes * 60:g}s", "tick": "1s",
            "kernel": {"thp": {"enabled": "madvise"}},
            "nodes": [{"name": "n", "count": nodes, "memory": "64G", "swap": swap or {"kind": "none"}}],
            "tenants": [{**t, "replicas": t["replicas"] * nodes, "placement": "spread"} for t in tenants]}


def service(name: str, allocator: dict, replicas: int, heap: str, **workload) -> dict:
    return {"name": name, "replicas": replicas, "allocator": allocator,
            "workload": {"kind": "service", "heap": heap, "rps": 1000, **workload}}


def case(name: str, minutes: float, *, nodes: int = 1, procs: int = 16, heap: str = "3G",
         churn: str | None = None) -> dict:
    """The named case's config; ``nodes``, ``procs``, ``heap`` and ``churn`` vary the 3 GiB cases."""
    extra = {"churn": churn} if churn else {}
    if name == "light":
        half = procs // 2
        return fleet([service("hugepage-aware", HUGEPAGE_AWARE, half, "1G", profile="tcmalloc/beta", churn="4MiB/s"),
                      service("legacy", LEGACY, procs - half, "1G", profile="tcmalloc/beta", churn="4MiB/s")],
                     nodes=nodes, minutes=minutes)
    if name == "temeraire-3g":
        return fleet([service("svc", {"kind": "temeraire"}, procs, heap, **extra)], nodes=nodes, minutes=minutes)
    if name == "temeraire-3g-zram":
        diurnal = {"amplitude": 0.3, "period": "1h"}
        return fleet([service("svc", {"kind": "temeraire"}, procs, heap, diurnal=diurnal, **extra)], nodes=nodes,
                     swap={"kind": "zram", "size": "16G"}, minutes=minutes)
    if name == "mixed-32":
        return fleet([service("legacy", LEGACY, 16, "1536M"), service("hugepage-aware", HUGEPAGE_AWARE, 16, "1536M")],
                     nodes=nodes, minutes=minutes)
    raise SystemExit(f"unknown case {name!r}; cases: {', '.join(CASES)}")


CASES = ("light", "temeraire-3g", "temeraire-3g-zram", "mixed-32")
MIN_MINUTES = {"temeraire-3g-zram": 60}   # a whole diurnal cycle: the reclaim and swap it is about


def window(name: str, minutes: float) -> float:
    """The simulated minutes a case is timed (and profiled) over: ``minutes``, or its whole cycle if longer."""
    return max(minutes, MIN_MINUTES.get(name, 0))


class UnitCounter:
    """Counts the spans every heap hands out and takes back (wraps HeapAllocator.alloc and free)."""

    def __init__(self) -> None:
        self.units = 0
        self._alloc, self._free = HeapAllocator.alloc, HeapAllocator.free

    def __enter__(self) -> UnitCounter:
        counter, alloc, free = self, self._alloc, self._free

        def counted_alloc(heap, span_ids, span_bytes):
            counter.units += len(span_ids)
            return alloc(heap, span_ids, span_bytes)

        def counted_free(heap, span_ids):
            counter.units += len(span_ids)
            return free(heap, span_ids)

        HeapAllocator.alloc, HeapAllocator.free = counted_alloc, counted_free
        return self

    def __exit__(self, *exc) -> None:
        HeapAllocator.alloc, HeapAllocator.free = self._alloc, self._free


class CompiledTimes:
    """Times every call Python makes into a compiled (numba) function: the module globals naming one are
    wrapped while the block runs. Compiled code calling compiled code is not seen, so each figure is a call
    from Python with everything beneath it, and the rest of the run is the interpreter's own time."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> CompiledTimes:
        wrappers: dict[int, object] = {}
        for module in [m for name, m in sys.modules.items() if name.startswith("clustersim.")]:
            for attr, value in list(vars(module).items()):
                if isinstance(value, CPUDispatcher):
                    if id(value) not in wrappers:
                        wrappers[id(value)] = self._wrap(value)
                    self._saved.append((module, attr, value))
                    setattr(module, attr, wrappers[id(value)])
        return self

    def __exit__(self, *exc) -> None:
        for module, attr, value in self._saved:
            setattr(module, attr, value)

    def _wrap(self, dispatcher):
        name = f"{dispatcher.py_func.__module__.removeprefix('clustersim.')}.{dispatcher.py_func.__name__}"
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        def timed_call(*args):
            start = clock()
            try:
                return dispatcher(*args)
            finally:
                seconds[name] += clock() - start
                calls[name] += 1
        return timed_call


def breakdown(name: str, minutes: float, top: int = 20) -> None:
    """Where one case's time goes: each compiled function called from Python, and the interpreter's rest."""
    cfg = case(name, minutes)
    with CompiledTimes() as times:
        wall, sim, _, _ = timed(cfg)
    per_hour, ticks = 3600 / sim, sim * sum(t["replicas"] for t in cfg["tenants"])
    compiled = sum(times.seconds.values())
    print(f"{name}: {wall * per_hour:.1f} s per node-hour; compiled calls {compiled * per_hour:.1f} "
          f"({compiled / wall:.0%}), Python between them {(wall - compiled) * per_hour:.1f}")
    print(f"{'compiled function':<48} {'s/node-h':>9} {'share':>6} {'calls/proc-tick':>15} {'us/call':>8}")
    for fn, seconds in times.seconds.most_common(top):
        print(f"{fn:<48} {seconds * per_hour:9.2f} {seconds / wall:6.1%} {times.calls[fn] / ticks:15.2f} "
              f"{seconds / times.calls[fn] * 1e6:8.1f}")


def timed(cfg: dict) -> tuple[float, float, int, int]:
    """(wall seconds, simulated seconds, allocation units, nodes) of one fleet run."""
    config = load_config(cfg)
    gc.collect()
    with UnitCounter() as counter:
        start = time.perf_counter()
        model = Fleet(config)
        model.run()
        wall = time.perf_counter() - start
    return wall, model.duration_s, counter.units, len(model.nodes)


def peak_mib(name: str, minutes: float, nodes: int = 1) -> float:
    """Peak resident MiB of a fresh process that runs the case on ``nodes`` nodes (or only imports, for
    name '')."""
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import fleet_bench as b\n"
            f"if {name!r}: b.timed(b.case({name!r}, {minutes}, nodes={nodes}))\n"
            "kb = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(json.dumps(int(kb) / 1024))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def row(label: str, cfg: dict) -> None:
    wall, sim, units, nodes = timed(cfg)
    print(f"{label:<34} {wall * 3600 / sim / nodes:10.1f} {units:>11,} {wall / units * 1e6:9.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5, help="simulated minutes per timed run (default 5)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases (default: all)")
    parser.add_argument("--growth", action="store_true", help="also time nodes, processes, heap and churn")
    parser.add_argument("--memory", action="store_true", help="also measure memory per node (fresh processes)")
    parser.add_argument("--profile", metavar="CASE", help="print where one case's time goes instead: every "
                        "compiled function called from Python, then a cProfile top-20 of the Python")
    args = parser.parse_args()
    wall, *_ = timed(case("light", 0.5, procs=2))   # one Temeraire and one legacy heap: both compiled
    print(f"warm-up (compiles on a machine's first run, then loads the cache): {wall:.1f} s")
    if args.profile:
        minutes = window(args.profile, args.minutes)
        timed(case(args.profile, 0.25, procs=2))   # loads the compiled code this case calls
        breakdown(args.profile, minutes)
        profiler = cProfile.Profile()
        profiler.runcall(timed, case(args.profile, minutes))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return
    print(f"{'case':<34} {'s/node-h':>10} {'units':>11} {'us/unit':>9}")
    for name in args.cases.split(","):
        timed(case(name, 0.25, procs=2))   # loads the compiled code this case calls
        row(name, case(name, window(name, args.minutes)))
    if args.memory:
        base = peak_mib("", 0)
        for name in args.cases.split(","):
            one, two = peak_mib(name, 1), peak_mib(name, 1, nodes=2)
            print(f"memory, {name}: {two - one:.0f} MiB per node, plus {one - base - (two - one):.0f} MiB "
                  "per process (compiled code loaded) above an idle interpreter")
    if args.growth:
        short = min(args.minutes, 2)
        for nodes in (1, 2, 4):
            row(f"temeraire-3g nodes={nodes}", case("temeraire-3g", short, nodes=nodes))
        for procs in (4, 8, 16):
            row(f"temeraire-3g procs={procs}", case("temeraire-3g", short, procs=procs))
        for heap in ("1G", "2G", "3G"):
            row(f"temeraire-3g heap={heap}", case("temeraire-3g", short, heap=heap))
        for churn in ("25MiB/s", "51MiB/s", "102MiB/s"):
            row(f"temeraire-3g churn={churn}", case("temeraire-3g", short, churn=churn))


if __name__ == "__main__":
    main()
