"""Figures come from stored results only, as PDF and PNG, with axis units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clustersim import sweep
from clustersim.cli import main
from clustersim.experiments.fake import FakeSimulate
from clustersim.figures.plot import PlotError, cdf_frame, plot


@pytest.fixture
def results(tmp_path: Path, small_sweep: dict[str, Any], monkeypatch: Any) -> Path:
    sweep(small_sweep, tmp_path / "r", workers=1, simulate=FakeSimulate(), progress=False)
    # From here on any simulation would fail: plotting must not run one.
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", "clustersim.no_such_module:simulate")
    return tmp_path / "r"


@pytest.mark.parametrize("kind", ["line", "bar"])
def test_plot_writes_pdf_and_png_from_stored_results(results: Path, tmp_path: Path, kind: str) -> None:
    paths = plot(results, x="tenants.0.allocator.madvise", y="thp_coverage", hue="tenants.0.workload.heap",
                 kind=kind, out=tmp_path / "fig" / "coverage.svg")
    assert [p.name for p in paths] == ["coverage.pdf", "coverage.png"]
    assert paths[0].read_bytes()[:4] == b"%PDF" and paths[1].read_bytes()[:4] == b"\x89PNG"


def test_latency_cdfs_come_from_the_stored_histograms(results: Path, tmp_path: Path) -> None:
    assert main(["plot", str(results), "--kind", "cdf", "--hue", "tenants.0.allocator.madvise",
                 "--out", str(tmp_path / "cdf")]) == 0
    assert (tmp_path / "cdf.pdf").exists() and (tmp_path / "cdf.png").exists()


def test_each_runs_cdf_rises_to_one(results: Path) -> None:
    from clustersim.experiments import load

    curves = cdf_frame(load(results).latency_histograms, ["tenants.0.allocator.madvise"])
    last = curves.sort_values("bucket").groupby("run_id")["cdf"].last()
    assert len(last) == 12 and (abs(last - 1.0) < 1e-12).all()
    assert (curves.groupby("run_id")["cdf"].apply(lambda s: s.is_monotonic_increasing)).all()


def test_an_unknown_column_names_the_available_ones(results: Path, tmp_path: Path) -> None:
    with pytest.raises(PlotError, match=r"--y 'nope' -> a column of the results: run_id, point"):
        plot(results, x="tenants.0.allocator.madvise", y="nope", out=tmp_path / "x")
