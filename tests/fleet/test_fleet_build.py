"""The builder turns a config into plain keyword arguments; agents need nothing else."""

from __future__ import annotations

import numpy as np
from fleet_helpers import fleet, service

from clustersim.allocators.registry import options_from_section
from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet, build
from clustersim.fleet.agents import NodeAgent, ProcessAgent
from clustersim.fleet.placement import Slot
from clustersim.workloads import Modulation

PLAIN = (str, int, float, bool, type(None), np.random.Generator, np.random.SeedSequence, Modulation)


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return callable(value) or isinstance(value, PLAIN)


def test_every_agent_keyword_is_plain_data_not_a_config_section():
    config = load_config(fleet([{**service("svc", {"kind": "temeraire"}), "limits": {"max": "900M"}}]))
    [node] = build.nodes(config, np.random.SeedSequence(0))
    [(slot, proc), _] = build.processes(config, [Slot("n", 0, 4 << 30)], np.random.SeedSequence(0), float)
    assert _plain(node) and _plain(proc)
    assert slot == Slot("n", 0, 4 << 30)
    assert proc["name"] == "svc-0" and proc["cgroup"] == "workload.slice/svc-0" and proc["tenant"] == "svc"
    assert proc["limits"]["max"] == 900 << 20 and proc["limits"]["high"] == "max"
    assert node["kernel"]["memory"] == 4 << 30 and node["kernel"]["profile"] == "linux-6.12"


def test_allocator_sections_translate_to_the_allocators_keywords_for_the_builder():
    # jemalloc's opt.thp 'default' with MADV_HUGEPAGE asked for becomes 'always'; release advice none
    # keeps DONTNEED for muzzy purging, as jemalloc has no 'no advice' purge.
    section = {"kind": "jemalloc", "madvise": "none", "hugepage_advice": True, "collapse": False,
               "dirty_decay_ms": 5, "muzzy_decay_ms": 0, "background_thread": True, "thp": "default"}
    opts = options_from_section(section, float)
    assert opts == {"collapse": "off", "clock": float, "dirty_decay_ms": 5, "muzzy_decay_ms": 0,
                    "background_thread": True, "thp": "always", "muzzy_advice": "dontneed"}
    tcmalloc = options_from_section({"kind": "tcmalloc", "madvise": "free", "hugepage_advice": False,
                                  "collapse": True, "release_rate": 1.0, "prefer_split_hugepages": False,
                                  "prefer_long_spans": True, "refault_discount": False}, float)
    assert tcmalloc["release_advice"] == "free" and tcmalloc["hugepage_advice"] == "none"
    assert tcmalloc["collapse"] == "after_reuse" and tcmalloc["prefer_long_spans"] is True


def test_agents_built_from_keywords_alone_run_and_report_their_memory():
    # A fleet with no tenants, then a node and a process made from keywords only: a 64 MiB heap in a
    # 200 MiB memcg leaf, stepped for 5 ticks; its observation is what the metrics would sum.
    model = Fleet(load_config(fleet([], duration="5s")))
    node = NodeAgent(model, group="extra", kernel={"memory": "1G", "seed": 1},
                     cgroups={"batch.slice": {"max": "max"}})
    proc = ProcessAgent(model, node, name="job-0", tenant="job", cgroup="batch.slice/job/job-0",
                        limits={"max": 200 << 20}, kind="service", rps=100.0, rng=np.random.default_rng(1),
                        demand={"profile": "tcmalloc/beta", "heap_bytes": 64 << 20, "churn_bytes_per_s": 8 << 20})
    for _ in range(5):
        proc.step()
    assert node.kernel.cgroup("batch.slice/job").path == "batch.slice/job"
    assert proc.kproc.memcg.path == "batch.slice/job/job-0"
    assert proc.up and proc.memory["rss"] >= 60 << 20
    assert proc.latency.counts.sum() > 0
    assert node.memory_bytes == node.kernel.meminfo["MemTotal"] == 1 << 30
