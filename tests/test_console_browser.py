"""The ops console in a real browser: Debian's Chromium driven by Playwright against a real
Airflow api-server with the SimpleAuthManager's login on. Log in through Airflow's login page,
open an account's timeline, resolve its uncertain contact through the page's form, and check the
ledger recorded who and why; an anonymous browser is refused. A screenshot of the timeline is
kept as a test artefact (pytest's tmp dir and ``data/artefacts/console-timeline.png``).

Slow and needs a browser: runs only with OUTREACH_TEST_BROWSER=1 and /usr/bin/chromium (.ci/run
installs the Debian package; Playwright never downloads one here).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.airflow_stack_loader import load_stack_module

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("OUTREACH_TEST_BROWSER") != "1" or not CHROMIUM.exists(),
        reason="drives Chromium against a real api-server: set OUTREACH_TEST_BROWSER=1 and "
        "install /usr/bin/chromium",
    ),
]

REPO = Path(__file__).resolve().parent.parent
ARTEFACT = REPO / "data" / "artefacts" / "console-timeline.png"
DAY = dt.date(2026, 11, 23)
USER, ROLE = "ops", "admin"
PASSWORD = "browser-test-password"  # written to the stack's own passwords file, never logged
REASON = "Twilio console shows no such message"
# No background traffic: the test talks to 127.0.0.1 only.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000


@dataclass
class Console:
    """A running api-server with the console plugin, and the app DB behind it."""

    base_url: str
    engine: Engine
    account_ref: str
    uncertain_key: str
    stack: Any


def _ledger_with_one_uncertain_contact(database_url: str) -> tuple[Engine, str, str]:
    """One 5-dpd account planned for DAY with the default ladder; one of its contacts made
    ``uncertain`` as a worker dying mid-send leaves it. Returns (engine, account ref, key)."""
    from outreach.planning.ladder import load_ladder
    from outreach.planning.planner import iter_plan
    from outreach.settings import PROJECT_ROOT
    from tests import factories as f

    engine = f.database(database_url)
    acc = f.add_account(engine, as_of=DAY, dpd=5, emails=[{"value": "jo@example.com",
                                                          "consent": True}])
    f.add_account(engine, as_of=DAY, dpd=12)  # a neighbour: the page must pick the right one
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY,
                       100):
        pass
    planned = [r for r in f.contacts(engine, account_id=acc["account_id"])
               if r["state"] == "planned"]
    assert planned, "the default ladder plans something for a 5-dpd account"
    key = sorted(r["key"] for r in planned)[0]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE contact SET state = 'uncertain', error_code = 'worker_lost' "
                 "WHERE key = :k"),
            {"k": key},
        )
    return engine, acc["account_ref"], key


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    stack_mod = load_stack_module()
    runner = stack_mod.load_airflow_local()
    root = tmp_path_factory.mktemp("console-browser")
    data = root / "data"
    data.mkdir()
    database_url = f"sqlite:///{data / 'outreach.db'}"
    engine, account_ref, key = _ledger_with_one_uncertain_contact(database_url)

    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update({
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": database_url,
        "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
    })
    home = root / "airflow"
    home.mkdir()
    # Our own passwords file, written first: the auth manager keeps a password it finds there.
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}) + "\n")
    env = runner.airflow_env(home, base=base)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    # The api-server alone needs only the metadata DB (no pools, no serialized DAGs).
    with (root / "bootstrap.log").open("w") as log:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300)

    stack = stack_mod.AirflowStack.start(
        env, root / "logs", components=("api-server",), users=f"{USER}:{ROLE}", timeout=120
    )
    try:
        yield Console(stack.api.base_url, engine, account_ref, key, stack)
    except BaseException:
        print(stack.log_tail())
        raise
    finally:
        stack.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _contact(engine: Engine, key: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, outcome, error_detail, claim_token FROM contact WHERE key = :k"),
            {"k": key},
        ).one()
        events = conn.execute(
            text("SELECT source, direction, outcome FROM contact_event WHERE ledger_key = :k"),
            {"k": key},
        ).all()
    return {**row._mapping, "events": [tuple(e) for e in events]}


def _log_in(page: Any, base_url: str) -> None:
    """Airflow's own login page, as a person uses it: type, submit, get the UI's cookie."""
    page.goto(f"{base_url}/auth/login")
    page.locator("input[name=username]").fill(USER)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_function("document.cookie.includes('_token=')", timeout=TIMEOUT_MS)


def test_anonymous_browser_is_refused_on_the_console(console: Console, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        for path in ("/outreach-console/",
                     f"/outreach-console/timeline?account_ref={console.account_ref}"):
            response = page.goto(f"{console.base_url}{path}")
            assert response is not None and response.status == 401, path
            assert console.account_ref not in page.content()
    finally:
        context.close()


@contextmanager
def _another_site(html: str) -> Iterator[str]:
    """A page served from another origin (another loopback port): what an attacker's site
    would serve to a signed-in ops user. Yields its URL."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # quiet: the test reports what matters
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


def test_a_page_on_another_site_cannot_resolve_a_contact_with_the_ops_users_cookie(
    console: Console, browser: Any
) -> None:
    """Runs before the legitimate resolve below, so the contact is still uncertain: an attack
    that worked would change it."""
    action = f"{console.base_url}/outreach-console/open-contacts/resolve"
    api = f"{console.base_url}/outreach-console/api/contacts/{console.uncertain_key}/resolve"
    attack = f"""<!doctype html><html><body>
<form method="post" action="{action}"><input name="key" value="{console.uncertain_key}">
<input name="resolution" value="drop"><input name="reason" value="attacker">
<input name="day" value="{DAY.isoformat()}"></form>
<script>
fetch("{api}", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{resolution: "drop", reason: "attacker"}})}})
  .finally(() => document.forms[0].submit());
</script></body></html>"""
    before = _contact(console.engine, console.uncertain_key)
    assert before["state"] == "uncertain"
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    seen: list[Any] = []
    try:
        page = context.new_page()
        _log_in(page, console.base_url)
        page.on("response", lambda r: seen.append(r) if "/resolve" in r.url else None)
        with _another_site(attack) as evil_url:
            with page.expect_response(lambda r: r.url == action) as posted:
                page.goto(evil_url)
            response = posted.value
            assert response.status == 403, response.status
            # The browser did send the session cookie (another port is the same site): the
            # console refused the request itself, not the cookie's absence.
            assert "_token=" in (response.request.header_value("cookie") or "")
            assert "cross-site request refused" in page.inner_text("body")
        # Both the form post and the script's text/plain fetch reached the console: refused.
        assert sorted((r.url, r.status) for r in seen) == sorted([(action, 403), (api, 403)])
    finally:
        context.close()
    assert _contact(console.engine, console.uncertain_key) == before


def test_ops_user_logs_in_sees_the_uncertain_contact_and_resolves_it(
    console: Console, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, console.base_url)

        home = page.goto(f"{console.base_url}/outreach-console/")
        assert home is not None and home.status == 200
        assert f"signed in as {USER}" in page.inner_text("nav")

        timeline = page.goto(
            f"{console.base_url}/outreach-console/timeline?account_ref={console.account_ref}"
        )
        assert timeline is not None and timeline.status == 200
        assert console.account_ref in page.inner_text("h2")
        states = page.locator("table").first.locator("tr td:nth-child(5)").all_inner_texts()
        assert states.count("uncertain") == 1, states
        shot = tmp_path / "console-timeline.png"
        page.screenshot(path=str(shot), full_page=True)
        ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ARTEFACT)
        print(f"screenshot: {shot} (copied to {ARTEFACT})")
        assert shot.stat().st_size > 10_000  # a rendered page, not an empty canvas

        page.goto(f"{console.base_url}/outreach-console/open-contacts?day={DAY.isoformat()}")
        form = page.locator(
            f"form[action='/outreach-console/open-contacts/resolve']:has("
            f"input[name=key][value='{console.uncertain_key}'])"
        )
        assert form.count() == 1
        form.locator("select[name=resolution]").select_option("mark_not_sent")
        form.locator("input[name=reason]").fill(REASON)
        with page.expect_navigation():
            form.locator("button").click()
        assert "Resolved: the contact is now planned." in page.inner_text("body")
        assert page.locator("form input[name=key]").count() == 0  # nothing left to resolve
    finally:
        context.close()

    row = _contact(console.engine, console.uncertain_key)
    assert row["state"] == "planned"
    assert row["outcome"] == "ops_not_sent"
    assert row["claim_token"] is None
    assert row["error_detail"] == f"ops mark_not_sent by {USER}: {REASON}"
    assert ("ops", "ops", "ops_mark_not_sent") in row["events"]
