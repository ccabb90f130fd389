"""Every config the schema accepts builds a fleet that steps: ``check`` passing means the run can start.

A property test (hypothesis) over generated run files within the documented bounds: small nodes, a few
tenants of every allocator kind, kernel profiles and proposals, swap kinds, memcg limits, restarts,
diurnal cycles and spikes. Whatever ``load_config`` accepts must build ``clustersim.fleet.model.Fleet`` and
run two ticks without raising; what it rejects must be a ConfigError (never another exception).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clustersim import load, run
from clustersim.experiments import ConfigError, load_config
from clustersim.experiments.config import WORKLOAD_PROFILES
from clustersim.fleet.model import Fleet
from clustersim.kernel.profiles import PROFILES, PROPOSALS

MIB = 1 << 20
PROFILE_NAMES = [f"{src}/{name}" for src, names in WORKLOAD_PROFILES.items() for name in names]
names = st.text(alphabet="abcdefghij0123456789._-", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


def allocators() -> st.SearchStrategy[dict[str, Any]]:
    common = {"madvise": st.sampled_from(["dontneed", "free", "splittable", "free_undo", "none"]),
              "hugepage_advice": st.booleans(), "collapse": st.booleans()}
    kinds = {
        "tcmalloc": {"release_rate": st.sampled_from([0, "1MiB/s"]), "prefer_split_hugepages": st.booleans()},
        "temeraire": {"release_rate": st.sampled_from([0, "1MiB/s"]), "skip_subrelease_short": st.just("1s")},
        "jemalloc": {"dirty_decay_ms": st.sampled_from([-1, 0, 100]), "background_thread": st.booleans(),
                     "thp": st.sampled_from(["default", "always", "never"])},
        "glibc": {"trim_threshold": st.sampled_from(["0", "128K"]), "malloc_trim": st.booleans()},
    }
    return st.one_of(*(st.fixed_dictionaries({"kind": st.just(kind), **common}, optional=extra)
                       for kind, extra in kinds.items()))


def workloads() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "kind": st.sampled_from(["service", "batch", "cache"]),
        "profile": st.sampled_from(PROFILE_NAMES),
        "heap": st.integers(1, 16).map(lambda m: m * MIB),
        "churn": st.sampled_from(["1MiB/s", "8MiB/s"]),
    }, optional={
        "rps": st.floats(0, 500),
        "diurnal": st.fixed_dictionaries({"amplitude": st.floats(0, 1), "period": st.sampled_from(["1s", "1h"])}),
        "spikes": st.fixed_dictionaries({"rate": st.sampled_from([0, 1]), "size": st.just("1M")}),
        "restarts": st.fixed_dictionaries({"interval": st.sampled_from([None, "1s"]), "delay": st.just("1s")}),
        "span_quantum": st.sampled_from(["8K", "256K"]),
    })


def tenants() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"name": names, "allocator": allocators(), "workload": workloads()}, optional={
        "replicas": st.integers(1, 2), "placement": st.sampled_from(["spread", "pack"]),
        "limits": st.fixed_dictionaries({}, optional={"high": st.sampled_from(["max", "64M"]),
                                                     "max": st.sampled_from(["max", "96M"])}),
    })


def run_files() -> st.SearchStrategy[dict[str, Any]]:
    swap = st.sampled_from([{"kind": "none"}, {"kind": "zram", "size": "32M"}, {"kind": "disk", "size": "64M"},
                            {"kind": "zswap", "size": "64M"}])
    group = st.fixed_dictionaries({"name": names, "count": st.integers(1, 2),
                                   "memory": st.integers(64, 160).map(lambda n: n * 2 * MIB), "swap": swap})
    kernel = st.fixed_dictionaries({"profile": st.sampled_from(PROFILES)}, optional={
        "proposals": st.lists(st.sampled_from(PROPOSALS), unique=True),
        "thp": st.fixed_dictionaries({}, optional={"enabled": st.sampled_from(["always", "madvise", "never"]),
                                                   "scan_sleep": st.sampled_from(["100ms", "1s"])}),
    })
    return st.fixed_dictionaries({
        "seed": st.integers(0, (1 << 63) - 1), "duration": st.just(2), "tick": st.just(1), "kernel": kernel,
        "nodes": st.lists(group, min_size=1, max_size=2), "tenants": st.lists(tenants(), max_size=2),
    }, optional={"sample_interval": st.sampled_from([0.5, 1])})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(run_files())
def test_every_accepted_config_builds_a_fleet_that_steps(data: dict[str, Any]) -> None:
    try:
        config = load_config(data)
    except ConfigError:
        assume(False)
        return
    fleet = Fleet(config)
    fleet.run_until(2 * config.tick)
    assert float(fleet.time) == 2 * config.tick
    assert set(fleet.summary()) >= {"thp_coverage", "oom_kills"}


def test_an_empty_run_file_runs_an_idle_fleet(tmp_path: Path) -> None:
    # The documented default is no tenants: the nodes run idle and the run reports zeros, not a KeyError.
    result = run({"duration": 2}, tmp_path / "idle")
    assert result.summary["oom_kills"] == 0 and result.summary["rss_bytes_mean"] == 0
    assert load(tmp_path / "idle").tenants.empty
