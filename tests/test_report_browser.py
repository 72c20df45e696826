"""The HTML report opened in headless Chromium: every chart draws visible marks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from browser_support import Browser, find_chromium
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.manager import StatsManager
from ufstats.report import write_report

LEGACY_FILE = Path(__file__).parent / "data" / "global_stats.json"
CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="the DevTools pipe needs POSIX file descriptors"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install chromium, or run .ci/install-chromium)",
    ),
]

# Counts, per chart, the marks whose box on the page has an area.
DRAWN_MARKS = """(() => {
  const charts = {};
  for (const svg of document.querySelectorAll("svg.chart")) {
    let drawn = 0;
    for (const mark of svg.querySelectorAll(".mark")) {
      const box = mark.getBoundingClientRect();
      if (box.width > 0 && box.height > 0) drawn += 1;
    }
    charts[svg.id] = drawn;
  }
  return {
    charts: charts,
    scripts: document.querySelectorAll("script").length,
    sections: document.querySelectorAll("main > section").length,
    title: document.title,
    text: document.body.innerText,
  };
})()"""


@pytest.fixture
def browser(tmp_path):
    instance = Browser(CHROMIUM, tmp_path / "chromium-profile")
    yield instance
    instance.close()


def test_legacy_report_charts_drawn(browser, base_path, tmp_path):
    layout = Layout(base_path)
    import_legacy(layout, LEGACY_FILE, "Europe/Kyiv")
    output = tmp_path / "report.html"
    write_report(layout, output)

    page = browser.evaluate_page(output.as_uri(), DRAWN_MARKS)

    # 221 days draw one line per series; 4 clients and 7 workers draw 2 bars each.
    assert page["charts"] == {"chart-daily": 2, "chart-clients": 8, "chart-workers": 14}
    assert page["sections"] == 4
    assert "146\u202f368" in page["text"]
    assert "Олена" in page["text"]


def test_short_range_report_draws_bars(browser, base_path, tmp_path):
    hostile_client = '<script>alert("x")</script>'
    hostile_name = 'Ім\'я "</svg></section><b>'
    manager = StatsManager(base_path, workstation="pc1", spool=False)
    manager.record_analysis(hostile_client, "s1", 12, metadata={"items_count": 30})
    manager.record_analysis("M", "s2", 7)
    manager.record_packing(
        hostile_client, "s1", "w&1", 10, 25, metadata={"duration_seconds": 1800, "worker_name": hostile_name}
    )
    manager.record_packing("M", "s2", "002", 7, 14, metadata={"duration_seconds": 3600})
    manager.close()
    output = tmp_path / "report.html"
    write_report(Layout(base_path), output)

    page = browser.evaluate_page(output.as_uri(), DRAWN_MARKS)

    # One day: one column per series (the report needs at least one day).
    assert page["charts"]["chart-daily"] == 2
    assert page["charts"]["chart-clients"] == 4
    assert page["charts"]["chart-workers"] == 4
    assert page["scripts"] == 0
    assert page["sections"] == 4
    assert hostile_client in page["text"]
    assert hostile_name in page["text"]
