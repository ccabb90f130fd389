"""What ``clustersim run`` prints: the fleet summary, then the tenant x node-group table in display units; with
``--json``, the summary, tenants and tenant_groups as one JSON document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from clustersim.cli import main
from clustersim.experiments.report import results_json, tenant_groups_table
from clustersim.results_contract import SUMMARY_KEYS

FAKE = "clustersim.experiments.fake:simulate"


def _two_groups(base: dict[str, Any], tmp_path: Path) -> Path:
    config = {**base, "nodes": [{"name": "a", "count": 1, "memory": "16G"},
                                {"name": "b", "count": 1, "memory": "16G", "swap": {"kind": "zram", "size": "4G"}}]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _row(text: str, key: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.strip().startswith(key + " "))


def test_run_prints_the_tenant_x_group_table_with_units_after_the_summary(tmp_path, base, monkeypatch, capsys):
    # One tenant over two node groups: after the summary, a column per (tenant, group) and a row per summary
    # key in its display unit: coverage in % (x100), RSS in GiB (/2^30), as stored in tenant_groups.parquet.
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    assert main(["run", str(_two_groups(base, tmp_path)), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.index("summary:") < out.index("tenant x node group:") < out.index("results in")
    table = out[out.index("tenant x node group:"):]
    header = table.splitlines()[1:3]
    assert header[0].split() == ["web", "web"] and header[1].split() == ["a", "b"]
    stored = pd.read_parquet(tmp_path / "out" / "tenant_groups.parquet")
    coverage = _row(table, "thp_coverage")
    assert coverage[1:5] == ["%", "of", "anon", "heap"]
    assert [float(v) for v in coverage[-2:]] == [float(f"{v * 100:.6g}") for v in stored["thp_coverage"]]
    rss = _row(table, "rss_bytes_mean")
    assert rss[1] == "GiB" and [float(v) for v in rss[2:]] == [float(f"{v / 2**30:.6g}") for v in
                                                                stored["rss_bytes_mean"]]
    assert all(any(line.strip().startswith(k + " ") for line in table.splitlines()) for k in SUMMARY_KEYS)


def test_run_json_prints_summary_tenants_and_tenant_groups_and_nothing_else(tmp_path, base, monkeypatch, capsys):
    # --json: stdout is one JSON document equal to the stored tables; the results folder goes to stderr.
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    assert main(["run", str(_two_groups(base, tmp_path)), "--out", str(tmp_path / "out"), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc) == ["summary", "tenants", "tenant_groups"]
    assert list(doc["summary"]) == list(SUMMARY_KEYS)
    assert doc["tenants"] == pd.read_parquet(tmp_path / "out" / "tenants.parquet").to_dict("records")
    assert doc["tenant_groups"] == pd.read_parquet(tmp_path / "out" / "tenant_groups.parquet").to_dict("records")
    assert [(r["tenant"], r["node_group"]) for r in doc["tenant_groups"]] == [("web", "a"), ("web", "b")]
    assert f"results in {tmp_path / 'out'}" in captured.err


def test_the_table_shows_display_units_and_json_writes_nan_as_null():
    # 0.5 coverage is 50 %, 3 GiB of RSS is 3 GiB, 1.5 s of stall is 1.5 s; a batch tenant's latency (NaN)
    # is null in JSON, which has no NaN.
    frame = pd.DataFrame([{"tenant": "batch", "node_group": "g", **dict.fromkeys(SUMMARY_KEYS, 0.0),
                           "thp_coverage": 0.5, "rss_bytes_mean": 3.0 * 2**30, "reclaim_stall_s": 1.5,
                           "latency_p99_ms": float("nan")}])
    table = tenant_groups_table(frame)
    assert _row(table, "thp_coverage")[-1] == "50"
    assert _row(table, "rss_bytes_mean")[1:] == ["GiB", "3"]
    assert _row(table, "reclaim_stall_s")[1:] == ["s", "1.5"]
    doc = json.loads(results_json({"latency_p99_ms": float("nan")}, frame.drop(columns="node_group"), frame))
    assert doc["summary"]["latency_p99_ms"] is None and doc["tenant_groups"][0]["latency_p99_ms"] is None
    assert doc["tenant_groups"][0]["thp_coverage"] == 0.5
