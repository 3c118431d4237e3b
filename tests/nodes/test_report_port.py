"""Report values: save/load round trip through ReportPort and the self-contained HTML page."""
from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from polars.testing import assert_frame_equal  # noqa: E402

from engine.ports import Report, ReportPort  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def figure(points: list[float]):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(points)
    return fig


@pytest.fixture
def report() -> Report:
    rep = Report(title="模型评估 <Q3> & 'risk'", kind="evaluation")
    rep.metrics = {"problem_type": "binary", "auc": 0.8123456789, "ks": 0.45, "rows": 1000, "坏账率": 0.05}
    rep.tables["Confusion matrix"] = pl.DataFrame({"actual": ["0", "1"], "predicted 0": [700, 50],
                                                   "predicted 1": [200, 50]})
    rep.tables["A <b>deciles</b>"] = pl.DataFrame({"decile": [1, 2], "bad rate": [0.1, None], "note": ["<i>", "ok"]})
    rep.add_figure("ROC curve", figure([0, 0.7, 1]))
    rep.add_figure("KS <curve>", figure([0, 0.4, 0.1]))
    rep.notes.append("Threshold 0.5 <default>")
    return rep


def test_add_figure_stores_png_and_closes_the_figure():
    rep = Report(title="t")
    fig = figure([1, 2])
    rep.add_figure("f", fig)
    assert rep.figures["f"].startswith(PNG_MAGIC)
    assert not plt.fignum_exists(fig.number)


def test_round_trip(report, tmp_path):
    ReportPort.check(report)
    ReportPort.save(report, tmp_path)
    loaded = ReportPort.load(tmp_path)

    assert loaded.title == report.title
    assert loaded.kind == report.kind
    assert loaded.metrics == report.metrics
    assert loaded.notes == report.notes
    assert set(loaded.tables) == set(report.tables)
    for name, table in report.tables.items():
        assert_frame_equal(loaded.tables[name], table)
    assert loaded.figures == report.figures
    assert all(png.startswith(PNG_MAGIC) for png in loaded.figures.values())


def test_round_trip_of_an_empty_report(tmp_path):
    ReportPort.save(Report(title="empty"), tmp_path)
    loaded = ReportPort.load(tmp_path)
    assert (loaded.title, loaded.metrics, loaded.tables, loaded.figures, loaded.notes) == ("empty", {}, {}, {}, [])


def test_check_rejects_other_values():
    with pytest.raises(TypeError):
        ReportPort.check({"auc": 0.5})


def test_html_is_one_self_contained_page(report):
    page = report.to_html()
    assert page.lower().startswith("<!doctype html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    for metric in report.metrics:
        assert metric in page
    assert "0.8123" in page  # floats shown with 4 decimals
    # nothing fetched from elsewhere: no scripts, stylesheets or remote images
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|//|file:)", page, re.I)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert sorted(base64.b64decode(i) for i in images) == sorted(report.figures.values())


def test_html_escapes_titles_names_cells_and_notes(report):
    page = report.to_html()
    assert "<Q3>" not in page
    assert "模型评估 &lt;Q3&gt; &amp; &#x27;risk&#x27;" in page
    assert "A &lt;b&gt;deciles&lt;/b&gt;" in page and "<b>deciles" not in page
    assert "KS &lt;curve&gt;" in page and "KS <curve>" not in page
    assert "&lt;i&gt;" in page and "<i>" not in page
    assert "Threshold 0.5 &lt;default&gt;" in page


def test_html_after_round_trip_has_the_same_content(report, tmp_path):
    ReportPort.save(report, tmp_path)
    page = ReportPort.load(tmp_path).to_html()
    for metric in report.metrics:
        assert metric in page
    assert len(re.findall(r"data:image/png;base64,", page)) == len(report.figures)
