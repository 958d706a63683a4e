"""Provider callbacks and inbound messages on a real database (outreach.dispatch.callbacks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from outreach.dispatch.callbacks import (
    DEFAULT_HELP_TEXT,
    DEFAULT_STOP_TEXT,
    apply_inbound_sms,
    apply_sendgrid_events,
    apply_twilio_status,
)
from outreach.storage.db import make_engine
from outreach.storage.models import Contact
from tests import factories as f

DAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 15, 0)


def clock() -> dt.datetime:
    return NOW


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Each test on SQLite, and on PostgreSQL when ``OUTREACH_TEST_POSTGRES_URL`` is set."""
    if request.param == "sqlite":
        return f.database(f"sqlite:///{tmp_path / 'app.db'}")
    url = request.getfixturevalue("postgres_url")
    scratch = make_engine(url)
    with scratch.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    scratch.dispose()
    return f.database(url)


def person(engine: Engine, phone: str, email: str | None = None) -> dict[str, Any]:
    return f.add_account(
        engine, as_of=DAY,
        phones=[{"value": phone, "type": "mobile", "zones": "America/New_York"}],
        emails=[email] if email else [],
    )  # fmt: skip


def add_contact(engine: Engine, acc: dict[str, Any], channel: str, point: str, state: str,
                key: str, **columns: Any) -> str:
    with engine.begin() as conn:
        conn.execute(insert(Contact).values(
            key=key, account_id=acc["account_id"], episode=DAY, stage="early", action=channel,
            slot=1, channel=channel, contact_point_id=acc["points"][point], template="t",
            plan_date=DAY, state=state, verdict="send", reasons="", config_version="v1",
            pack_versions="core@1", attempts=1 if state != "planned" else 0,
            claimed_at=NOW - dt.timedelta(hours=1) if state != "planned" else None,
            updated_at=NOW, **columns))
    return key


def row(engine: Engine, key: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM contact WHERE key = :k"), {"k": key})
                    .one()._mapping)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def snapshot(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(
            tuple(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")))
            for t in ("contact", "contact_event", "opt_out", "contact_point", "policy_decision")
        )


def status(sid: str, state: str, code: str | None = None) -> dict[str, str]:
    params = {"MessageSid": sid, "MessageStatus": state, "AccountSid": "ACtest"}
    if code:
        params["ErrorCode"] = code
    return params


# --- Twilio status callbacks ---------------------------------------------------------------


def test_delivered_callback_resolves_an_uncertain_sms_once(engine: Engine) -> None:
    acc = person(engine, "+14155550101")
    key = add_contact(engine, acc, "sms", "phone0", "uncertain", "k" * 32)
    assert apply_twilio_status(engine, status("SM1", "delivered"), key, now=clock) == "applied"
    r = row(engine, key)
    assert (r["state"], r["provider_id"], r["outcome"], r["backend"]) == (
        "sent", "SM1", "delivered", "twilio")
    # The send now counts as an outbound contact (the frequency rules read it); the report not.
    assert scalar(engine, "SELECT COUNT(*) FROM contact_event WHERE direction = 'outbound'") == 1
    assert scalar(engine, "SELECT COUNT(*) FROM contact_event WHERE direction = 'status'") == 1
    before = snapshot(engine)
    assert apply_twilio_status(engine, status("SM1", "delivered"), key, now=clock) == "duplicate"
    assert snapshot(engine) == before


def test_failed_callback_fails_an_uncertain_sms_but_never_moves_a_sent_one_back(
        engine: Engine) -> None:
    acc = person(engine, "+14155550102")
    doubt = add_contact(engine, acc, "sms", "phone0", "uncertain", "a" * 32)
    sent = add_contact(engine, acc, "sms", "phone0", "sent", "b" * 32, provider_id="SM3")
    apply_twilio_status(engine, status("SM2", "failed", "30003"), doubt, now=clock)
    apply_twilio_status(engine, status("SM3", "undelivered", "30003"), sent, now=clock)
    assert (row(engine, doubt)["state"], row(engine, doubt)["error_code"]) == ("failed", "30003")
    r = row(engine, sent)
    assert (r["state"], r["outcome"], r["error_code"]) == ("sent", "undelivered", "30003")
    # A delivered report arriving late does not revive the failed one either.
    apply_twilio_status(engine, status("SM2", "delivered"), doubt, now=clock)
    assert row(engine, doubt)["state"] == "failed"


def test_permanent_twilio_errors_update_the_contact_point(engine: Engine) -> None:
    a = person(engine, "+14155550103")
    b = person(engine, "+14155550104")
    ka = add_contact(engine, a, "sms", "phone0", "uncertain", "c" * 32)
    queued = add_contact(engine, a, "sms", "phone0", "planned", "d" * 32)
    kb = add_contact(engine, b, "sms", "phone0", "uncertain", "e" * 32)
    apply_twilio_status(engine, status("SM4", "failed", "21610"), ka, now=clock)
    apply_twilio_status(engine, status("SM5", "failed", "21211"), kb, now=clock)
    assert scalar(engine, "SELECT scope FROM opt_out WHERE person_id = :p AND channel = 'sms'",
                  p=a["person_id"]) == str(a["points"]["phone0"])
    assert row(engine, queued)["state"] == "suppressed"
    assert scalar(engine, "SELECT valid FROM contact_point WHERE id = :i",
                  i=b["points"]["phone0"]) in (0, False)
    assert scalar(engine, "SELECT valid FROM contact_point WHERE id = :i",
                  i=a["points"]["phone0"]) in (1, True)


def test_callbacks_without_a_known_key_or_with_other_statuses_change_nothing(
        engine: Engine) -> None:
    acc = person(engine, "+14155550105")
    key = add_contact(engine, acc, "sms", "phone0", "uncertain", "f" * 32)
    before = snapshot(engine)
    assert apply_twilio_status(engine, status("SM6", "delivered"), "0" * 32, now=clock) == "unknown"
    assert apply_twilio_status(engine, status("SM6", "delivered"), None, now=clock) == "unknown"
    assert apply_twilio_status(engine, status("SM6", "queued"), key, now=clock) == "ignored"
    assert snapshot(engine) == before


# --- Inbound SMS ------------------------------------------------------------------------------


def inbound(sid: str, sender: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "From": sender, "To": "+18005550000", "Body": body}


@pytest.mark.parametrize("body", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT",
                                  "revoke", "opt out", "please stop texting me"])
def test_stop_words_record_an_opt_out_and_suppress_queued_sms_to_that_number_only(
        engine: Engine, body: str) -> None:
    me = f.add_account(engine, as_of=DAY, phones=[
        {"value": "+14155550110", "zones": "America/New_York"},
        {"value": "+14155550111", "zones": "America/New_York"}])
    other = person(engine, "+14155550112")
    mine = add_contact(engine, me, "sms", "phone0", "planned", "1" * 32)
    later = add_contact(engine, me, "sms", "phone0", "deferred", "2" * 32)
    my_other_number = add_contact(engine, me, "sms", "phone1", "planned", "3" * 32)
    my_call = add_contact(engine, me, "call", "phone0", "planned", "4" * 32)
    theirs = add_contact(engine, other, "sms", "phone0", "planned", "5" * 32)
    result = apply_inbound_sms(engine, inbound("SMin1", "+14155550110", body), now=clock)
    assert result.label == "stop" and result.reply == DEFAULT_STOP_TEXT
    assert result.suppressed == 2
    with engine.connect() as conn:
        opt_outs = conn.execute(text("SELECT person_id, channel, scope, recorded_at FROM opt_out")
                                ).all()
    assert [(o[0], o[1], o[2]) for o in opt_outs] == [
        (me["person_id"], "sms", str(me["points"]["phone0"]))]
    for key in (mine, later):
        r = row(engine, key)
        assert (r["state"], r["verdict"], r["reasons"]) == ("suppressed", "block", "core.opted_out")
    for key in (my_other_number, my_call, theirs):
        assert row(engine, key)["state"] == "planned"
    assert scalar(engine, "SELECT COUNT(*) FROM policy_decision WHERE phase = 'send' AND "
                  "verdict = 'block' AND reasons = 'core.opted_out'") == 2
    assert scalar(engine, "SELECT outcome FROM contact_event WHERE direction = 'inbound'") == "opt_out"


def test_a_replayed_stop_changes_nothing_and_is_not_confirmed_twice(engine: Engine) -> None:
    me = person(engine, "+14155550120")
    add_contact(engine, me, "sms", "phone0", "planned", "6" * 32)
    first = apply_inbound_sms(engine, inbound("SMin2", "+14155550120", "STOP"), now=clock)
    assert first.reply == DEFAULT_STOP_TEXT
    before = snapshot(engine)
    again = apply_inbound_sms(engine, inbound("SMin2", "+14155550120", "STOP"), now=clock)
    assert again.duplicate and again.reply is None
    assert snapshot(engine) == before


def test_start_re_opts_in_and_help_answers(engine: Engine) -> None:
    me = person(engine, "+14155550130")
    apply_inbound_sms(engine, inbound("SMin3", "+14155550130", "STOP"), now=clock)
    assert scalar(engine, "SELECT COUNT(*) FROM opt_out") == 1
    start = apply_inbound_sms(engine, inbound("SMin4", "+14155550130", "START"), now=clock)
    assert start.label == "start" and "STOP" in (start.reply or "")
    assert scalar(engine, "SELECT COUNT(*) FROM opt_out") == 0
    helped = apply_inbound_sms(engine, inbound("SMin5", "+14155550130", "HELP"), now=clock)
    assert helped.reply == DEFAULT_HELP_TEXT
    custom = apply_inbound_sms(engine, inbound("SMin6", "+14155550130", "info"), now=clock,
                               texts={"help": "Call 1-800-555-0000.", "stop": "x", "start": "y"})
    assert custom.reply == "Call 1-800-555-0000."
    outcomes = [r[0] for r in _events(engine, me)]
    assert outcomes == ["opt_out", "opt_in", "help", "help"]


def _events(engine: Engine, acc: dict[str, Any]) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT outcome FROM contact_event WHERE account_id = :a "
                                 "AND direction = 'inbound' ORDER BY id"),
                            {"a": acc["account_id"]}).all()


def test_stop_naming_calls_also_stops_calls(engine: Engine) -> None:
    me = person(engine, "+14155550140")
    call = add_contact(engine, me, "call", "phone0", "planned", "7" * 32)
    result = apply_inbound_sms(engine, inbound("SMin7", "+14155550140",
                                               "please stop calling me"), now=clock)
    assert result.opt_out_channels == ["sms", "call"]
    assert scalar(engine, "SELECT scope FROM opt_out WHERE channel = 'call'") == "*"
    assert row(engine, call)["state"] == "suppressed"


def test_an_ordinary_reply_is_recorded_for_a_person_without_an_answer(engine: Engine) -> None:
    me = person(engine, "+14155550150")
    result = apply_inbound_sms(engine, inbound("SMin8", "+14155550150",
                                               "I can't stop by today"), now=clock)
    assert result.label is None and result.reply is None
    assert [r[0] for r in _events(engine, me)] == ["reply"]
    assert scalar(engine, "SELECT COUNT(*) FROM opt_out") == 0


def test_twilio_advanced_opt_out_type_counts_when_our_reading_finds_nothing(
        engine: Engine) -> None:
    me = person(engine, "+14155550155")
    result = apply_inbound_sms(engine, {**inbound("SMin11", "+14155550155", "arrêt"),
                                        "OptOutType": "STOP"}, now=clock)
    assert result.label == "stop"
    assert scalar(engine, "SELECT person_id FROM opt_out") == me["person_id"]


def test_a_number_shared_by_two_people_opts_out_for_both(engine: Engine) -> None:
    a = person(engine, "+14155550160")
    b = person(engine, "+14155550160")
    result = apply_inbound_sms(engine, inbound("SMin9", "+14155550160", "STOP"), now=clock)
    assert result.accounts == 2
    assert scalar(engine, "SELECT COUNT(*) FROM opt_out WHERE person_id IN (:a, :b)",
                  a=a["person_id"], b=b["person_id"]) == 2


def test_unknown_numbers_change_nothing(engine: Engine) -> None:
    person(engine, "+14155550170")
    before = snapshot(engine)
    result = apply_inbound_sms(engine, inbound("SMin10", "+19999999999", "STOP"), now=clock)
    assert result.accounts == 0 and snapshot(engine) == before


# --- SendGrid events ------------------------------------------------------------------------


def sg(event: str, eid: str, email: str, key: str | None = None, **more: Any) -> dict[str, Any]:
    e = {"event": event, "sg_event_id": eid, "sg_message_id": "msg1.filter", "email": email,
         "timestamp": 1795000000, **more}
    if key:
        e["ledger_key"] = key
    return e


def test_sendgrid_delivered_resolves_uncertain_and_replays_change_nothing(engine: Engine) -> None:
    acc = person(engine, "+14155550180", "pat@example.com")
    key = add_contact(engine, acc, "email", "email0", "uncertain", "8" * 32)
    result = apply_sendgrid_events(engine, [sg("delivered", "ev1", "pat@example.com", key)],
                                   now=clock)
    assert result.applied == 1
    r = row(engine, key)
    assert (r["state"], r["outcome"], r["provider_id"]) == ("sent", "delivered", "msg1.filter")
    before = snapshot(engine)
    again = apply_sendgrid_events(engine, [sg("delivered", "ev1", "pat@example.com", key)],
                                  now=clock)
    assert again.duplicate == 1 and snapshot(engine) == before


def test_sendgrid_bounce_marks_the_address_invalid_and_fails_the_uncertain_email(
        engine: Engine) -> None:
    acc = person(engine, "+14155550181", "gone@example.com")
    key = add_contact(engine, acc, "email", "email0", "uncertain", "9" * 32)
    apply_sendgrid_events(engine, [sg("bounce", "ev2", "Gone@Example.com", key, type="bounce")],
                          now=clock)
    assert row(engine, key)["state"] == "failed"
    assert scalar(engine, "SELECT valid FROM contact_point WHERE id = :i",
                  i=acc["points"]["email0"]) in (0, False)


def test_sendgrid_blocked_bounce_keeps_the_address(engine: Engine) -> None:
    acc = person(engine, "+14155550182", "busy@example.com")
    apply_sendgrid_events(engine, [sg("bounce", "ev3", "busy@example.com", type="blocked")],
                          now=clock)
    assert scalar(engine, "SELECT valid FROM contact_point WHERE id = :i",
                  i=acc["points"]["email0"]) in (1, True)


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe", "group_unsubscribe"])
def test_sendgrid_unsubscribes_record_an_email_opt_out(engine: Engine, kind: str) -> None:
    acc = person(engine, "+14155550183", "no@example.com")
    queued = add_contact(engine, acc, "email", "email0", "planned", "a1" * 16)
    sms = add_contact(engine, acc, "sms", "phone0", "planned", "a2" * 16)
    result = apply_sendgrid_events(engine, [sg(kind, "ev4" + kind, "no@example.com")], now=clock)
    assert result.applied == 1 and result.suppressed == 1
    assert scalar(engine, "SELECT scope FROM opt_out WHERE channel = 'email'") == str(
        acc["points"]["email0"])
    assert row(engine, queued)["state"] == "suppressed"
    assert row(engine, sms)["state"] == "planned"


def test_sendgrid_ignores_other_events_and_unknown_addresses(engine: Engine) -> None:
    person(engine, "+14155550184", "x@example.com")
    before = snapshot(engine)
    result = apply_sendgrid_events(engine, [sg("open", "ev5", "x@example.com"),
                                            sg("bounce", "ev6", "nobody@example.com"),
                                            {"event": "delivered"}], now=clock)
    assert (result.applied, result.ignored) == (0, 3)
    assert snapshot(engine) == before
