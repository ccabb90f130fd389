"""Paper-ready figures: words and units from the label table, one palette per policy, column sizes, PDF fonts.

The sweep is the stand-in simulation's (3 madvise policies x 2 heaps x 2 seeds), stored as a real sweep;
figures are then drawn from the folder with matplotlib's Agg backend and inspected: axis and legend texts,
line and bar colours, the figure's size in inches and the fonts the PDF embeds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex

from clustersim import sweep
from clustersim.cli import main
from clustersim.experiments.fake import FakeSimulate
from clustersim.figures import plot as plot_module
from clustersim.figures.labels import label, parameter_key, value_label
from clustersim.figures.plot import PlotError, plot
from clustersim.figures.style import OKABE_ITO, POLICY_COLOURS, SIZES, colour

MADVISE, HEAP = "tenants.0.allocator.madvise", "tenants.0.workload.heap"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paper") / "r"
    spec = {"name": "small", "seeds": 2,
            "base": {"name": "tiny", "duration": "1m", "kernel": {"proposals": ["madv_splittable"]},
                     "nodes": [{"name": "a", "count": 2, "memory": "16G"}],
                     "tenants": [{"name": "web", "replicas": 2, "workload": {"heap": "2G"}}]},
            "grid": {MADVISE: ["dontneed", "free", "splittable"], HEAP: ["1G", "2G"]}}
    sweep(spec, folder, workers=1, simulate=FakeSimulate(), progress=False)
    return folder


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure plot() saves, kept open for inspection."""
    kept: list[Any] = []
    real_save = plot_module.save

    def keep(figure: Any, out: Path) -> list[Path]:
        kept.append(figure)
        monkeypatch.setattr(plt, "close", lambda *_: None)
        return real_save(figure, out)

    monkeypatch.setattr(plot_module, "save", keep)
    return kept


def test_labels_come_from_the_table_never_key_paths():
    assert parameter_key(MADVISE) == "tenants.allocator.madvise"
    assert label(MADVISE) == "madvise policy" and label("nodes.1.swap.kind") == "swap"
    assert label("thp_coverage") == "THP coverage (%)"
    assert label("thp_coverage", timeseries=True) == "THP coverage (%)"
    assert label("tenants.3.allocator.skip_subrelease_long") == "skip subrelease long"   # no row: words
    assert value_label("free") == "FREE"


def test_bar_figure_axes_legend_and_colours(results: Path, tmp_path: Path, figures: list[Any]):
    plot(results, x=HEAP, y="thp_coverage", hue=MADVISE, kind="bar", out=tmp_path / "bar")
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_xlabel() == "heap per process (bytes)"
    assert ax.get_ylabel() == "THP coverage (%)"
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "madvise policy"
    assert [t.get_text() for t in legend.get_texts()] == ["DONTNEED", "FREE", "SPLITTABLE"]
    # 3 policies x 2 heaps bars; each policy's bars in its palette colour
    bar_colours = {to_hex(p.get_facecolor()) for p in ax.patches if p.get_height() > 0}
    assert bar_colours == {POLICY_COLOURS["dontneed"].lower(), POLICY_COLOURS["free"].lower(),
                           POLICY_COLOURS["splittable"].lower()}


def test_the_same_policy_has_the_same_colour_in_two_figures(results: Path, tmp_path: Path,
                                                            figures: list[Any]):
    # A bar chart and a latency CDF, both hued by madvise policy: FREE is #D55E00 in both.
    plot(results, x=HEAP, y="latency_p99_ms", hue=MADVISE, kind="bar", out=tmp_path / "a")
    plot(results, hue=MADVISE, kind="cdf", out=tmp_path / "b")
    for fig in figures:
        handles = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles,
                                                    strict=True)}
        free = handles["FREE"]
        shown = free.get_facecolor() if hasattr(free, "get_height") else free.get_color()
        assert to_hex(shown) == "#d55e00"
    assert colour("some-new-policy") == colour("some-new-policy") and colour("some-new-policy") in OKABE_ITO


def test_cdf_is_on_a_log_latency_axis(results: Path, tmp_path: Path, figures: list[Any]):
    plot(results, hue=MADVISE, kind="cdf", out=tmp_path / "cdf")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "request latency (ms)"


@pytest.mark.parametrize(("size", "width"), [("one-column", 3.33), ("two-column", 7.0)])
def test_sizes_for_one_and_two_columns(results: Path, tmp_path: Path, figures: list[Any], size: str,
                                       width: float):
    plot(results, x=HEAP, y="thp_coverage", hue=MADVISE, out=tmp_path / "s", size=size)
    w, h = figures[0].get_size_inches()
    assert w == pytest.approx(width, rel=1e-6) and h == pytest.approx(SIZES[size][1], rel=1e-6)


def test_per_axis_overrides_and_legend_title(results: Path, tmp_path: Path, figures: list[Any]):
    plot(results, x=HEAP, y="thp_coverage", hue=MADVISE, out=tmp_path / "o", xlabel="Heap (GiB)",
         legend_title="release advice")
    fig = figures[0]
    assert fig.axes[0].get_xlabel() == "Heap (GiB)"
    assert fig.axes[0].get_ylabel() == "THP coverage (%)"
    assert fig.legends[0].get_title().get_text() == "release advice"


def test_pdf_is_vector_with_embedded_truetype_fonts(results: Path, tmp_path: Path):
    # pdf.fonttype 42: fonts are embedded as TrueType (/FontFile2, /Subtype /TrueType or CIDFontType2),
    # never as Type 3 procedures; the figure itself is paths, not an embedded image.
    pdf, _ = plot(results, x=HEAP, y="thp_coverage", hue=MADVISE, out=tmp_path / "f")
    data = pdf.read_bytes()
    assert b"/FontFile2" in data and b"/Type3" not in data
    assert re.search(rb"/Subtype\s*/(TrueType|CIDFontType2)", data)
    assert b"/Subtype /Image" not in data


def test_timeseries_band_over_seeds(results: Path, tmp_path: Path, figures: list[Any]):
    # 2 seeds per policy: each line has a filled band (a PolyCollection) around the mean.
    plot(results, y="rss_bytes", hue=MADVISE, kind="timeseries", out=tmp_path / "ts")
    ax = figures[0].axes[0]
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "RSS (GiB)"
    assert len(ax.collections) == 3 and len(ax.get_lines()) >= 3


def test_cli_paper_style_is_the_default_and_bad_values_are_named(results: Path, tmp_path: Path):
    assert main(["plot", str(results), "--x", HEAP, "--y", "thp_coverage", "--out", str(tmp_path / "c")]) == 0
    with pytest.raises(PlotError, match="--y 'thp' -> a column of the results: time_s"):
        plot(results, y="thp", kind="timeseries", out=tmp_path / "x")
    with pytest.raises(PlotError, match="style 'poster' -> one of paper, screen"):
        plot(results, x=HEAP, y="thp_coverage", out=tmp_path / "x", style="poster")
