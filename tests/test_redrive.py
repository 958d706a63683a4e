"""The redrive: transiently failed contacts go back to the dispatcher, which judges them again.

Sends go through the official Twilio SDK to the fake Twilio, so the error codes and details in
the ledger are the ones the real adapter records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from contact_channels.registry import build_channel
from contact_channels.retry import Outcome, RetryPolicy
from fakes.http import Fault
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.dispatcher import dispatch_range
from outreach.dispatch.recording import MAX_TRANSIENT_ATTEMPTS
from outreach.operations.redrive import failure_outcome, redrive_failed
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
FAST = RetryPolicy(max_attempts=2, initial_wait=0.0, max_wait=1.0, jitter=0.0, max_total=5.0)
PHONES = [f"+1212555{300 + i:04d}" for i in range(4)]
BUSY, STOPPED, INVALID, LOST = PHONES


def hour(h: int) -> dt.datetime:
    """An instant of DAY inside New York's SMS window (08:00-21:00 local, 13:00-02:00 UTC)."""
    return dt.datetime(2026, 11, 23, h)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """One account per phone in PHONES, each with one SMS planned for DAY."""
    engine = f.database(f"sqlite:///{tmp_path / 'app.db'}")
    for phone in PHONES:
        f.add_account(engine, as_of=DAY, dpd=3, emails=[],
                      phones=[{"value": phone, "zones": "America/New_York"}])
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY, 100):
        pass
    return engine


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json(timeout=1.0))
        yield fake


def dispatch(engine: Engine, tmp_path: Path, at: dt.datetime) -> dict[str, int]:
    channel = build_channel("sms", {"backend": "auto"}, outbox_url=f"sqlite:///{tmp_path}/o.db",
                            retry_policy=FAST, sleep=lambda _s: None)
    assert channel.backend == "twilio"
    try:
        return dispatch_range(engine, DAY, "sms", 0, 10**9, clock="wall", channel_impl=channel,
                              now=lambda: at).as_dict()
    finally:
        channel.close()


def ledger(engine: Engine) -> dict[str, dict[str, Any]]:
    """The SMS rows by destination phone."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT cp.value AS phone, c.* FROM contact c JOIN contact_point cp "
            "ON cp.id = c.contact_point_id WHERE c.channel = 'sms'")).mappings().all()
    return {r["phone"]: dict(r) for r in rows}


def fail_busy_for_good(engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    """Twilio answers 503 to BUSY in every window until the dispatcher gives up on it."""
    twilio.fail_destination(BUSY, Fault.server_error(503))
    for h in range(14, 14 + MAX_TRANSIENT_ATTEMPTS):
        dispatch(engine, tmp_path, hour(h))
    row = ledger(engine)[BUSY]
    assert (row["state"], row["error_code"]) == ("failed", "20503")
    twilio.clear_faults()


def accepted(twilio: FakeTwilio, engine: Engine, phone: str) -> int:
    key = ledger(engine)[phone]["key"]
    return twilio.accepted_keys().count(key)


def test_transiently_failed_sms_is_redriven_and_sent_once(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    fail_busy_for_good(engine, twilio, tmp_path)
    assert accepted(twilio, engine, BUSY) == 0

    counts = redrive_failed(engine, DAY, "sms", now=lambda: hour(18))
    assert counts == {"failed": 1, "redriven": 1, "not_transient": 0, "window_passed": 0}
    row = ledger(engine)[BUSY]
    assert (row["state"], row["attempts"], row["error_code"]) == ("planned", 0, None)
    assert "20503" in row["error_detail"]  # what it was redriven after

    assert dispatch(engine, tmp_path, hour(18))["sent"] == 1
    assert ledger(engine)[BUSY]["state"] == "sent"
    assert accepted(twilio, engine, BUSY) == 1
    dispatch(engine, tmp_path, hour(19))
    assert accepted(twilio, engine, BUSY) == 1  # and never again


def test_redrive_of_a_rate_limited_sms_gives_it_a_fresh_transient_budget(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    twilio.fail_destination(BUSY, Fault.rate_limited(retry_after=0))
    for h in range(14, 14 + MAX_TRANSIENT_ATTEMPTS):
        dispatch(engine, tmp_path, hour(h))
    assert ledger(engine)[BUSY]["error_code"] == "20429"
    assert redrive_failed(engine, DAY, "sms", now=lambda: hour(18))["redriven"] == 1
    # Still rate limited: the dispatcher tries again in the next windows, not just once.
    tries_before = len(twilio.sends(BUSY))
    dispatch(engine, tmp_path, hour(18))
    assert ledger(engine)[BUSY]["state"] == "planned"  # one attempt spent, two left
    assert len(twilio.sends(BUSY)) > tries_before


def test_redrive_twice_changes_nothing_the_second_time(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    fail_busy_for_good(engine, twilio, tmp_path)
    redrive_failed(engine, DAY, "sms", now=lambda: hour(18))
    before = ledger(engine)
    counts = redrive_failed(engine, DAY, "sms", now=lambda: hour(18) + dt.timedelta(minutes=5))
    assert counts["redriven"] == 0 and counts["failed"] == 0
    assert ledger(engine) == before


def test_permanent_failures_and_uncertain_contacts_are_never_redriven(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    twilio.fail_destination(STOPPED, Fault.provider_error(21610))
    twilio.fail_destination(INVALID, Fault.provider_error(21211))
    twilio.fail_destination(LOST, Fault.timeout(3.0), times=1)
    fail_busy_for_good(engine, twilio, tmp_path)
    before = ledger(engine)
    assert {p: before[p]["state"] for p in PHONES} == {
        BUSY: "failed", STOPPED: "failed", INVALID: "failed", LOST: "uncertain"}

    counts = redrive_failed(engine, DAY, "sms", now=lambda: hour(18))
    assert counts == {"failed": 3, "redriven": 1, "not_transient": 2, "window_passed": 0}
    after = ledger(engine)
    for phone in (STOPPED, INVALID, LOST):
        assert after[phone] == before[phone]
    sends_before = {p: len(twilio.sends(p)) for p in (STOPPED, INVALID, LOST)}
    dispatch(engine, tmp_path, hour(18))
    assert {p: len(twilio.sends(p)) for p in (STOPPED, INVALID, LOST)} == sends_before


def test_account_opted_out_since_the_failure_is_redriven_but_blocked_at_dispatch(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    fail_busy_for_good(engine, twilio, tmp_path)
    with engine.connect() as conn:
        person_id = conn.execute(text("SELECT person_id FROM contact_point WHERE value = :v"),
                                 {"v": BUSY}).scalar_one()
    f.add_opt_out(engine, person_id, "sms", "*", hour(17))
    assert redrive_failed(engine, DAY, "sms", now=lambda: hour(18))["redriven"] == 1
    counts = dispatch(engine, tmp_path, hour(18))
    assert counts["suppressed"] == 1 and counts["sent"] == 0
    row = ledger(engine)[BUSY]
    assert row["state"] == "suppressed" and "core.opted_out" in row["reasons"]
    assert accepted(twilio, engine, BUSY) == 0


def test_transient_failure_whose_window_has_passed_stays_failed(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    fail_busy_for_good(engine, twilio, tmp_path)
    window_end = ledger(engine)[BUSY]["window_end"]
    late = dt.datetime.fromisoformat(str(window_end))
    counts = redrive_failed(engine, DAY, "sms", now=lambda: late)
    assert counts == {"failed": 1, "redriven": 0, "not_transient": 0, "window_passed": 1}
    assert ledger(engine)[BUSY]["state"] == "failed"


@pytest.mark.parametrize(("code", "detail", "outcome"), [
    ("20503", "twilio refused: HTTP 503, code 20503: Service Unavailable", Outcome.TRANSIENT),
    ("20429", "twilio refused: HTTP 429, code 20429: Too Many Requests", Outcome.TRANSIENT),
    ("http:503", "sendgrid refused: HTTP 503", Outcome.TRANSIENT),
    ("net:connect", "twilio: ConnectionError (connection refused ...)", Outcome.TRANSIENT),
    ("transient", "503 from provider", Outcome.TRANSIENT),
    ("21610", "twilio refused: HTTP 400, code 21610: unsubscribed", Outcome.PERMANENT),
    ("21211", "twilio refused: HTTP 400, code 21211", Outcome.PERMANENT),
    ("http:504", "sendgrid refused: HTTP 504", Outcome.UNCERTAIN),
    ("net:no_reply", "twilio: ReadTimeout", Outcome.UNCERTAIN),
    ("99999", "no status recorded", Outcome.UNCERTAIN),
    (None, None, Outcome.UNCERTAIN),
])
def test_failure_outcome_follows_the_shared_classification_table(
        code: str | None, detail: str | None, outcome: Outcome) -> None:
    assert failure_outcome("sms", code, detail) is outcome
