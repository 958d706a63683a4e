"""Facts have one owner: what the system records survives imports; imported history counts.

Issue 12, items 11 and 12: a re-import of an unchanged file never clears a notice date, an
initial communication or an invalid destination the system recorded; dates an import carries
merge with ours (sent-on dates: the later wins; the initial communication: the earlier wins);
imported contact events count toward the ladder's cadence; an imported final notice counts for
the agency and legal prerequisites; an account missing a required earlier step catches up.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from contact_channels.retry import RetryPolicy
from fakes.http import Fault
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.callbacks import apply_sendgrid_events
from outreach.dispatch.dispatcher import dispatch_range
from outreach.media.letters.channel import PrintChannel
from outreach.media.letters.returned import import_returned_mail
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.portfolio.importer import import_file
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import make_engine, migrate
from outreach.storage.models import Account, Base, ContactPoint

DAY = dt.date(2026, 11, 23)  # a Monday
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
FAST = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=1.0, jitter=0.0, max_total=5.0)
PHONE = "+12125550123"
EMAIL = "pat@example.com"


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    return url


@pytest.fixture
def engine(url: str) -> Engine:
    return make_engine(url)


@pytest.fixture
def printer(url: str, tmp_path: Path) -> Iterator[PrintChannel]:
    channel = build_channel("letter", {"backend": "print", "drop": (tmp_path / "drop").as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    assert isinstance(channel, PrintChannel)
    yield channel
    channel.close()


def account(ref: str = "A1", due: dt.date = DAY - dt.timedelta(days=3), **changes: Any
            ) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "record": "account", "account_ref": ref, "person_ref": f"P{ref}",
        "full_name": "Pat Example", "language": "en", "product": "credit_card",
        "currency": "USD", "balance": "5200.00", "amount_past_due": "300.00",
        "due_date": due.isoformat(), "balance_as_of": (DAY - dt.timedelta(days=30)).isoformat(),
        "country": "US", "region": "NY", "city": "New York", "address_line1": "1 Main St",
        "postal_code": "10001",
        "phones": [{"number": PHONE, "type": "mobile", "sms_consent": True,
                    "call_consent": True}],
        "emails": [{"address": EMAIL, "consent": True}],
    }  # fmt: skip
    record.update(changes)
    # The Regulation F itemization a validation notice needs (us_reg_f.itemization_unknown).
    record.setdefault("itemization_date", record["balance_as_of"])
    record.setdefault("itemization_kind", "last_statement")
    record.setdefault("itemization_amount", record["balance"])
    return {k: v for k, v in record.items() if v is not None}


def event(at: str, channel: str = "sms", ref: str = "A1", **more: Any) -> dict[str, Any]:
    return {"record": "contact_event", "account_ref": ref, "occurred_at": at, "channel": channel,
            "outcome": "delivered", **more}  # fmt: skip


def load(engine: Engine, path: Path, records: Iterable[dict[str, Any]]) -> dict[str, int]:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    report = import_file(path, engine=engine, rejects_path=path.with_suffix(".rejects.jsonl"))
    assert report.rejected == 0, path.with_suffix(".rejects.jsonl").read_text()
    return {"inserted": report.inserted, "updated": report.updated,
            "unchanged": report.unchanged}  # fmt: skip


def plan(engine: Engine, day: dt.date) -> None:
    for _ in iter_plan(engine, LADDER, day, 1000):
        pass


def dates(engine: Engine, ref: str = "A1") -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(
            select(Account.validation_notice_sent_on, Account.initial_communication_on,
                   Account.final_notice_sent_on).where(Account.account_ref == ref)).one())  # fmt: skip


def plan_rows(engine: Engine, day: dt.date) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT a.account_ref, c.stage, c.action, c.verdict, c.reasons, c.slot, c.state "
            "FROM contact c JOIN account a ON a.id = c.account_id WHERE c.plan_date = :d "
            "ORDER BY a.account_ref, c.stage, c.action"), {"d": day})]  # fmt: skip


def point_valid(engine: Engine, kind: str, value: str | None = None) -> list[bool]:
    stmt = select(ContactPoint.valid).where(ContactPoint.kind == kind)
    if value is not None:
        stmt = stmt.where(ContactPoint.value == value)
    with engine.connect() as conn:
        return [bool(v) for v in conn.execute(stmt.order_by(ContactPoint.id)).scalars()]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key))]
            for t in Base.metadata.sorted_tables if t.name != "import_run"
        }  # fmt: skip


# --- item 11: facts the system records survive an import that does not mention them ------------


def test_reimport_keeps_the_validation_notice_our_dispatch_recorded_and_nothing_is_blocked_later(
        engine: Engine, printer: PrintChannel, tmp_path: Path) -> None:
    path = tmp_path / "portfolio.jsonl"
    load(engine, path, [account()])
    plan(engine, DAY)
    counts = dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    assert counts.sent == 1
    notice = dates(engine)[0]
    assert notice == DAY

    again = import_file(path, engine=engine, rejects_path=tmp_path / "again.rejects.jsonl")
    assert (again.unchanged, again.updated, again.inserted) == (1, 0, 0)
    assert dates(engine)[0] == notice

    week_later = DAY + dt.timedelta(days=7)
    plan(engine, week_later)
    rows = plan_rows(engine, week_later)
    assert rows, "the account has reminders due a week later"
    assert not any("us_reg_f.validation_notice_overdue" in r["reasons"] for r in rows), rows
    assert {r["action"] for r in rows if r["verdict"] == "send"} >= {"sms_reminder"}


def test_reimport_without_the_initial_communication_keeps_it(engine: Engine, tmp_path: Path
                                                             ) -> None:  # fmt: skip
    load(engine, tmp_path / "a.jsonl", [account(initial_communication_on="2026-11-21")])
    load(engine, tmp_path / "b.jsonl", [account()])
    assert dates(engine)[1] == dt.date(2026, 11, 21)
    # The first communication is the earliest: a later date from an import does not move it.
    load(engine, tmp_path / "c.jsonl", [account(initial_communication_on="2026-11-22")])
    assert dates(engine)[1] == dt.date(2026, 11, 21)
    load(engine, tmp_path / "d.jsonl", [account(initial_communication_on="2026-11-20")])
    assert dates(engine)[1] == dt.date(2026, 11, 20)


def test_reimport_keeps_the_final_notice_our_dispatch_recorded(
        engine: Engine, printer: PrintChannel, tmp_path: Path) -> None:
    path = tmp_path / "portfolio.jsonl"
    late = account(due=DAY - dt.timedelta(days=125), validation_notice_sent_on="2026-07-25",
                   initial_communication_on="2026-07-22")  # fmt: skip
    load(engine, path, [late])
    plan(engine, DAY)
    assert dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical",
                          channel_impl=printer).sent == 1  # fmt: skip
    assert dates(engine)[2] == DAY
    before = dump(engine)
    again = import_file(path, engine=engine, rejects_path=tmp_path / "again.rejects.jsonl")
    assert again.unchanged == 1 and dump(engine) == before
    # An import that carries an older final notice (the previous system's) does not move ours.
    load(engine, tmp_path / "older.jsonl", [late | {"final_notice_sent_on": "2026-10-01"}])
    assert dates(engine)[2] == DAY


def test_an_imported_notice_date_merges_with_ours_and_the_later_one_wins(
        engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path / "a.jsonl", [account()])
    with engine.begin() as conn:  # what the dispatcher records when it sends the notice
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d, "
                          "final_notice_sent_on = :d"), {"d": dt.date(2026, 11, 10)})  # fmt: skip
    earlier = {"validation_notice_sent_on": "2026-11-01", "final_notice_sent_on": "2026-11-01"}
    load(engine, tmp_path / "b.jsonl", [account(**earlier)])
    assert dates(engine)[0::2] == (dt.date(2026, 11, 10), dt.date(2026, 11, 10))
    later = {"validation_notice_sent_on": "2026-11-12", "final_notice_sent_on": "2026-11-15"}
    load(engine, tmp_path / "c.jsonl", [account(**later)])
    assert dates(engine)[0::2] == (dt.date(2026, 11, 12), dt.date(2026, 11, 15))


def test_an_imported_final_notice_date_is_stored(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path / "a.jsonl", [account(final_notice_sent_on="2026-11-02")])
    assert dates(engine)[2] == dt.date(2026, 11, 2)


def test_importing_the_same_file_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "portfolio.jsonl"
    records = [
        account(validation_notice_sent_on="2026-11-21", initial_communication_on="2026-11-20",
                final_notice_sent_on="2026-11-22"),
        account("A2"),
        event("2026-11-22T10:00:00-05:00", destination=PHONE),
    ]  # fmt: skip
    first = load(engine, path, records)
    assert first["inserted"] == 3
    before = dump(engine)
    second = load(engine, path, records)
    assert second == {"inserted": 0, "updated": 0, "unchanged": 3}
    assert dump(engine) == before


def test_returned_mail_keeps_the_address_invalid_through_a_reimport(
        engine: Engine, printer: PrintChannel, tmp_path: Path) -> None:
    path = tmp_path / "portfolio.jsonl"
    load(engine, path, [account()])
    plan(engine, DAY)
    assert dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical",
                          channel_impl=printer).sent == 1  # fmt: skip
    result = import_returned_mail(engine, [{"account_ref": "A1", "returned_on": DAY.isoformat(),
                                            "reason": "moved"}],
                                  dt.datetime(2026, 11, 24, 12))  # fmt: skip
    assert result["returned"] == 1
    assert point_valid(engine, "postal") == [False]
    load(engine, path, [account()])
    assert point_valid(engine, "postal") == [False]
    # A changed address is a new contact point, valid.
    load(engine, tmp_path / "moved.jsonl", [account(address_line1="2 Side St")])
    assert point_valid(engine, "postal") == [False, True]


def test_a_number_the_carrier_marked_invalid_stays_invalid_through_a_reimport(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "portfolio.jsonl"
    load(engine, path, [account(validation_notice_sent_on="2026-11-21",
                                initial_communication_on="2026-11-20")])  # fmt: skip
    plan(engine, DAY)
    with FakeTwilio() as twilio:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", twilio.airflow_conn_json(timeout=1.0))
        twilio.fail_destination(PHONE, Fault.provider_error(21211))
        channel = build_channel("sms", {"backend": "auto"},
                                outbox_url=f"sqlite:///{tmp_path}/o.db", retry_policy=FAST,
                                sleep=lambda _s: None)  # fmt: skip
        try:
            counts = dispatch_range(engine, DAY, "sms", 0, 10**9, clock="wall",
                                    channel_impl=channel,
                                    now=lambda: dt.datetime(2026, 11, 23, 15))  # fmt: skip
        finally:
            channel.close()
    assert counts.failed == 1
    assert point_valid(engine, "phone", PHONE) == [False]
    load(engine, path, [account(validation_notice_sent_on="2026-11-21",
                                initial_communication_on="2026-11-20")])  # fmt: skip
    assert point_valid(engine, "phone", PHONE) == [False]
    new = "+12125550124"
    load(engine, tmp_path / "new.jsonl", [account(phones=[
        {"number": new, "type": "mobile", "sms_consent": True}])])  # fmt: skip
    assert point_valid(engine, "phone", new) == [True]
    assert point_valid(engine, "phone", PHONE) == [False]


def test_a_bounced_email_stays_invalid_through_a_reimport(engine: Engine, tmp_path: Path
                                                          ) -> None:  # fmt: skip
    path = tmp_path / "portfolio.jsonl"
    load(engine, path, [account()])
    result = apply_sendgrid_events(engine, [{
        "event": "bounce", "sg_event_id": "ev1", "sg_message_id": "m1.filter", "email": EMAIL,
        "timestamp": 1795000000, "type": "bounce"}],
        now=lambda: dt.datetime(2026, 11, 23, 15))  # fmt: skip
    assert result.applied == 1
    assert point_valid(engine, "email", EMAIL) == [False]
    load(engine, path, [account()])
    assert point_valid(engine, "email", EMAIL) == [False]


# --- item 12: history from a previous system counts like our own -------------------------------


def test_an_sms_the_previous_system_delivered_yesterday_counts_toward_every_days(
        engine: Engine, tmp_path: Path) -> None:
    facts = {"validation_notice_sent_on": "2026-11-21", "initial_communication_on": "2026-11-21"}
    load(engine, tmp_path / "p.jsonl", [
        account(**facts), event("2026-11-22T10:00:00-05:00", destination=PHONE)])  # fmt: skip
    plan(engine, DAY)
    actions = {r["action"]: r for r in plan_rows(engine, DAY)}
    assert "sms_reminder" not in actions  # every 3 days: the next is due on the 25th
    assert actions["email_reminder"]["verdict"] == "send"
    later = DAY + dt.timedelta(days=2)
    plan(engine, later)
    sms = [r for r in plan_rows(engine, later) if r["action"] == "sms_reminder"]
    assert [(r["slot"], r["verdict"]) for r in sms] == [(2, "send")]  # the imported one was 1


def test_imported_contacts_of_an_earlier_stage_or_episode_do_not_count(
        engine: Engine, tmp_path: Path) -> None:
    facts = {"validation_notice_sent_on": "2026-10-10", "initial_communication_on": "2026-10-09"}
    load(engine, tmp_path / "p.jsonl", [
        account(due=DAY - dt.timedelta(days=20), **facts),
        # In early_reminder (day 14), and before this episode's due date: not sms_followup's.
        event("2026-11-17T10:00:00-05:00", destination=PHONE),
        event("2026-10-20T10:00:00-05:00", destination=PHONE),
    ])  # fmt: skip
    plan(engine, DAY)
    sms = [r for r in plan_rows(engine, DAY) if r["action"] == "sms_followup"]
    assert [(r["slot"], r["verdict"]) for r in sms] == [(1, "send")]


def test_an_imported_final_notice_counts_for_the_agency_prerequisite(
        engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path / "p.jsonl", [account(
        due=DAY - dt.timedelta(days=200), validation_notice_sent_on="2026-05-10",
        initial_communication_on="2026-05-08", final_notice_sent_on="2026-09-20")])  # fmt: skip
    plan(engine, DAY)
    [row] = plan_rows(engine, DAY)
    assert (row["stage"], row["action"]) == ("agency_placement", "place_with_agency")
    assert "ladder.prerequisite_unmet" not in row["reasons"]


def test_an_account_that_never_had_its_final_notice_catches_up_at_it(
        engine: Engine, printer: PrintChannel, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    load(engine, tmp_path / "p.jsonl", [account(
        due=DAY - dt.timedelta(days=302), validation_notice_sent_on="2026-02-01",
        initial_communication_on="2026-01-30")])  # fmt: skip
    plan(engine, DAY)
    first = plan_rows(engine, DAY)
    assert [(r["stage"], r["action"], r["verdict"]) for r in first] == [
        ("final_notice", "final_notice_letter", "send")]
    plan(engine, DAY)
    assert plan_rows(engine, DAY) == first  # deterministic: the same plan again

    from outreach.entry.cli import main
    from outreach.operations.reporting import day_summary, format_summary

    summary = day_summary(engine, DAY)
    assert summary["accounts_caught_up"] == 1
    assert "Entered by catch-up: 1 accounts" in format_summary(summary)
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)
    assert main(["plan", "--as-of", str(DAY), "--json"]) == 0
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["catch_up"] == {"stage": "legal_referral", "requires_stage": "final_notice",
                                "requires_action": "final_notice_letter", "min_times": 1,
                                "times": 0}  # fmt: skip
    assert line["evidence"]["ladder.catch_up"]["outcome"] == "catch_up"
    assert main(["explain", "A1", "--as-of", str(DAY), "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["stage"] == "legal_referral"
    assert "final_notice.final_notice_letter" in explained["catch_up"]["why"]
    assert [(a["stage"], a["action"], a["decision"]["verdict"]) for a in explained["actions"]] == [
        ("final_notice", "final_notice_letter", "send")]
    assert main(["explain", "A1", "--as-of", str(DAY)]) == 0
    assert "catch-up:" in capsys.readouterr().out

    assert dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical",
                          channel_impl=printer).sent == 1  # fmt: skip
    later = DAY + dt.timedelta(days=1)
    plan(engine, later)
    [row] = plan_rows(engine, later)
    assert (row["stage"], row["action"]) == ("legal_referral", "refer_to_counsel")
    assert "ladder.prerequisite_unmet" not in row["reasons"]  # the wait after the notice rules
    assert day_summary(engine, later)["accounts_caught_up"] == 0
