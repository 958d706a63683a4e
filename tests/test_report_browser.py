"""The KPI report in a real browser (Debian's Chromium through Playwright): the HTML file of a
small real run opened from ``file://`` with every http(s) request aborted renders an SVG chart
with visible marks for every KPI group; and the console's dashboard, behind Airflow's login on
a real api-server, shows the same charts. Screenshots are kept in the test's tmp dir and
``data/artefacts/kpi-report.png``.

Slow and needs a browser: runs only with OUTREACH_TEST_BROWSER=1 and /usr/bin/chromium, like
tests/test_console_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_stack_loader import load_stack_module
from tests.report_run import shared_run

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("OUTREACH_TEST_BROWSER") != "1" or not CHROMIUM.exists(),
        reason="drives Chromium: set OUTREACH_TEST_BROWSER=1 and install /usr/bin/chromium",
    ),
]

REPO = Path(__file__).resolve().parent.parent
ARTEFACT = REPO / "data" / "artefacts" / "kpi-report.png"
USER, ROLE = "analyst", "viewer"
PASSWORD = "report-browser-test-password"  # the stack's own passwords file, never logged
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
TIMEOUT_MS = 30_000
# What pygal draws for a value: a bar, a line, a dot.
MARKS = ".plot .series rect.rect, .plot .series path.line, .plot .series circle.dot"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return shared_run(tmp_path_factory.getbasetemp() / "report-run")


@pytest.fixture(scope="module")
def charted(run: dict[str, Any]) -> dict[str, bool]:
    """Per group: whether its chart has a value other than zero to draw (a bar of zero has no
    height)."""
    from outreach.measurement.kpis import compute
    from outreach.measurement.render import charted_metrics
    from outreach.storage.db import engine_for

    report = compute(engine_for(run["env"]["OUTREACH_DATABASE_URL"]), run["first"], run["last"])
    return {
        g.key: any(row.get(m.key) not in (None, 0) for row in g.rows for m in charted_metrics(g))
        for g in report.groups
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _check_charts(page: Any, charted: dict[str, bool]) -> None:
    """Every group's section holds one rendered SVG; a group with something to draw shows
    marks with a real size on screen."""
    sections = page.locator("section.kpi-group")
    keys = [sections.nth(i).get_attribute("data-group") for i in range(sections.count())]
    assert keys == list(charted), "a section per KPI group, in the report's order"
    for i, key in enumerate(keys):
        section = sections.nth(i)
        svg = section.locator("svg")
        assert svg.count() == 1, key
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, (key, box)
        if not charted[key]:
            continue
        sizes = section.locator(MARKS).evaluate_all(
            "els => els.map(e => { const b = e.getBBox(); return [b.width, b.height]; })"
        )
        assert any(w > 0 and h > 0 for w, h in sizes), (key, sizes[:5])


def test_report_file_renders_a_chart_for_every_group_offline(
    run: dict[str, Any], charted: dict[str, bool], browser: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from outreach.entry.cli import main

    for name, value in run["env"].items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "kpi-report.html"
    assert main(["report", "--from", run["first"].isoformat(), "--to",
                 run["last"].isoformat(), "--out", str(out)]) == 0  # fmt: skip
    context = browser.new_context(viewport={"width": 1100, "height": 900}, offline=True)
    context.set_default_timeout(TIMEOUT_MS)
    asked: list[str] = []

    def refuse(route: Any) -> None:
        asked.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(https?|wss?|ftp)://"), refuse)
    try:
        page = context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(out.resolve().as_uri())
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Recovery rate" in page.inner_text("section#headline")
        _check_charts(page, charted)
        shot = tmp_path / "kpi-report.png"
        page.screenshot(path=str(shot), full_page=True)
        ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ARTEFACT)
        print(f"screenshot: {shot} (copied to {ARTEFACT})")
        assert shot.stat().st_size > 50_000
    finally:
        context.close()
    assert asked == [] and failed == [], "the page asked for nothing outside itself"


def test_chinese_report_file_renders_its_labels(
    run: dict[str, Any], charted: dict[str, bool], browser: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from outreach.entry.cli import main

    for name, value in run["env"].items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "kpi-report-zh.html"
    assert main(["report", "--from", run["first"].isoformat(), "--to",
                 run["last"].isoformat(), "--out", str(out), "--lang", "zh-CN"]) == 0  # fmt: skip
    context = browser.new_context(viewport={"width": 1100, "height": 900}, offline=True)
    try:
        page = context.new_page()
        page.goto(out.resolve().as_uri())
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("h1").inner_text() == "催收关键指标报告"
        # Chart titles in Chinese too (the SVG's own text).
        first = page.locator("section.kpi-group").first
        assert "按" in first.locator("svg text.title").first.text_content()
        _check_charts(page, charted)
        page.screenshot(path=str(tmp_path / "kpi-report-zh.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture(scope="module")
def console(run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real api-server with the console plugin over the run's database; its base URL."""
    stack_mod = load_stack_module()
    runner = stack_mod.load_airflow_local()
    root = tmp_path_factory.mktemp("report-console")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(run["env"])
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    home = root / "airflow"
    home.mkdir()
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}) + "\n")
    env = runner.airflow_env(home, base=base)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    with (root / "bootstrap.log").open("w") as log:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300)  # fmt: skip
    stack = stack_mod.AirflowStack.start(
        env, root / "logs", components=("api-server",), users=f"{USER}:{ROLE}", timeout=120
    )
    try:
        yield stack.api.base_url
    except BaseException:
        print(stack.log_tail())
        raise
    finally:
        stack.stop()


def test_console_dashboard_shows_the_same_charts(
    run: dict[str, Any], charted: dict[str, bool], console: str, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{console}/auth/login")
        page.locator("input[name=username]").fill(USER)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_function("document.cookie.includes('_token=')", timeout=TIMEOUT_MS)
        home = page.goto(f"{console}/outreach-console/")
        assert home is not None and home.status == 200
        page.locator("nav a", has_text="Dashboard").click()
        page.wait_for_url(re.compile(r"/outreach-console/dashboard"))
        # Choose the run's period in the page's form.
        page.locator("input[name=from]").fill(run["first"].isoformat())
        page.locator("input[name=to]").fill(run["last"].isoformat())
        with page.expect_navigation():
            page.locator("form button[type=submit]").click()
        assert f"from={run['first'].isoformat()}" in page.url
        _check_charts(page, charted)
        page.screenshot(path=str(tmp_path / "console-dashboard.png"), full_page=True)
    finally:
        context.close()
