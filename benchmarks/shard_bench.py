"""Shard benchmark: one fleet split over worker processes (``clustersim run --workers`` / ``--dask``).

1. Scaling: a fleet of 8 of fleet_bench's nodes (64 GiB, 16 services of 1 GiB heaps, 4 MiB/s churn) run
   serially and on 2 local pool workers (the shards and pool ``clustersim run --workers 2`` uses), twice
   each, alternating; the tables must be identical (sha256). Reported: wall times, and the CPU seconds of
   the serial run and of each shard (in its worker, start-up excluded).
2. Memory: peak RSS of a fresh process running 1 and 3 such nodes; the difference per node is what a worker
   needs per node of its shard, above its fixed cost.
3. A large fleet (default 100 nodes of 16 GiB with 4 such services) on a 2-worker Dask LocalCluster: wall
   time per node-hour and each worker's peak RSS.

    python benchmarks/shard_bench.py [--duration 1h] [--rounds 2] [--big-nodes 100] [--big-procs 4] [--big-duration 1m]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

from dask.distributed import Client, LocalCluster
from fleet_bench import case

import clustersim
from clustersim.experiments.config import load_config, resolved
from clustersim.experiments.runners import PoolRunner
from clustersim.experiments.sharded import ShardTask, execute_shard
from clustersim.fleet.simulate import merge, shards, simulate
from clustersim.results_contract import TABLES


def config(nodes: int, procs: int, duration: str) -> dict:
    """fleet_bench's light case (16 services of 1 GiB heaps per 64 GiB node) with ``nodes`` nodes."""
    return {**case("light", 1, nodes=nodes, procs=procs), "duration": duration}


def digest(tables) -> str:
    h = hashlib.sha256(repr(sorted(tables.summary.items())).encode())
    for name in TABLES:
        h.update(getattr(tables, name).to_csv(index=False, float_format="%.17g").encode())
    return h.hexdigest()[:16]


def timed_shard(task: ShardTask, report) -> tuple[object, float, float]:
    """One shard as ``clustersim run --workers`` runs it, with its wall and CPU seconds in the worker."""
    wall, cpu = time.perf_counter(), time.process_time()
    state = execute_shard(task, report)
    return state, time.perf_counter() - wall, time.process_time() - cpu


def scaling(duration: str, rounds: int = 2) -> None:
    """Serial vs 2 pool workers. Wall time on a shared machine measures the scheduler more than the code
    (Linux's autogroup gives one terminal session one share of the CPU however many processes it runs), so
    the CPU seconds of each shard are reported too: on two free cores the run takes its slowest shard's."""
    cfg = load_config(config(8, 16, duration))
    tasks = [ShardTask(i, 2, resolved(cfg), part) for i, part in enumerate(shards(cfg, 2))]
    print(f"8 nodes x 16 processes, {duration} simulated; shards: {[t.shard.describe() for t in tasks]}")
    print(f"{'round':>5} {'serial s':>9} {'cpu s':>7} {'2 workers s':>12} {'shard cpu s':>14} {'cpu speed-up':>13}"
          f" {'wall speed-up':>14}  identical")
    for r in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        serial = simulate(cfg)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        start = time.perf_counter()
        done = dict(PoolRunner(2).map(timed_shard, tasks))
        split = time.perf_counter() - start
        same = digest(merge([done[i][0] for i in sorted(done)])) == digest(serial)
        assert same, "the 2-worker run differs from the serial one"
        shard_cpu = [done[i][2] for i in sorted(done)]
        print(f"{r + 1:>5} {wall:9.1f} {cpu:7.1f} {split:12.1f} {' / '.join(f'{c:.1f}' for c in shard_cpu):>14}"
              f" {cpu / max(shard_cpu):13.2f} {wall / split:14.2f}  {same}")


def _peak_rss_of_fleet(nodes: int) -> tuple[float, float]:
    """(MiB after a one-node warm-up, peak MiB after running ``nodes`` nodes for a simulated minute)."""
    clustersim.run(config(1, 2, "2s"))
    base = _rss_mib()
    clustersim.run(config(nodes, 16, "60s"))
    return base, _peak_mib()


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over exec, so a worker
    spawned (fork + exec) from a large parent would report the parent's size."""
    with open("/proc/self/status") as fh:
        line = next(row for row in fh if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def memory() -> None:
    context = multiprocessing.get_context("spawn")
    peaks = {}
    for nodes in (1, 3):
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            peaks[nodes] = pool.submit(_peak_rss_of_fleet, nodes).result()
    per_node = (peaks[3][1] - peaks[1][1]) / 2
    print(f"memory: fixed {peaks[1][0]:.0f} MiB; peak {peaks[1][1]:.0f} MiB with 1 node, {peaks[3][1]:.0f} MiB "
          f"with 3: {per_node:.0f} MiB per node of 16 x 1 GiB heaps")


def big(nodes: int, procs: int, duration: str) -> None:
    cfg = config(nodes, procs, duration)
    cfg["nodes"][0]["memory"] = f"{max(4, 4 * procs)}G"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.run(lambda: clustersim.run(config(1, 2, "2s")) and None)   # warm up: imports, compiled loops
        base = client.run(_rss_mib)
        start = time.perf_counter()
        result = clustersim.run(cfg, dask=cluster.scheduler_address, workers=2)
        wall = time.perf_counter() - start
        peak = client.run(_peak_mib)
    node_hours = nodes * float(result.manifest["config"]["duration"]) / 3600
    print(f"{nodes} nodes x {procs} processes, {duration} simulated, 2 Dask workers: {wall:.1f} s wall, "
          f"{wall / node_hours:.0f} s per node-hour ({2 * wall / node_hours:.0f} worker-s per node-hour)")
    for worker in sorted(peak):
        print(f"  worker {worker}: {base[worker]:.0f} MiB after warm-up, peak {peak[worker]:.0f} MiB "
              f"({(peak[worker] - base[worker]) / (nodes / 2):.1f} MiB per node of its shard)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="2m", help="simulated time of the 8-node runs (an hour: 1h)")
    parser.add_argument("--big-nodes", type=int, default=100)
    parser.add_argument("--big-procs", type=int, default=4)
    parser.add_argument("--big-duration", default="1m")
    parser.add_argument("--rounds", type=int, default=2, help="serial / 2-worker pairs of the 8-node runs")
    parser.add_argument("--skip", nargs="*", default=[], choices=("scaling", "memory", "big"))
    args = parser.parse_args()
    if "scaling" not in args.skip:
        scaling(args.duration, args.rounds)
    if "memory" not in args.skip:
        memory()
    if "big" not in args.skip:
        big(args.big_nodes, args.big_procs, args.big_duration)


if __name__ == "__main__":
    main()
