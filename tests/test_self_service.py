"""The self-service page (issue 15 item 6): the link a message carries opens what the account
owes; each answer (a promise, an offer taken, means stated, a dispute, no more texts or emails)
takes effect at once through the services, recorded with actor ``consumer``, and the next plan
shows it; a tampered, expired or unknown link gets one neutral page; the page is rate-limited,
capped and refuses cross-site posts."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from outreach import settings
from outreach.entry.cli import main
from outreach.entry.self_service_app import create_app
from outreach.kernel import clock
from outreach.kernel import self_service_token as tokens
from tests import factories as f

DAY = dt.date(2026, 12, 7)
NOW = dt.datetime(2026, 12, 7, 15, 0)
KEY = "self-service-test-key-0123456789abcdef"
BASE = "https://pay.selfservice.test"


@pytest.fixture
def db(app_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_SELF_SERVICE",
                       json.dumps({"conn_type": "generic", "password": KEY}))  # fmt: skip
    monkeypatch.setenv("OUTREACH_SELF_SERVICE_BASE_URL", BASE)
    with clock.use(NOW):
        yield f.database(settings.database_url())


class Ticker:
    """The rate limiter's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def client(db: Engine, ticker: Ticker) -> TestClient:
    return TestClient(create_app(engine=db, now=lambda: NOW, clock=ticker))


def account(db: Engine, **kw: Any) -> dict[str, Any]:
    kw.setdefault("dpd", 20)
    kw.setdefault("past_due", "240.00")
    kw.setdefault("balance", "1800.00")
    kw.setdefault("validation_notice_sent_on", DAY - dt.timedelta(days=30))
    return f.add_account(db, as_of=DAY, **kw)


def token_for(account_id: int, expires_on: dt.date = DAY + dt.timedelta(days=14)) -> str:
    return tokens.mint(account_id, expires_on, key=KEY)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "the page carries its form token"
    return found.group(1)


def post(client: TestClient, token: str, action: str, **fields: str) -> Any:
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    return client.post(f"/s/{token}/{action}", data={"csrf": csrf_of(page.text), **fields})


def events(db: Engine, account_id: int) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT subject, subject_ref, to_state, actor, reason FROM resolution_event "
            "WHERE account_id = :a ORDER BY id"), {"a": account_id})  # fmt: skip
        return [dict(r._mapping) for r in rows]


def cents(value: Any) -> str:
    """A money column as text (SQLite hands numbers back as float)."""
    return f"{Decimal(str(value)):.2f}"


def plan(capsys: pytest.CaptureFixture[str], day: dt.date, account_ref: str
         ) -> list[dict[str, Any]]:  # fmt: skip
    assert main(["plan", "--as-of", str(day), "--json"]) == 0
    # One JSON object a line (a log line of the settling before it is not one).
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]  # fmt: skip
    return [d for d in lines if d["account_id"] == account_ref]


# --- the page -------------------------------------------------------------------------------


def test_a_good_link_shows_what_is_owed_in_the_persons_language(client: TestClient,
                                                                db: Engine) -> None:  # fmt: skip
    en = account(db)
    zh = account(db, country="CN", region=None, language="zh-CN", address_zones="Asia/Shanghai",
                 past_due="3,456.70".replace(",", ""), balance="12000.00")  # fmt: skip
    page = client.get(f"/s/{token_for(en['account_id'])}")
    assert page.status_code == 200
    assert 'id="past-due">240.00 USD' in page.text and 'id="balance">1,800.00 USD' in page.text
    assert en["account_ref"][-4:] in page.text and "Promise to pay on a date" in page.text
    assert 'href="https://pay.example.invalid/outreach"' in page.text  # "pay now" hands off
    chinese = client.get(f"/s/{token_for(zh['account_id'])}")
    assert "逾期金额" in chinese.text and 'id="past-due">3,456.70 CNY' in chinese.text
    assert '<html lang="zh-CN">' in chinese.text
    # An answer is worded in the person's language unless the page was switched.
    answered = post(client, token_for(zh["account_id"]), "means", income="9000", expenses="4000")
    assert "您的收入和支出已记录" in answered.text
    assert client.post(f"/s/{token_for(zh['account_id'])}/nonsense").status_code == 404
    switched = client.get(f"/s/{token_for(zh['account_id'])}?lang=en")
    assert "Past due" in switched.text and "逾期金额" not in switched.text
    # The offers the calculator allows, each a form of its own.
    assert page.text.count("/offer\"") >= 1
    for name, value in {
        "Content-Security-Policy": "frame-ancestors 'none'", "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
    }.items():  # fmt: skip
        assert value in page.headers[name]


def test_tampered_expired_and_unknown_links_get_one_page_that_reveals_nothing(
        client: TestClient, db: Engine) -> None:  # fmt: skip
    acc = account(db)
    good = token_for(acc["account_id"])
    value, _, signature = good.partition(".")
    other_id = tokens._base36(acc["account_id"] + 1)
    bad = {
        "tampered": f"{other_id}-{value.split('-')[1]}.{signature}",
        "bad signature": f"{value}.{'A' * len(signature)}",
        "expired": token_for(acc["account_id"], DAY - dt.timedelta(days=1)),
        "unknown account": token_for(987654),
        "another key": tokens.mint(acc["account_id"], DAY + dt.timedelta(days=3), key="other"),
        "garbage": "not-a-token",
    }
    pages = {name: client.get(f"/s/{token}") for name, token in bad.items()}
    bodies = {p.text for p in pages.values()}
    assert len(bodies) == 1, "every failure gets the very same page"
    body = bodies.pop()
    assert all(p.status_code == 404 for p in pages.values())
    for secret in (acc["account_ref"], acc["account_ref"][-4:], "240.00", "1,800.00", "Pat",
                   "USD"):  # fmt: skip
        assert secret not in body
    assert "This link cannot be opened" in body and "此链接无法打开" in body
    # An unknown path or a post with a bad link: the same page, nothing recorded.
    assert client.get("/").text == body
    refused = client.post(f"/s/{bad['expired']}/stop", data={"csrf": "x"})
    assert refused.status_code == 404 and refused.text == body
    assert events(db, acc["account_id"]) == []
    # The good link still opens.
    assert client.get(f"/s/{good}").status_code == 200


def test_a_link_expires_after_link_valid_days() -> None:
    sent = dt.datetime(2026, 12, 7, 23, 30)
    token = tokens.mint(42, tokens.expires_on(sent, 14), key=KEY)
    assert tokens.read(token, sent + dt.timedelta(days=14), key=KEY) == 42
    assert tokens.read(token, dt.datetime(2026, 12, 22, 0, 0), key=KEY) is None


# --- the answers ----------------------------------------------------------------------------


def test_a_promise_from_the_page_pauses_the_next_plan_naming_it(
        client: TestClient, db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = account(db)
    token = token_for(acc["account_id"])
    due = DAY + dt.timedelta(days=5)
    answer = post(client, token, "promise", amount="120.50", due_on=str(due), lang="en")
    assert answer.status_code == 200, answer.text
    assert "your promise is recorded" in answer.text
    assert "core.promise_open" in answer.text  # the gate's verdict on the next step
    with db.connect() as conn:
        row = conn.execute(text("SELECT promise_ref, amount, due_on, source, actor, status "
                                "FROM promise WHERE account_id = :a"),
                           {"a": acc["account_id"]}).one()  # fmt: skip
    assert (cents(row.amount), str(row.due_on), row.source, row.actor, row.status) == (
        "120.50", str(due), "self_service", "consumer", "open")
    recorded = events(db, acc["account_id"])
    assert {e["actor"] for e in recorded} == {"consumer"}
    assert any(e["subject"] == "promise" and e["subject_ref"] == row.promise_ref
               for e in recorded)  # fmt: skip
    assert recorded[-1]["to_state"] == "paused" and "core.promise_open" in recorded[-1]["reason"]
    tomorrow = plan(capsys, DAY + dt.timedelta(days=1), acc["account_ref"])
    assert tomorrow and all(d["verdict"] == "block" for d in tomorrow)
    assert all(d["reasons"] == ["core.promise_open"] for d in tomorrow)
    # The page now shows the promise; a second one is refused (promises.max_open: 1).
    assert "You promised to pay" in client.get(f"/s/{token}").text
    again = post(client, token, "promise", amount="10", due_on=str(due))
    assert again.status_code == 422 and "already have an open promise" in again.text


def test_a_promise_too_far_ahead_or_not_an_amount_is_refused_and_nothing_recorded(
        client: TestClient, db: Engine) -> None:  # fmt: skip
    acc = account(db)
    token = token_for(acc["account_id"])
    far = post(client, token, "promise", amount="50", due_on=str(DAY + dt.timedelta(days=60)))
    assert far.status_code == 422 and "too far ahead" in far.text
    for amount in ("-5", "abc", "1.234", "0"):
        bad = post(client, token, "promise", amount=amount, due_on=str(DAY))
        assert bad.status_code == 422 and "amount above zero" in bad.text
    assert events(db, acc["account_id"]) == []


def test_an_offer_taken_on_the_page_is_active_and_pauses_the_next_plan(
        client: TestClient, db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = account(db)
    token = token_for(acc["account_id"])
    page = client.get(f"/s/{token}").text
    terms = re.findall(r'name="terms" value="([^"]+)"', page)
    instalment = next(t for t in terms if t.startswith("instalment:"))
    answer = client.post(f"/s/{token}/offer", data={"csrf": csrf_of(page), "terms": instalment})
    assert answer.status_code == 200 and "your payment plan is active" in answer.text
    assert "core.payment_plan_kept" in answer.text
    with db.connect() as conn:
        row = conn.execute(text("SELECT kind, state, term_months, accepted_via, accepted_by "
                                "FROM arrangement WHERE account_id = :a"),
                           {"a": acc["account_id"]}).one()  # fmt: skip
    kind, term = instalment.split(":")[:2]
    assert tuple(row) == (kind, "active", int(term), "self_service", "consumer")
    tomorrow = plan(capsys, DAY + dt.timedelta(days=1), acc["account_ref"])
    assert tomorrow and all(d["verdict"] == "block" for d in tomorrow)
    assert all("core.payment_plan_kept" in d["reasons"] for d in tomorrow)
    # Terms no longer offered (a page from before) are refused without a change.
    stale = client.post(f"/s/{token}/offer",
                        data={"csrf": csrf_of(page), "terms": "instalment:99:1.00:2026-12-14"})
    assert stale.status_code == 422 and "no longer available" in stale.text


def test_stated_means_size_new_offers_and_record_no_amounts(client: TestClient,
                                                            db: Engine) -> None:  # fmt: skip
    acc = account(db, balance="6000.00", past_due="600.00")
    token = token_for(acc["account_id"])
    before = re.findall(r'name="terms" value="(instalment:[^"]+)"', client.get(f"/s/{token}").text)
    answer = post(client, token, "means", income="2,000", expenses="1900.00")
    assert answer.status_code == 200 and "income and expenses are recorded" in answer.text
    after = re.findall(r'name="terms" value="(instalment:[^"]+)"', answer.text)
    assert after and after != before  # sized to 50 a month of disposable income
    with db.connect() as conn:
        means = conn.execute(text("SELECT monthly_income, monthly_expenses, source FROM "
                                  "stated_means WHERE account_id = :a"),
                             {"a": acc["account_id"]}).one()  # fmt: skip
    assert (cents(means[0]), cents(means[1]), means[2]) == ("2000.00", "1900.00", "self_service")
    [event] = events(db, acc["account_id"])
    assert event["subject"] == "means" and event["actor"] == "consumer"
    assert "2000" not in event["reason"] and "1900" not in event["reason"]


def test_a_dispute_on_the_page_holds_collection(client: TestClient, db: Engine,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = account(db)
    answer = post(client, token_for(acc["account_id"]), "dispute")
    assert answer.status_code == 200 and "Your dispute is recorded" in answer.text
    # The gate's verdict names the dispute (the rule that applies in the validation period).
    assert re.search(r"<code>[a-z_]+\.dispute_[a-z_]+</code>", answer.text)
    with db.connect() as conn:
        holds = conn.execute(text("SELECT kind FROM account_hold WHERE account_id = :a"),
                             {"a": acc["account_id"]}).scalars().all()  # fmt: skip
    assert "dispute" in holds
    assert {e["actor"] for e in events(db, acc["account_id"])} == {"consumer"}
    tomorrow = plan(capsys, DAY + dt.timedelta(days=1), acc["account_ref"])
    # Collection is held; only the dispute's verification letter goes (the ladder's action).
    assert tomorrow and all(d["verdict"] == "block" for d in tomorrow
                            if d["action"] != "verification_letter")  # fmt: skip
    assert [d["verdict"] for d in tomorrow if d["action"] == "verification_letter"] == ["send"]


def test_no_more_texts_or_emails_opts_out_and_suppresses_what_is_queued(
        client: TestClient, db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = account(db, dpd=5, emails=[{"value": "pat@example.com", "consent": True}])
    planned = plan(capsys, DAY, acc["account_ref"])
    assert {d["channel"] for d in planned if d["verdict"] == "send"} >= {"sms", "email"}
    answer = post(client, token_for(acc["account_id"]), "stop", lang="zh-CN")
    assert answer.status_code == 200 and "不再向您发送" in answer.text
    with db.connect() as conn:
        opt_outs = conn.execute(text("SELECT channel, scope, source FROM opt_out WHERE "
                                     "person_id = :p ORDER BY channel"),
                                {"p": acc["person_id"]}).all()  # fmt: skip
        queued = conn.execute(text("SELECT channel, state, reasons FROM contact WHERE "
                                   "account_id = :a AND channel IN ('sms', 'email')"),
                              {"a": acc["account_id"]}).all()  # fmt: skip
    assert [tuple(o) for o in opt_outs] == [("email", "*", "self_service"),
                                            ("sms", "*", "self_service")]  # fmt: skip
    assert queued and all(q.state == "suppressed" and "core.opted_out" in q.reasons
                          for q in queued)  # fmt: skip
    assert events(db, acc["account_id"])[0]["to_state"] == "opted_out"
    assert "不再接收短信和邮件" not in client.get(f"/s/{token_for(acc['account_id'])}").text


# --- the defences ---------------------------------------------------------------------------


def test_a_cross_site_or_unsigned_post_is_refused_and_changes_nothing(
        client: TestClient, db: Engine) -> None:  # fmt: skip
    acc = account(db)
    token = token_for(acc["account_id"])
    csrf = csrf_of(client.get(f"/s/{token}").text)
    attempts = [
        ({"origin": "https://evil.example"}, {"csrf": csrf}),
        ({"sec-fetch-site": "cross-site"}, {"csrf": csrf}),
        ({"origin": "null"}, {"csrf": csrf}),  # only with Fetch Metadata saying same-origin
        ({}, {}),  # no form token
        ({}, {"csrf": "0" * 64}),  # another token's
        ({}, {"csrf": tokens.form_token(token_for(acc["account_id"] + 1), key=KEY)}),
    ]
    for headers, data in attempts:
        refused = client.post(f"/s/{token}/stop", data=data, headers=headers)
        assert refused.status_code == 403, (headers, data)
        assert "could not accept this form" in refused.text
    assert events(db, acc["account_id"]) == []
    same_site = client.post(f"/s/{token}/stop", data={"csrf": csrf},
                            headers={"origin": BASE, "sec-fetch-site": "same-origin"})
    assert same_site.status_code == 200


def test_requests_over_the_limit_get_429_per_link_and_per_address(
        client: TestClient, db: Engine, ticker: Ticker) -> None:  # fmt: skip
    acc = account(db)
    token = token_for(acc["account_id"])
    limit = 20  # self_service.requests_per_minute in config/arrangements.yaml
    for _ in range(limit):
        assert client.get(f"/s/{token}").status_code == 200
    over = client.get(f"/s/{token}")
    assert over.status_code == 429 and over.headers["Retry-After"] == "60"
    assert acc["account_ref"] not in over.text
    ticker.t += 61  # the window slides
    assert client.get(f"/s/{token}").status_code == 200
    # Guessing links from one address: each guess counts against the address.
    ticker.t += 61
    guesses = [client.get(f"/s/guess{i}").status_code for i in range(limit + 1)]
    assert guesses[:limit] == [404] * limit and guesses[limit] == 429


def test_a_body_over_the_cap_is_refused_before_it_is_read(client: TestClient,
                                                          db: Engine) -> None:  # fmt: skip
    acc = account(db)
    response = client.post(f"/s/{token_for(acc['account_id'])}/means",
                           data={"income": "1" * 20_000})  # fmt: skip
    assert response.status_code == 413
    assert events(db, acc["account_id"]) == []


# --- the link in messages -------------------------------------------------------------------


def test_the_dispatched_sms_and_email_carry_a_link_that_opens_the_account(
        client: TestClient, db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from contact_channels.outbox import list_outbox

    acc = account(db, dpd=5, emails=[{"value": "pat@example.com", "consent": True}])
    assert main(["plan", "--as-of", str(DAY)]) == 0
    assert main(["dispatch", "--as-of", str(DAY), "--channel", "sms", "--channel", "email",
                 "--clock", "logical"]) == 0  # fmt: skip
    sent = {r.channel: r for r in list_outbox(settings.outbox_url())}
    assert set(sent) == {"sms", "email"}
    links = {ch: re.findall(re.escape(BASE) + r"/s/[A-Za-z0-9._-]+", r.body_text)
             for ch, r in sent.items()}  # fmt: skip
    assert all(len(found) == 1 for found in links.values()), links
    assert BASE + "/s/" in (sent["email"].body_html or "")
    for [url] in links.values():
        token = url.removeprefix(BASE + "/s/")
        assert tokens.read(token, NOW, key=KEY) == acc["account_id"]
        assert acc["account_ref"] not in url and "pat" not in url
        # Good for link_valid_days (14) from the send, not one day more.
        assert tokens.read(token, NOW + dt.timedelta(days=14), key=KEY) == acc["account_id"]
        assert tokens.read(token, NOW + dt.timedelta(days=15), key=KEY) is None
        assert client.get(f"/s/{token}").status_code == 200


def test_without_a_base_url_messages_carry_the_pay_url_and_without_a_key_links_fail_clearly(
        db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from outreach.planning.messages import message_context, render

    monkeypatch.delenv("OUTREACH_SELF_SERVICE_BASE_URL")
    assert tokens.link(5, NOW, 14) == ""
    context = message_context(full_name="Pat Example", language="en", account_ref="A0000001",
                              amount_past_due=Decimal("10"), balance=Decimal("10"),
                              currency="USD", days_past_due=3, address=None)  # fmt: skip
    sms = render("sms/reminder", "en", "sms", context).text
    assert "Pay or set up a plan: https://pay.testing.invalid" in sms and "/s/" not in sms
    monkeypatch.setenv("OUTREACH_SELF_SERVICE_BASE_URL", BASE)
    monkeypatch.delenv("AIRFLOW_CONN_OUTREACH_SELF_SERVICE")
    with pytest.raises(tokens.SelfServiceSecretMissing, match="outreach_self_service"):
        tokens.link(5, NOW, 14)


def test_a_dispatch_with_a_base_url_and_no_key_sends_nothing_and_names_the_connection(
        db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # fmt: skip
    from contact_channels.outbox import count_outbox

    acc = account(db, dpd=5)
    assert main(["plan", "--as-of", str(DAY)]) == 0
    monkeypatch.delenv("AIRFLOW_CONN_OUTREACH_SELF_SERVICE")
    # Refused before anything is claimed, like every configuration error.
    assert main(["dispatch", "--as-of", str(DAY), "--channel", "sms", "--clock", "logical"]) != 0
    err = capsys.readouterr().err
    assert "OUTREACH_SELF_SERVICE_BASE_URL" in err and "'outreach_self_service'" in err
    assert KEY not in err
    assert main(["config", "check", "--all"]) != 0
    assert "'outreach_self_service'" in capsys.readouterr().err
    assert count_outbox(settings.outbox_url()) == 0
    with db.connect() as conn:
        states = conn.execute(text("SELECT state FROM contact WHERE account_id = :a AND "
                                   "channel = 'sms'"), {"a": acc["account_id"]}).scalars().all()
    assert states == ["planned"]  # still queued: sent once the key is there
