"""The ops console app, behind Airflow's real authentication.

Tokens are signed by the installed Airflow's own auth manager (``SimpleAuthManager.generate_jwt``,
the call its login route makes) with a secret set through ``AIRFLOW__API_AUTH__JWT_SECRET``,
and the app checks them with the same manager's ``JWTValidator`` through the core API's
``get_user`` dependency: nothing about authentication is faked. The validator also asks
Airflow's metadata DB whether the token was revoked, so the test creates that one table
(``revoked_token``) in the throwaway Airflow DB that conftest points Airflow at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from outreach.entry.console import console_routes, create_app
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 18, 0)
LADDER = load_ladder(PROJECT_ROOT / "config/ladders/default.yaml")
PHONE = "+12125550188"
EMAIL = "jane.roe@example.com"
SECRET = "console-test-secret-" + "x" * 64  # HS512 wants 64+ bytes


@pytest.fixture
def auth_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real SimpleAuthManager as the api-server would hold it, with a known JWT secret."""
    from airflow import settings as airflow_settings
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", SECRET)
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    # The validator is cached per class: drop any built with another secret.
    BaseAuthManager._get_token_validator.__func__.cache_clear()  # type: ignore[attr-defined]
    RevokedToken.__table__.create(airflow_settings.engine, checkfirst=True)
    previous = airflow_app._AuthManagerState.instance
    airflow_app._AuthManagerState.instance = None
    manager = airflow_app.create_auth_manager()
    yield manager
    airflow_app._AuthManagerState.instance = previous
    BaseAuthManager._get_token_validator.__func__.cache_clear()  # type: ignore[attr-defined]


def bearer(manager: Any, username: str, role: str) -> dict[str, str]:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ledger(app_data: Path) -> dict[str, Any]:
    """One account planned for DAY with the default ladder (real plan rows and decisions)."""
    engine = f.database(f"sqlite:///{app_data / 'outreach.db'}")
    acc = f.add_account(
        engine, as_of=DAY, dpd=5,
        phones=[{"value": PHONE, "type": "mobile", "zones": "America/New_York"}],
        emails=[{"value": EMAIL, "consent": True}],
    )
    f.add_payment(engine, acc["account_id"], DAY - dt.timedelta(days=20), "25.00")
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    rows = f.contacts(engine, account_id=acc["account_id"])
    assert rows, "the default ladder plans something for a 5-dpd account"
    return {"engine": engine, "account": acc, "keys": [r["key"] for r in rows]}


@pytest.fixture
def client(auth_manager: Any, ledger: dict[str, Any]) -> TestClient:
    app: FastAPI = create_app(engine=ledger["engine"], now=lambda: NOW)
    return TestClient(app)


def set_state(engine: Engine, key: str, state: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE contact SET state = :s, error_detail = 'timeout after +12125550188' "
                 "WHERE key = :k"),
            {"s": state, "k": key},
        )


def row(engine: Engine, key: str) -> dict[str, Any]:
    return f.contacts(engine, key=key)[0]


def ops_events(engine: Engine, key: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [
            (r.direction, r.outcome, r.source)
            for r in conn.execute(
                text("SELECT direction, outcome, source FROM contact_event "
                     "WHERE ledger_key = :k ORDER BY id"),
                {"k": key},
            )
        ]


def test_every_console_route_refuses_an_anonymous_request_with_401(client: TestClient) -> None:
    routes = list(console_routes(client.app))  # type: ignore[arg-type]
    assert len(routes) >= 12
    for method, path in routes:
        url = path.replace("{key}", "somekey")
        response = client.request(method, url, params={"account_ref": "A1", "day": "2026-11-23"})
        assert response.status_code == 401, (method, path, response.status_code)


def test_a_token_signed_with_another_secret_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, auth_manager: Any
) -> None:
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    forged = JWTGenerator(secret_key="not-the-secret-" + "y" * 64, valid_for=60,
                          audience="apache-airflow").generate({"sub": "eve", "role": "ADMIN"})
    response = client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code in (401, 403)


def test_the_ui_session_cookie_authenticates_too(client: TestClient, auth_manager: Any) -> None:
    token = bearer(auth_manager, "ana", "VIEWER")["Authorization"].split()[1]
    client.cookies.set("_token", token)
    assert client.get("/api/me").json() == {
        "name": "ana", "personal_data": False, "may_resolve": False}


def test_a_viewer_sees_the_timeline_with_masked_destinations(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    ref = ledger["account"]["account_ref"]
    response = client.get("/api/timeline", params={"account_ref": ref},
                          headers=bearer(auth_manager, "vic", "VIEWER"))
    assert response.status_code == 200
    body = response.json()
    assert body["personal_data"] == "masked"
    assert PHONE not in response.text and EMAIL not in response.text
    assert "Pat Example" not in response.text
    destinations = {c["destination"] for c in body["contacts"]}
    assert destinations & {"+1******0188", "j***@e***.com"}
    # Each contact carries its plan-time gate decision with reasons and pack versions.
    decided = [d for c in body["contacts"] for d in c["decisions"]]
    assert decided and all(d["phase"] == "plan" and d["pack_versions"] for d in decided)
    assert [p["amount"] for p in body["payments"]] == ["25.00"]
    html = client.get("/timeline", params={"account_ref": ref},
                      headers=bearer(auth_manager, "vic", "VIEWER"))
    assert html.status_code == 200 and ref in html.text and PHONE not in html.text


def test_an_admin_sees_full_destinations_and_names(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    ref = ledger["account"]["account_ref"]
    response = client.get("/api/timeline", params={"account_ref": ref},
                          headers=bearer(auth_manager, "ada", "ADMIN"))
    body = response.json()
    assert body["personal_data"] == "shown"
    assert {c["destination"] for c in body["contacts"]} & {PHONE, EMAIL}
    assert body["account"]["name"].startswith("Pat Example")


def test_the_pii_roles_come_from_the_environment(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTREACH_CONSOLE_PII_ROLES", "op")
    ref = ledger["account"]["account_ref"]
    as_op = client.get("/api/timeline", params={"account_ref": ref},
                       headers=bearer(auth_manager, "oli", "OP")).json()
    as_admin = client.get("/api/timeline", params={"account_ref": ref},
                          headers=bearer(auth_manager, "ada", "ADMIN")).json()
    assert (as_op["personal_data"], as_admin["personal_data"]) == ("shown", "masked")


def test_resolving_an_uncertain_contact_records_who_and_why_and_moves_it(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "uncertain")
    listed = client.get("/api/open-contacts", params={"day": DAY.isoformat()},
                        headers=bearer(auth_manager, "vic", "VIEWER")).json()
    assert [c["key"] for c in listed["contacts"]] == [key]
    assert PHONE not in str(listed)  # error text is scrubbed for viewers too
    response = client.post(
        f"/api/contacts/{key}/resolve",
        json={"resolution": "mark_sent", "reason": "Twilio console shows it delivered"},
        headers=bearer(auth_manager, "oli", "OP"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["resolved_by"] == "oli"
    after = row(engine, key)
    assert after["state"] == "sent" and after["sent_at"] == NOW
    assert after["error_detail"] == "ops mark_sent by oli: Twilio console shows it delivered"
    channel = after["channel"]
    outbound = "attempted" if channel == "call" else "sent"
    assert ops_events(engine, key) == [("ops", "ops_mark_sent", "ops"),
                                       ("outbound", outbound, "ops")]


def test_mark_sent_dates_the_message_when_it_was_handed_to_the_provider(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    claimed = NOW - dt.timedelta(hours=3)
    set_state(engine, key, "uncertain")
    with engine.begin() as conn:
        conn.execute(text("UPDATE contact SET claimed_at = :c WHERE key = :k"),
                     {"c": claimed, "k": key})  # fmt: skip
    response = client.post(
        f"/api/contacts/{key}/resolve",
        json={"resolution": "mark_sent", "reason": "provider log shows it"},
        headers=bearer(auth_manager, "oli", "OP"),
    )
    assert response.status_code == 200, response.text
    assert row(engine, key)["sent_at"] == claimed
    with engine.connect() as conn:
        when = dict(
            conn.execute(
                text("SELECT direction, occurred_at FROM contact_event WHERE ledger_key = :k"),
                {"k": key},
            ).all()
        )
    # The message on its own day for the frequency rules; the resolution when it was made.
    assert str(when["outbound"]).startswith(claimed.isoformat(sep=" "))
    assert str(when["ops"]).startswith(NOW.isoformat(sep=" "))


def test_not_sent_goes_back_to_planned_and_drop_suppresses_with_a_reason(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine = ledger["engine"]
    if len(ledger["keys"]) < 2:
        pytest.skip("needs two planned contacts")
    resend, dropped = ledger["keys"][:2]
    set_state(engine, resend, "failed")
    set_state(engine, dropped, "uncertain")
    op = bearer(auth_manager, "oli", "OP")
    for key, resolution in ((resend, "mark_not_sent"), (dropped, "drop")):
        response = client.post(f"/api/contacts/{key}/resolve",
                               json={"resolution": resolution, "reason": "checked with vendor"},
                               headers=op)
        assert response.status_code == 200, response.text
    assert row(engine, resend)["state"] == "planned"
    assert row(engine, resend)["claim_token"] is None
    assert (row(engine, dropped)["state"], row(engine, dropped)["reasons"]) == (
        "suppressed", "ops.dropped")
    # Neither counts as a contact: no outbound event was written.
    assert ops_events(engine, resend) == [("ops", "ops_mark_not_sent", "ops")]
    assert ops_events(engine, dropped) == [("ops", "ops_drop", "ops")]
    board = client.get("/api/suppressions", params={"day": DAY.isoformat()}, headers=op).json()
    assert board["suppressed_by_reason"].get("ops.dropped") == 1


def test_resolving_a_sent_contact_is_refused_with_409_and_changes_nothing(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "sent")
    before = row(engine, key)
    response = client.post(f"/api/contacts/{key}/resolve",
                           json={"resolution": "mark_not_sent", "reason": "try again"},
                           headers=bearer(auth_manager, "ada", "ADMIN"))
    assert response.status_code == 409
    assert row(engine, key) == before
    assert ops_events(engine, key) == []


def test_a_resolve_needs_a_reason_and_a_role_that_may_change_the_ledger(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "uncertain")
    no_reason = client.post(f"/api/contacts/{key}/resolve",
                            json={"resolution": "drop", "reason": "   "},
                            headers=bearer(auth_manager, "ada", "ADMIN"))
    viewer = client.post(f"/api/contacts/{key}/resolve",
                         json={"resolution": "drop", "reason": "because"},
                         headers=bearer(auth_manager, "vic", "VIEWER"))
    assert (no_reason.status_code, viewer.status_code) == (422, 403)
    assert row(engine, key)["state"] == "uncertain"


def test_the_resolve_form_redirects_back_to_the_list(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "uncertain")
    op = bearer(auth_manager, "oli", "OP")
    page = client.get("/open-contacts", params={"day": DAY.isoformat()}, headers=op)
    assert page.status_code == 200 and f'value="{key}"' in page.text
    response = client.post("/open-contacts/resolve", headers=op, follow_redirects=False,
                           data={"key": key, "resolution": "mark_not_sent",
                                 "reason": "not in provider logs", "day": DAY.isoformat()})
    assert response.status_code == 303
    assert response.headers["location"].endswith("open-contacts?day=2026-11-23&done=planned")
    assert row(engine, key)["state"] == "planned"


def test_the_ladder_view_shows_the_active_version_and_checks_a_draft_with_paths(
    client: TestClient, auth_manager: Any
) -> None:
    viewer = bearer(auth_manager, "vic", "VIEWER")
    active = client.get("/api/ladder", headers=viewer).json()
    assert active["version"] == LADDER.version
    assert [s["id"] for s in active["stages"]] == [s.id for s in LADDER.stages]
    draft = "name: broken\nstages:\n  - id: early\n    entry: {dpd_min: 0}\n    actions: []\n"
    checked = client.post("/api/ladder/check", json={"text": draft}, headers=viewer).json()
    assert checked["valid"] is False
    assert {"stages[0].entry.dpd_min", "stages[0].actions"} <= {e["path"]
                                                                for e in checked["errors"]}
    page = client.post("/ladder", data={"draft": "<script>x</script>"}, headers=viewer)
    assert page.status_code == 200 and "<script>x</script>" not in page.text  # autoescaped


EMAIL_REMINDER = """      - id: email_reminder
        channel: email
        template: email/reminder
        cadence: {every_days: 5, max_times: 3}
"""


def test_the_console_diffs_a_draft_against_the_ladder_in_force_without_writing(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any]
) -> None:
    viewer = bearer(auth_manager, "oli", "OP")  # the diff is for the ladder roles
    source = (PROJECT_ROOT / "config/ladders/default.yaml").read_text(encoding="utf-8")
    assert source.count(EMAIL_REMINDER) == 1
    draft = source.replace(EMAIL_REMINDER, "")
    before = f.contacts(ledger["engine"])
    out = client.post("/api/ladder/diff", json={"text": draft, "as_of": DAY.isoformat()},
                      headers=viewer).json()  # fmt: skip
    assert out["check"]["valid"] is True
    diff = out["diff"]
    assert diff["old"]["version"] == LADDER.version != diff["new"]["version"]
    assert diff["accounts"] == 1 and diff["as_of"] == DAY.isoformat()
    # Exactly the removed action's contact, which the draft no longer plans at all.
    [changed] = diff["contacts"]
    assert (changed["stage"], changed["action"], changed["channel"]) == (
        "early_reminder", "email_reminder", "email")
    [(move, n)] = changed["moves"].items()
    assert move.endswith("->none") and n == 1
    assert diff["old"]["steps"] - diff["new"]["steps"] == 1
    assert f.contacts(ledger["engine"]) == before  # nothing written
    assert EMAIL not in str(out) and PHONE not in str(out)

    page = client.post("/ladder", data={"draft": draft, "action": "diff",
                                        "as_of": DAY.isoformat()}, headers=viewer)  # fmt: skip
    assert page.status_code == 200
    assert "What the draft changes on 2026-11-23" in page.text and "email_reminder" in page.text

    broken = client.post("/api/ladder/diff", json={"text": "name: x\nstages: []\n"},
                         headers=viewer).json()  # fmt: skip
    assert broken["diff"] is None and broken["check"]["valid"] is False
    bad_day = client.post("/api/ladder/diff", json={"text": draft, "as_of": "23/11/2026"},
                          headers=viewer)  # fmt: skip
    assert bad_day.status_code == 422


@pytest.mark.parametrize("proxy_prefix", ["", "/airflow"])
def test_links_and_redirects_follow_where_the_console_is_mounted(
    auth_manager: Any, ledger: dict[str, Any], proxy_prefix: str
) -> None:
    parent = FastAPI()
    parent.mount("/outreach-console", create_app(engine=ledger["engine"], now=lambda: NOW))
    client = TestClient(parent, root_path=proxy_prefix)
    op = bearer(auth_manager, "oli", "OP")
    page = client.get(f"{proxy_prefix}/outreach-console/ladder", headers=op)
    assert page.status_code == 200
    base = f"{proxy_prefix}/outreach-console"
    for view in ("timeline", "suppressions", "open-contacts", "ladder"):
        assert f'href="{base}/{view}"' in page.text
    key = ledger["keys"][0]
    set_state(ledger["engine"], key, "failed")
    listed = client.get(f"{base}/open-contacts", params={"day": DAY.isoformat()}, headers=op)
    assert f'action="{base}/open-contacts/resolve"' in listed.text
    done = client.post(f"{base}/open-contacts/resolve", headers=op, follow_redirects=False,
                       data={"key": key, "resolution": "mark_not_sent", "reason": "retry",
                             "day": DAY.isoformat()})  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"{base}/open-contacts?day={DAY.isoformat()}&done=planned"


def test_a_ladder_version_proposed_by_one_user_becomes_active_only_when_another_approves(
    client: TestClient, auth_manager: Any
) -> None:
    source = (PROJECT_ROOT / "config/ladders/default.yaml").read_text(encoding="utf-8")
    draft = source.replace(EMAIL_REMINDER, "")
    oli, ada = bearer(auth_manager, "oli", "OP"), bearer(auth_manager, "ada", "ADMIN")
    viewer = bearer(auth_manager, "vic", "VIEWER")
    assert client.post("/api/ladder/propose", json={"text": draft},
                       headers=viewer).status_code == 403  # fmt: skip
    bad = client.post("/api/ladder/propose", json={"text": "name: x\nstages: []\n"}, headers=oli)
    assert bad.status_code == 422
    proposed = client.post("/api/ladder/propose", json={"text": draft}, headers=oli)
    assert proposed.status_code == 200, proposed.text
    version = proposed.json()["version"]
    assert proposed.json()["state"] == "proposed"
    assert client.get("/api/ladder", headers=viewer).json()["version"] == LADDER.version
    again = client.post("/api/ladder/propose", json={"text": draft}, headers=ada)
    assert again.status_code == 409  # already on record
    # The proposer cannot approve their own version; a viewer may not approve at all.
    own = client.post(f"/api/ladder/versions/{version}/approve", headers=oli)
    assert own.status_code == 409 and "second person" in own.json()["detail"]
    assert client.post(f"/api/ladder/versions/{version}/approve",
                       headers=viewer).status_code == 403  # fmt: skip
    # The approve button is offered to another user with the role, not to the proposer.
    assert 'value="approve"' in client.get("/ladder", headers=ada).text
    assert 'value="approve"' not in client.get("/ladder", headers=oli).text
    page = client.post("/ladder", data={"action": "approve", "version": version}, headers=ada)
    assert f"Version {version} is active." in page.text
    overview = client.get("/api/ladder", headers=viewer).json()
    assert overview["version"] == version
    [record] = [v for v in overview["history"] if v["version"] == version]
    assert (record["state"], record["proposed_by"], record["approved_by"]) == (
        "active", "oli", "ada")


def test_the_plugin_mounts_the_console_and_puts_its_views_in_the_navigation() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "outreach_console_plugin", PROJECT_ROOT / "plugins/outreach_console_plugin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.OutreachConsolePlugin
    assert [a["url_prefix"] for a in plugin.fastapi_apps] == ["/outreach-console"]
    assert {v["destination"] for v in plugin.external_views} == {"nav"}
    assert all(v["href"].startswith("/outreach-console/") for v in plugin.external_views)


def test_the_agents_api_is_behind_the_login_and_an_agent_acts_only_as_themselves(
    client: TestClient, auth_manager: Any
) -> None:
    anonymous = client.post("/agent/tasks/claim", json={"agent": "ops"})
    assert anonymous.status_code == 401
    as_other = client.post("/agent/tasks/claim", json={"agent": "someone_else"},
                           headers=bearer(auth_manager, "ops", "Op"))
    assert as_other.status_code == 403
    as_self = client.post("/agent/tasks/claim", json={"agent": "ops"},
                          headers=bearer(auth_manager, "ops", "Op"))
    assert as_self.status_code in (200, 204)  # the queue of this ledger may be empty


# --- the agents' roles (issue 12, item 1) -------------------------------------------------------

CALLER_PHONE = "+12125550177"


def queue_a_call(engine: Engine, tmp_path: Path) -> str:
    """A 20-dpd account whose validation notice went out, planned for DAY and dispatched to the
    agent queue: one queued call task, due 13:00-02:00 UTC (NOW is inside). Returns its key."""
    from outreach.dispatch.dispatcher import dispatch_range
    from outreach.planning.kinds import build_channel

    f.add_account(engine, as_of=DAY, dpd=20, validation_notice_sent_on=DAY - dt.timedelta(21),
                  phones=[{"value": CALLER_PHONE, "zones": "America/New_York"}])
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    url = engine.url.render_as_string(hide_password=False)
    channel = build_channel("call", {"backend": "agent_queue"},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    dispatch_range(engine, DAY, "call", 0, 10**9, clock="logical", channel_impl=channel)
    with engine.connect() as conn:
        [key] = conn.execute(text("SELECT key FROM call_task WHERE state = 'queued'")).scalars()
    return str(key)


def queue_state(engine: Engine) -> dict[str, list[str]]:
    """What a claim or a disposition could change: tasks, holds, promises, decisions, numbers."""
    tables = ("call_task", "account_hold", "promise", "policy_decision", "contact_point",
              "contact_event")
    with engine.connect() as conn:
        return {t: sorted(repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {t}")))
                for t in tables}


def test_only_agent_roles_may_claim_or_record_and_others_change_nothing(
    client: TestClient, auth_manager: Any, ledger: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = ledger["engine"]
    key = queue_a_call(engine, tmp_path)
    before = queue_state(engine)
    viewer = bearer(auth_manager, "vic", "VIEWER")
    claim = client.post("/agent/tasks/claim", json={"agent": "vic"}, headers=viewer)
    assert claim.status_code == 403 and CALLER_PHONE not in claim.text
    for disposition in ("cease_request", "dispute", "wrong_number", "promise_to_pay"):
        record = client.post(f"/agent/tasks/{key}/disposition", headers=viewer,
                             json={"agent": "vic", "disposition": disposition,
                                   "promise_amount": "10.00", "promise_date": "2026-11-30"})
        assert record.status_code == 403, disposition
    assert queue_state(engine) == before  # nothing claimed, judged, held or invalidated

    op = bearer(auth_manager, "oli", "OP")
    got = client.post("/agent/tasks/claim", json={"agent": "oli"}, headers=op)
    assert got.status_code == 200 and got.json()["dial"] == CALLER_PHONE
    # A viewer cannot record on the task an agent holds either.
    held = queue_state(engine)
    assert client.post(f"/agent/tasks/{key}/disposition", headers=viewer,
                       json={"agent": "vic", "disposition": "cease_request"}).status_code == 403
    assert queue_state(engine) == held
    # The agent roles come from the environment: Op alone, and an admin is no agent.
    monkeypatch.setenv("OUTREACH_CONSOLE_AGENT_ROLES", "op")
    assert client.post("/agent/tasks/claim", json={"agent": "ada"},
                       headers=bearer(auth_manager, "ada", "ADMIN")).status_code == 403
    done = client.post(f"/agent/tasks/{key}/disposition", headers=op,
                       json={"agent": "oli", "disposition": "no_answer"})
    assert done.status_code == 200 and done.json()["status"] == "recorded"


# --- cross-site requests and framing (issue 12, item 2) -----------------------------------------

EVIL = "https://evil.example"
SAME = "http://testserver"  # the TestClient's own origin


def cookie_client(auth_manager: Any, ledger: dict[str, Any], username: str, role: str
                  ) -> TestClient:  # fmt: skip
    """A browser-like client: the UI's ``_token`` cookie, no Authorization header."""
    browser = TestClient(create_app(engine=ledger["engine"], now=lambda: NOW))
    token = bearer(auth_manager, username, role)["Authorization"].split()[1]
    browser.cookies.set("_token", token)
    return browser


def form_token(browser: TestClient, path: str) -> str:
    import re

    page = browser.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page's form carries its token"
    return found.group(1)


def test_a_cross_site_form_post_with_the_session_cookie_is_refused_and_changes_nothing(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "uncertain")
    browser = cookie_client(auth_manager, ledger, "oli", "OP")
    form = {"key": key, "resolution": "drop", "reason": "attacker", "day": DAY.isoformat()}
    before = (row(engine, key), ops_events(engine, key))
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "null"}, {}):  # the last: no token, no origin at all
        refused = browser.post("/open-contacts/resolve", data=form, headers=headers,
                               follow_redirects=False)  # fmt: skip
        assert refused.status_code == 403, headers
    # A token from the page does not make another site's request acceptable either.
    token = form_token(browser, f"/open-contacts?day={DAY.isoformat()}")
    assert browser.post("/open-contacts/resolve", data={**form, "csrf_token": token},
                        headers={"Origin": EVIL}, follow_redirects=False).status_code == 403
    # ... nor a token of another session.
    other = form_token(cookie_client(auth_manager, ledger, "ada", "ADMIN"), "/ladder")
    assert browser.post("/open-contacts/resolve", data={**form, "csrf_token": other},
                        headers={"Origin": SAME}, follow_redirects=False).status_code == 403
    assert (row(engine, key), ops_events(engine, key)) == before
    # The page's own form, posted from the page: accepted.
    done = browser.post("/open-contacts/resolve", data={**form, "csrf_token": token},
                        headers={"Origin": SAME, "Sec-Fetch-Site": "same-origin"},
                        follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and row(engine, key)["state"] == "suppressed"


def test_a_cross_site_ladder_proposal_and_approval_never_reach_the_ladder_in_force(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    source = (PROJECT_ROOT / "config/ladders/default.yaml").read_text(encoding="utf-8")
    draft = source.replace(EMAIL_REMINDER, "")
    oli = cookie_client(auth_manager, ledger, "oli", "OP")
    ada = cookie_client(auth_manager, ledger, "ada", "ADMIN")
    proposed = oli.post("/ladder", data={"action": "propose", "draft": draft},
                        headers={"Origin": EVIL})  # fmt: skip
    assert proposed.status_code == 403
    as_json = oli.post("/api/ladder/propose", content=json_text({"text": draft}),
                       headers={"Origin": EVIL, "Content-Type": "text/plain"})  # fmt: skip
    assert as_json.status_code == 403
    from outreach.planning.ladder_versions import history

    assert history(engine=ledger["engine"]) == []
    # Say a version was on record: a cross-site approval of it is refused just the same.
    token = form_token(oli, "/ladder")
    ok = oli.post("/ladder", data={"action": "propose", "draft": draft, "csrf_token": token},
                  headers={"Origin": SAME})  # fmt: skip
    assert ok.status_code == 200 and "is proposed" in ok.text
    [version] = [v.version for v in history(engine=ledger["engine"])]
    for path, data in ((f"/api/ladder/versions/{version}/approve", None),
                       ("/ladder", {"action": "approve", "version": version})):
        assert ada.post(path, data=data, headers={"Origin": EVIL}).status_code == 403
    overview = ada.get("/api/ladder").json()
    assert overview["version"] == LADDER.version


def json_text(value: Any) -> str:
    import json

    return json.dumps(value)


def test_every_state_changing_route_refuses_a_cross_site_request(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    browser = cookie_client(auth_manager, ledger, "ada", "ADMIN")
    posts = [path for method, path in console_routes(browser.app)  # type: ignore[arg-type]
             if method not in ("GET", "HEAD", "OPTIONS")]
    assert len(posts) >= 9
    for path in posts:
        url = path.replace("{key}", ledger["keys"][0]).replace("{version}", "v1")
        for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}):
            response = browser.post(url, content=json_text({"agent": "ada", "text": "x"}),
                                    headers={**headers, "Content-Type": "text/plain"})
            assert response.status_code == 403, (path, headers, response.status_code)
    # A bearer token is no ambient credential: a script sends it on purpose, without a token.
    api = TestClient(create_app(engine=ledger["engine"], now=lambda: NOW))
    checked = api.post("/api/ladder/check", json={"text": "name: x\n"},
                       headers=bearer(auth_manager, "ada", "ADMIN"))
    assert checked.status_code == 200
    # ... but a browser page on another site that has one is still refused.
    assert api.post("/api/ladder/check", json={"text": "name: x\n"},
                    headers={**bearer(auth_manager, "ada", "ADMIN"), "Origin": EVIL}
                    ).status_code == 403  # fmt: skip


def test_the_json_api_with_the_session_cookie_needs_the_token_header(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine, key = ledger["engine"], ledger["keys"][0]
    set_state(engine, key, "uncertain")
    browser = cookie_client(auth_manager, ledger, "oli", "OP")
    body = {"resolution": "mark_not_sent", "reason": "checked"}
    assert browser.post(f"/api/contacts/{key}/resolve", json=body,
                        headers={"Origin": SAME}).status_code == 403  # fmt: skip
    assert row(engine, key)["state"] == "uncertain"
    token = browser.get("/api/csrf-token").json()["csrf_token"]
    done = browser.post(f"/api/contacts/{key}/resolve", json=body,
                        headers={"Origin": SAME, "X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    assert row(engine, key)["state"] == "planned"


def test_console_responses_may_be_framed_only_by_airflows_own_ui(
    client: TestClient, auth_manager: Any
) -> None:
    op = bearer(auth_manager, "oli", "OP")
    for response in (client.get("/timeline", headers=op), client.get("/ladder", headers=op),
                     client.get("/api/me", headers=op), client.get("/open-contacts")):
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'self'" in policy, (response.url, policy)
        assert response.headers.get("x-frame-options") == "SAMEORIGIN"


def test_the_ladder_diff_is_for_the_ladder_roles_only(
    client: TestClient, auth_manager: Any
) -> None:
    source = (PROJECT_ROOT / "config/ladders/default.yaml").read_text(encoding="utf-8")
    viewer = bearer(auth_manager, "vic", "VIEWER")
    assert client.post("/api/ladder/diff", json={"text": source, "as_of": DAY.isoformat()},
                       headers=viewer).status_code == 403  # fmt: skip
    assert client.post("/ladder", data={"draft": source, "action": "diff"},
                       headers=viewer).status_code == 403  # fmt: skip
    assert 'value="diff"' not in client.get("/ladder", headers=viewer).text
    op = bearer(auth_manager, "oli", "OP")
    assert 'value="diff"' in client.get("/ladder", headers=op).text
    assert client.post("/api/ladder/diff", json={"text": source, "as_of": DAY.isoformat()},
                       headers=op).status_code == 200  # fmt: skip


def test_a_body_over_the_cap_is_refused_with_413_before_any_route_reads_it(
    client: TestClient, auth_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every console route that takes a body (a ladder draft, a form) reads at most the cap
    (OUTREACH_WEBHOOK_MAX_BODY_BYTES, as the webhooks): a signed-in Viewer cannot make the
    api-server, which also serves Airflow, buffer a 2 MB draft, declared or streamed."""
    monkeypatch.setenv("OUTREACH_WEBHOOK_MAX_BODY_BYTES", "65536")
    app: FastAPI = create_app(engine=None, now=lambda: NOW)
    capped = TestClient(app)
    viewer = bearer(auth_manager, "vic", "VIEWER")
    draft = {"text": "name: x\n" + "# padding\n" * 200_000}
    declared = capped.post("/api/ladder/check", json=draft, headers=viewer)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MB with no Content-Length
            yield b"x" * 65536

    streamed = capped.post("/api/ladder/check", content=chunks(),
                           headers={**viewer, "Content-Type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413
    small = capped.post("/api/ladder/check", json={"text": "name: x\n"}, headers=viewer)
    assert small.status_code == 200


# --- arrangements on the account page (issue 15, item 2) ------------------------------------


def test_an_agent_accepts_an_offer_and_only_a_second_person_approves_it(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    engine = ledger["engine"]
    acc = f.add_account(engine, as_of=DAY, dpd=200, balance="5000.00", past_due="900.00")
    page_url = f"/timeline?account_ref={acc['account_ref']}"
    oli = cookie_client(auth_manager, ledger, "oli", "OP")
    page = oli.get(page_url)
    assert page.status_code == 200 and "Offers today" in page.text
    assert "late_settlement" in page.text and "needs a second person" in page.text
    token = form_token(oli, page_url)
    same = {"Origin": SAME, "Sec-Fetch-Site": "same-origin"}
    # The settlement is the last offer (instalment plans first).
    offers = oli.get(page_url).text.count('name="offer" value=')
    form = {"account_ref": acc["account_ref"], "offer": str(offers - 1), "csrf_token": token}
    # A viewer may not; another site may not.
    viewer = cookie_client(auth_manager, ledger, "val", "VIEWER")
    assert viewer.post("/timeline/arrangements/accept", headers=same, follow_redirects=False,
                       data={**form, "csrf_token": viewer.get("/api/csrf-token").json()["csrf_token"]}
                       ).status_code == 403  # fmt: skip
    assert oli.post("/timeline/arrangements/accept", data=form, headers={"Origin": EVIL},
                    follow_redirects=False).status_code == 403  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM arrangement")).scalar_one() == 0
    done = oli.post("/timeline/arrangements/accept", data=form, headers=same,
                    follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "notice=accept+done" in done.headers["location"]
    with engine.connect() as conn:
        ref, state, by = conn.execute(text(
            "SELECT arrangement_ref, state, accepted_by FROM arrangement")).one()  # fmt: skip
    assert (state, by) == ("pending_approval", "oli")
    page = oli.get(page_url)
    assert "Waiting for a second person" in page.text and "Approve (second person)" not in page.text
    approve = {"account_ref": acc["account_ref"], "ref": ref, "csrf_token": token}
    refused = oli.post("/timeline/arrangements/approve", data=approve, headers=same,
                       follow_redirects=False)  # fmt: skip
    assert "refused%3A+same_person" in refused.headers["location"]
    ada = cookie_client(auth_manager, ledger, "ada", "ADMIN")
    page = ada.get(page_url)
    assert "Approve (second person)" in page.text
    approved = ada.post("/timeline/arrangements/approve", headers=same, follow_redirects=False,
                        data={**approve, "csrf_token": form_token(ada, page_url)})  # fmt: skip
    assert approved.status_code == 303 and "approve+done" in approved.headers["location"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state, approved_by FROM arrangement")).one() == (
            "active", "ada")
    page = ada.get(page_url).text
    assert "approved by ada" in page and "pending_approval" in page  # the events table
