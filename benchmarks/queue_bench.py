"""Request-queue benchmark: what serving every request costs a node-hour of the fleet.

One node of 16 service processes at 1,000 requests/s each (the fleet benchmark's node) for a simulated
hour at 1 s ticks: 57.6 million requests through ``RequestQueue.serve`` (8 worker threads, lognormal
service 1 ms / 10 ms, a few stalls and a freeze now and then), timed alone; reports wall seconds per node-hour
and nanoseconds per request, over all of it, for its median and for its fastest simulated minute. The target is under
3 s per node-hour (about 50 ns per request).

    python benchmarks/queue_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from clustersim.fleet.latency import LatencyHistogram
from clustersim.fleet.queue import RequestQueue

PROCESSES, RPS, HOUR_S = 16, 1000.0, 3600


def node_seconds(ticks: int, chunk: int = 60, seed: int = 1) -> tuple[list[float], float]:
    """Wall seconds of each ``chunk`` one-second ticks of PROCESSES queues, and the requests served."""
    rng = np.random.default_rng(seed)
    queues = [RequestQueue(threads=8, median_s=1e-3, p99_s=1e-2) for _ in range(PROCESSES)]
    hists = [LatencyHistogram() for _ in range(PROCESSES)]
    stalls, freeze, none = np.array([2e-3, 5e-3]), np.array([1e-3]), np.empty(0)
    walls = []
    for first in range(0, ticks, chunk):
        start = time.perf_counter()
        for t in range(first, min(ticks, first + chunk)):
            for q, h in zip(queues, hists, strict=True):
                q.serve(rng, float(t), 1.0, RPS, 1.1, 1e-3, stalls if t % 4 == 0 else none,
                        freeze if t % 10 == 0 else none, h)
        walls.append(time.perf_counter() - start)
    return walls, sum(q.stats.served for q in queues)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a simulated 10 minutes, scaled to the hour")
    args = parser.parse_args()
    node_seconds(3, chunk=3)   # compiles (or loads) the loop
    ticks = HOUR_S // 6 if args.quick else HOUR_S
    walls, requests = node_seconds(ticks)
    per_request = requests / ticks * 60
    for label, wall in (("all", sum(walls) / len(walls)), ("median minute", float(np.median(walls))),
                        ("fastest minute", min(walls))):
        print(f"{label}: {wall * HOUR_S / 60:.2f} s per node-hour, {wall / per_request * 1e9:.1f} ns per request")
    print(f"({requests:,.0f} requests; target < 3 s per node-hour, ~50 ns per request; on a shared machine"
          " the fastest minute is the closest to the code's own cost)")

if __name__ == "__main__":
    main()
