"""Sweep runner benchmark: per-run overhead, and the speed-up of two workers over one.

    python benchmarks/sweep_bench.py

1. Overhead: 50 tiny runs; overhead per run = (sweep wall time - time inside the simulation) / 50, for the
   in-process runner and a 2-process pool. Target: < 0.5 s per run.
2. Speed-up: 20 CPU-bound runs (about 2 s each) with --workers 1 (in-process) and --workers 2 (process
   pool). Target: >= 1.8x on two cores.

The overhead part uses the fleet simulation when clustersim.fleet.simulate exists and the fake simulation
otherwise, and says which; the speed-up part always uses CPU-bound fake runs (a fixed amount of numeric
work each), so that it measures the runner and not the model.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from clustersim import sweep
from clustersim.experiments.fake import FakeSimulate, burn

OVERHEAD_RUNS = 50
SPEEDUP_RUNS = 20
CPU_S = 2.0
BASE: dict[str, Any] = {
    "duration": "10s",
    "nodes": [{"name": "a", "count": 1, "memory": "4G"}],
    "tenants": [{"name": "svc", "workload": {"heap": "256M", "churn": "16M/s", "rps": 100}}],
}


def real_simulation() -> bool:
    try:
        return importlib.util.find_spec("clustersim.fleet.simulate") is not None
    except ModuleNotFoundError:
        return False


def spec(n: int) -> dict[str, Any]:
    return {"name": "bench", "base": BASE, "seeds": n}


def timed_sweep(n: int, workers: int, simulate: Any) -> tuple[float, float]:
    """(wall seconds of the whole sweep, seconds spent inside the simulation)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = sweep(spec(n), Path(out), workers=workers, simulate=simulate, progress=False)
        wall = time.perf_counter() - start
    assert report.exit_status == 0, report.failures()
    return wall, float(report.runs["wall_s"].sum())


def iterations_per_second() -> float:
    burn(200)
    start = time.perf_counter()
    burn(2000)
    return 2000 / (time.perf_counter() - start)


def main() -> None:
    real = real_simulation()
    print(f"simulation: {'clustersim.fleet.simulate (real)' if real else 'fake (clustersim.fleet.simulate absent)'}")
    print(f"cores: {os.cpu_count()}")
    tiny = None if real else FakeSimulate()
    for workers, label in ((1, "in-process"), (2, "2-process pool")):
        wall, inside = timed_sweep(OVERHEAD_RUNS, workers, tiny)
        per_run = (wall - inside / workers) / OVERHEAD_RUNS
        print(f"overhead, {label:15s}: {per_run:.3f} s per run over {OVERHEAD_RUNS} runs "
              f"(wall {wall:.2f} s; target < 0.5 s) {'OK' if per_run < 0.5 else 'MISSED'}")
    busy = FakeSimulate(work=int(CPU_S * iterations_per_second()))
    one, _ = timed_sweep(SPEEDUP_RUNS, 1, busy)
    two, _ = timed_sweep(SPEEDUP_RUNS, 2, busy)
    speedup = one / two
    print(f"speed-up, {SPEEDUP_RUNS} CPU-bound fake runs: 1 worker {one:.2f} s, 2 workers {two:.2f} s -> "
          f"{speedup:.2f}x (target >= 1.8x) {'OK' if speedup >= 1.8 else 'MISSED'}")


if __name__ == "__main__":
    main()
