"""The self-service page in a real browser: Debian's Chromium driven by Playwright against the app
under a real uvicorn on 127.0.0.1. A small portfolio is planned and its SMS dispatched to the
outbox; the link is taken from the SMS as sent, opened on a phone-sized screen, an offer is
picked, and the account's next plan is paused by the arrangement. A tampered and an expired link
get the page that reveals nothing; another site's form cannot post an answer.

Needs a browser: runs only with OUTREACH_TEST_BROWSER=1 and /usr/bin/chromium (.ci/run installs
the Debian package and runs ``-m browser``; Playwright never downloads one here).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("OUTREACH_TEST_BROWSER") != "1" or not CHROMIUM.exists(),
        reason="drives Chromium against the self-service app: set OUTREACH_TEST_BROWSER=1 and "
        "install /usr/bin/chromium",
    ),
]

DAY = dt.date(2026, 12, 7)
NOW = dt.datetime(2026, 12, 7, 15, 0)
KEY = "browser-test-self-service-key-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    base_url: str
    engine: Engine
    account: dict[str, Any]
    sms_body: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import uvicorn

    from contact_channels.outbox import list_outbox
    from outreach import settings
    from outreach.entry.cli import main
    from outreach.entry.self_service_app import create_app
    from outreach.kernel import clock
    from tests import factories as f

    data = tmp_path_factory.mktemp("self-service-browser") / "data"
    data.mkdir()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env, clock.use(NOW):
        env.setenv("OUTREACH_DATA_DIR", str(data))
        env.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{data / 'outreach.db'}")
        env.setenv("OUTREACH_OUTBOX_URL", f"sqlite:///{data / 'outbox.db'}")
        env.setenv("OUTREACH_SELF_SERVICE_BASE_URL", base_url)
        env.setenv("AIRFLOW_CONN_OUTREACH_SELF_SERVICE",
                   json.dumps({"conn_type": "generic", "password": KEY}))  # fmt: skip
        engine = f.database(settings.database_url())
        notice = {"validation_notice_sent_on": DAY - dt.timedelta(days=30)}
        account = f.add_account(engine, as_of=DAY, dpd=5, past_due="240.00", balance="1800.00",
                                **notice)  # fmt: skip
        f.add_account(engine, as_of=DAY, dpd=9, **notice)  # neighbours: the link must pick it
        f.add_account(engine, as_of=DAY, dpd=7, country="CN", region=None, language="zh-CN",
                      address_zones="Asia/Shanghai")  # fmt: skip
        assert main(["plan", "--as-of", str(DAY)]) == 0
        assert main(["dispatch", "--as-of", str(DAY), "--channel", "sms",
                     "--clock", "logical"]) == 0  # fmt: skip
        phone = next(iter(_phones(engine, account["person_id"])))
        [sms] = [r for r in list_outbox(settings.outbox_url(), channel="sms")
                 if r.destination == phone]  # fmt: skip

        server = uvicorn.Server(uvicorn.Config(
            create_app(engine=engine, now=lambda: NOW), host="127.0.0.1", port=port,
            log_level="warning", lifespan="off",
        ))  # fmt: skip
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield Site(base_url, engine, account, sms.body_text)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()


def _phones(engine: Engine, person_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(
            text("SELECT value FROM contact_point WHERE person_id = :p AND kind = 'phone'"),
            {"p": person_id},
        ).scalars())  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _link(site: Site) -> str:
    found = re.findall(re.escape(site.base_url) + r"/s/[A-Za-z0-9._-]+", site.sms_body)
    assert len(found) == 1, site.sms_body
    return str(found[0])


def _events(engine: Engine, account_id: int) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT subject, to_state, actor FROM resolution_event WHERE account_id = :a "
            "ORDER BY id"), {"a": account_id})]  # fmt: skip


def _next_plan(account_ref: str) -> list[dict[str, Any]]:
    import io
    from contextlib import redirect_stdout

    from outreach.entry.cli import main
    from outreach.kernel import clock

    out = io.StringIO()
    with clock.use(NOW), redirect_stdout(out):
        assert main(["plan", "--as-of", str(DAY + dt.timedelta(days=1)), "--json"]) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [d for d in lines if d["account_id"] == account_ref]


@contextmanager
def _another_site(html: str) -> Iterator[str]:
    """A page served from another origin (another loopback port)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_tampered_and_expired_links_get_the_page_that_reveals_nothing(site: Site,
                                                                      browser: Any) -> None:  # fmt: skip
    from outreach.kernel import self_service_token as tokens

    link = _link(site)
    token = link.rsplit("/", 1)[1]
    value, _, signature = token.partition(".")
    tampered = f"{site.base_url}/s/{value}.{signature[::-1]}"
    expired = (f"{site.base_url}/s/"
               + tokens.mint(site.account["account_id"], DAY - dt.timedelta(days=1), key=KEY))
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        seen = []
        for url in (tampered, expired):
            response = page.goto(url)
            assert response is not None and response.status == 404
            body = page.inner_text("body")
            seen.append(body)
            assert "This link cannot be opened" in body
            for secret in (site.account["account_ref"][-4:], "240.00", "1,800.00", "USD"):
                assert secret not in page.content()
        assert seen[0] == seen[1]
    finally:
        context.close()


def test_another_sites_form_cannot_post_an_answer(site: Site, browser: Any) -> None:
    link = _link(site)
    attack = f"""<!doctype html><html><body>
<form method="post" action="{link}/stop"><input name="csrf" value="{'0' * 64}"></form>
<script>document.forms[0].submit();</script></body></html>"""
    before = _events(site.engine, site.account["account_id"])
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        with _another_site(attack) as evil:
            with page.expect_response(lambda r: r.url == f"{link}/stop") as posted:
                page.goto(evil)
            assert posted.value.status == 403
    finally:
        context.close()
    assert _events(site.engine, site.account["account_id"]) == before


def test_the_link_in_the_sms_opens_the_page_an_offer_is_picked_and_the_next_plan_pauses(
        site: Site, browser: Any, tmp_path: Path) -> None:  # fmt: skip
    link = _link(site)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert page.inner_text("#past-due") == "240.00 USD"
        assert page.inner_text("#balance") == "1,800.00 USD"
        # Mobile first: nothing wider than the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(tmp_path / "self-service.png"), full_page=True)
        offer = page.locator("li.offer").first
        terms = offer.locator("input[name=terms]").get_attribute("value")
        assert terms and terms.startswith(("instalment:", "settlement:"))
        with page.expect_navigation():
            offer.locator("button.offer-choose").tap()
        assert page.locator("#answer").count() == 1, page.content()[-3000:]
        assert "your payment plan is active" in page.inner_text("#answer")
        assert "core.payment_plan_kept" in page.inner_text("#answer")
        # The language switch: the same account, in Chinese.
        page.goto(link + "?lang=zh-CN")
        assert "逾期金额" in page.inner_text("body") and "您的还款计划" in page.inner_text("body")
    finally:
        context.close()
    with site.engine.connect() as conn:
        row = conn.execute(text("SELECT state, accepted_via, accepted_by FROM arrangement "
                                "WHERE account_id = :a"),
                           {"a": site.account["account_id"]}).one()  # fmt: skip
    assert tuple(row) == ("active", "self_service", "consumer")
    assert ("arrangement", "active", "consumer") in _events(site.engine,
                                                             site.account["account_id"])
    nxt = _next_plan(site.account["account_ref"])
    assert nxt and all(d["verdict"] == "block" for d in nxt)
    assert all("core.payment_plan_kept" in d["reasons"] for d in nxt)
