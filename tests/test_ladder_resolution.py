"""The ladder reads the resolution loop: stage entry on promise, arrangement and hardship state,
resolution actions anchored on a promise's or an instalment's date, a missed instalment and the
statement day, each planned on its day and once, through the pauses the loop itself sets; the
statement's figures add up; the broken-promise follow-up call goes ahead of the queue."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text, update

from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range
from outreach.entry.cli import main
from outreach.kernel.facts import AccountRecord, ArrangementState, PromiseState
from outreach.media.calls.hooks import call_priority, follow_up_boost
from outreach.planning.ladder import check_ladder_text, load_ladder, loop_facts
from outreach.planning.loop import add_months, statement_day
from outreach.planning.messages import message_context, render
from outreach.planning.planner import iter_plan
from outreach.planning.statements import loop_context, statement_of
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import Arrangement, ArrangementInstalment, Contact, Promise
from tests import factories as f

DAY = dt.date(2026, 11, 23)  # a Monday
NOW = dt.datetime(2026, 11, 1, 12, 0)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
LADDER = load_ladder(DEFAULT)
NOTICE_SENT = dt.date(2026, 10, 1)  # validation notice out: every channel is open


@pytest.fixture(autouse=True)
def _data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)
    monkeypatch.setenv("OUTREACH_LADDER", str(DEFAULT))


def debtor(engine: Engine, dpd: int = 40, notice: dt.date = NOTICE_SENT, **kw: Any
           ) -> dict[str, Any]:  # fmt: skip
    emails = [{"value": "pat@example.com", "consent": True}]
    return f.add_account(engine, as_of=DAY, dpd=dpd, balance="2400.00", past_due="600.00",
                         validation_notice_sent_on=notice, emails=emails,
                         initial_communication_on=notice, **kw)  # fmt: skip


def add_promise(engine: Engine, account_id: int, ref: str, due_on: dt.date, *,
                status: str = "open", settled_on: dt.date | None = None,
                amount: str = "300.00") -> None:  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Promise).values(
            account_id=account_id, promise_ref=ref, amount=Decimal(amount), due_on=due_on,
            made_at=NOW, recorded_at=NOW, source="agent", actor="agent.kim", status=status,
            pauses=True, pause_until=due_on + dt.timedelta(days=3), settled_on=settled_on,
            updated_at=NOW))  # fmt: skip


def add_arrangement(engine: Engine, account_id: int, ref: str, first_due_on: dt.date,
                    states: list[tuple[str, str]], *, kept: bool = True,
                    amount: str = "200.00") -> int:  # fmt: skip
    """An active instalment plan accepted a week before its first date, with one instalment a
    month as ``(state, paid)`` each."""
    total = Decimal(amount) * len(states)
    with engine.begin() as conn:
        arrangement_id = conn.execute(insert(Arrangement).values(
            arrangement_ref=ref, account_id=account_id, kind="instalment", state="active",
            total=total, term_months=len(states), instalment_amount=Decimal(amount),
            first_due_on=first_due_on, balance_at_offer=Decimal("2400.00"),
            past_due_at_offer=Decimal("600.00"), kept=kept,
            missed=sum(s == "missed" for s, _ in states),
            created_at=NOW, accepted_at=dt.datetime.combine(first_due_on, dt.time(9)) - dt.timedelta(days=7),
            updated_at=NOW)).inserted_primary_key[0]  # fmt: skip
        for seq, (state, paid) in enumerate(states, start=1):
            due_on = add_months(first_due_on, seq - 1)
            conn.execute(insert(ArrangementInstalment).values(
                arrangement_id=arrangement_id, seq=seq, due_on=due_on, amount=Decimal(amount),
                paid_amount=Decimal(paid), state=state,
                paid_on=due_on if Decimal(paid) else None))  # fmt: skip
    return int(arrangement_id)


def plan(engine: Engine, day: dt.date) -> None:
    for _ in iter_plan(engine, LADDER, day, 1000):
        pass


def rows(engine: Engine, day: dt.date) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT c.key, c.stage, c.action, c.verdict, c.reasons, c.slot, c.state "
            "FROM contact c WHERE c.plan_date = :d ORDER BY c.stage, c.action"), {"d": day})]  # fmt: skip


def loop_rows(engine: Engine, day: dt.date) -> dict[str, dict[str, Any]]:
    return {r["action"]: r for r in rows(engine, day) if r["stage"] == "resolution"}


def plan_json(day: dt.date, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["plan", "--as-of", str(day), "--json"]) == 0
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


# --- stage entry on the loop's state ------------------------------------------------------------


def record(**kw: Any) -> AccountRecord:
    base: dict[str, Any] = dict(
        id=1, account_ref="A1", product="credit_card", balance=Decimal("2400"),
        past_due=Decimal("600"), due_date=DAY - dt.timedelta(days=40), segment=None,
        country="US", region="NY", language="en", address_zones=(),
    )  # fmt: skip
    base.update(kw)
    return AccountRecord(**base)


def stage_of(account: AccountRecord, day: dt.date = DAY) -> str | None:
    assert account.due_date is not None
    stage = LADDER.stage_for((day - account.due_date).days, account.balance, account.segment,
                             account.product, None, loop_facts(account, day))  # fmt: skip
    return stage.id if stage else None


def test_entry_reads_promise_arrangement_and_hardship_state() -> None:
    assert stage_of(record()) == "collections_call"  # nothing of the loop: as before
    broken = record(last_broken_promise_on=DAY - dt.timedelta(days=1), broken_promises=1)
    assert stage_of(broken) == "promise_follow_up"  # broken within a day: the follow-up call
    older = record(last_broken_promise_on=DAY - dt.timedelta(days=10), broken_promises=1)
    assert stage_of(older) == "repayment_offer"  # broken within 30 days, past 30 dpd: an offer
    assert stage_of(record(last_broken_promise_on=DAY - dt.timedelta(days=45),
                           broken_promises=1)) == "collections_call"  # fmt: skip
    assert stage_of(record(holds={"hardship"})) == "repayment_offer"
    # Not before 31 days past due, and not while a plan is in force or just broke.
    assert stage_of(record(holds={"hardship"}, due_date=DAY - dt.timedelta(days=25))) \
        == "collections_call"
    active = ArrangementState("ARR-1", "instalment", "active", True, 0, None, None, None)
    assert stage_of(record(holds={"hardship"}, arrangement=active)) == "collections_call"
    missed = ArrangementState("ARR-1", "instalment", "active", False, 1, None, None, None)
    assert loop_facts(record(arrangement=missed), DAY).arrangement == "missed"
    offered = ArrangementState("ARR-1", "instalment", "offered", True, 0, None, None, None)
    assert stage_of(record(holds={"hardship"}, arrangement=offered)) == "repayment_offer"
    promise = PromiseState("PR-1", Decimal("300"), DAY + dt.timedelta(days=2), DAY)
    assert loop_facts(record(open_promise=promise, last_broken_promise_on=DAY), DAY).promise \
        == "open"


LOOP_LADDER = """\
name: t
stages:
  - id: s
    entry: {dpd_min: 1, promise: [open, nope], arrangement: bogus, broken_promise_within_days: 400}
    actions:
      - {id: a, channel: sms, template: sms/reminder, cadence: {every_days: 1, max_times: 1}}
  - id: resolution
    entry: {dpd_min: 1, any_of: [{hardship: yes}]}
    actions:
      - {id: a, channel: sms, template: sms/reminder, cadence: {every_days: 1, max_times: 1}}
resolution_actions:
  - {id: r1, channel: sms, template: sms/promise_reminder, purpose: reminder,
     anchor: {to: promise_due}}
  - {id: r2, channel: sms, template: sms/missed_instalment_notice,
     purpose: missed_instalment_notice, anchor: {to: instalment_missed, days_before: 2}}
  - {id: r3, channel: email, template: email/statement, purpose: statement,
     anchor: {to: statement}, cadence: {every_days: 30, max_times: 3}}
  - {id: r4, channel: sms, template: sms/nope, purpose: promise_reminder,
     anchor: {to: someday}}
"""


def test_loop_conditions_and_resolution_actions_are_checked_with_their_paths() -> None:
    model, errors = check_ladder_text(LOOP_LADDER)
    assert model is None
    paths = {e.path for e in errors}
    assert {"stages[0].entry.promise[1]", "stages[0].entry.arrangement[0]",
            "stages[0].entry.broken_promise_within_days",
            "resolution_actions[2]", "resolution_actions[3].anchor.to"} <= paths, paths  # fmt: skip
    lines = {e.path: e.line for e in errors}
    assert lines["stages[0].entry.promise[1]"] == lines["stages[0].entry.broken_promise_within_days"] == 4
    assert lines["resolution_actions[3].anchor.to"] == 19
    model, errors = check_ladder_text(LOOP_LADDER.replace("nope]", "broken]")
                                      .replace("bogus", "missed")
                                      .replace("400", "30")
                                      .replace("hardship: yes", "hardship: true")
                                      .replace(", cadence: {every_days: 30, max_times: 3}", "")
                                      .replace("someday", "promise_due"))  # fmt: skip
    by_path: dict[str, str] = {}
    for e in errors:
        by_path[e.path] = by_path.get(e.path, "") + e.message + "\n"
    assert "'resolution' is the stage of the resolution actions" in by_path["stages[1].id"]
    assert "needs purpose promise_reminder" in by_path["resolution_actions[0].purpose"]
    assert "no days before it" in by_path["resolution_actions[1].anchor.days_before"]
    assert "template file en/sms/nope.txt not found" in by_path["resolution_actions[3].template"]


def test_a_loop_template_that_breaks_the_lint_fails_the_check(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    sms = templates / "en" / "sms" / "promise_reminder.txt"
    sms.write_text(sms.read_text().replace(" Reply STOP to opt out.", ""))
    _, errors = check_ladder_text(DEFAULT.read_text(), templates)
    [problem] = errors
    assert problem.path == "resolution_actions[0].template"
    assert "must tell how to opt out" in problem.message


def test_the_default_ladder_checks_and_plans_as_before_without_the_loop(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEFAULT)]) == 0
    assert "9 resolution actions" in capsys.readouterr().out
    a = debtor(engine, dpd=20)
    plan(engine, DAY)
    assert {(r["stage"], r["action"]) for r in rows(engine, DAY)} == {
        ("collections_call", "agent_call"), ("collections_call", "sms_followup")}
    assert a["account_id"]


# --- the promise reminder -----------------------------------------------------------------------


def test_promise_reminder_goes_the_day_before_once_while_the_stage_is_paused_naming_the_promise(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    a = debtor(engine, dpd=20)
    due_on = DAY + dt.timedelta(days=1)
    add_promise(engine, a["account_id"], "PR-77", due_on)
    plan(engine, DAY - dt.timedelta(days=1))
    assert loop_rows(engine, DAY - dt.timedelta(days=1)) == {}  # two days before: not yet

    plan(engine, DAY)
    loop = loop_rows(engine, DAY)
    assert set(loop) == {"promise_reminder_sms", "promise_reminder_email"}
    assert {r["verdict"] for r in loop.values()} == {"send"}
    assert {r["slot"] for r in loop.values()} == {due_on.toordinal()}
    records = plan_json(DAY, capsys)
    paused = [r for r in records if r["stage"] == "collections_call"]
    assert paused and all(r["verdict"] == "block" for r in paused)
    assert all("core.promise_open" in r["reasons"] for r in paused)
    assert all(r["refs"] == {"promise_open": "PR-77"} for r in paused)
    assert all(r["refs"] is None for r in records if r["stage"] == "resolution")

    first = rows(engine, DAY)
    plan(engine, DAY)
    assert rows(engine, DAY) == first  # a rerun plans the same, under the same keys
    plan(engine, due_on)
    assert loop_rows(engine, due_on) == {}  # its day is past: not again

    capsys.readouterr()
    assert main(["explain", a["account_ref"], "--as-of", str(DAY), "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)["resolution_actions"]
    assert explained["promise"] == "open"
    by_id = {x["action"]: x for x in explained["actions"]}
    assert by_id["promise_reminder_sms"]["due"] is True
    assert by_id["promise_reminder_sms"]["for"] == "promise PR-77"
    assert by_id["promise_reminder_sms"]["key"] == loop["promise_reminder_sms"]["key"]
    assert by_id["statement_letter"] == {**by_id["statement_letter"], "due": False,
                                         "why": "no statement"}  # fmt: skip
    assert main(["explain", a["account_ref"], "--as-of", str(DAY)]) == 0
    text_form = capsys.readouterr().out
    assert "promise_reminder_sms via sms, promise_reminder (promise_due) for promise PR-77: SEND" \
        in text_form


# --- instalments, the missed instalment, statements ---------------------------------------------


def test_instalment_reminders_go_their_days_before_while_the_kept_plan_pauses_the_stage(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    a = debtor(engine, dpd=40)
    first = dt.date(2026, 10, 25)  # the second instalment falls due on 2026-11-25
    add_arrangement(engine, a["account_id"], "ARR-9", first,
                    [("paid", "200.00"), ("due", "0"), ("due", "0")])  # fmt: skip
    email_day, sms_day = dt.date(2026, 11, 22), dt.date(2026, 11, 24)
    plan(engine, email_day)
    assert set(loop_rows(engine, email_day)) == {"instalment_reminder_email"}
    plan(engine, DAY)
    assert loop_rows(engine, DAY) == {}
    plan(engine, sms_day)
    [sms] = loop_rows(engine, sms_day).values()
    assert (sms["action"], sms["verdict"], sms["slot"]) == (
        "instalment_reminder_sms", "send", dt.date(2026, 11, 25).toordinal())
    records = plan_json(sms_day, capsys)
    paused = [r for r in records if r["stage"] != "resolution"]
    assert paused and all("core.payment_plan_kept" in r["reasons"] for r in paused)
    assert all(r["refs"] == {"instalment_plan": "ARR-9"} for r in paused)


def test_a_missed_instalment_gets_one_notice_retried_until_sent_within_its_window(
        engine: Engine) -> None:
    a = debtor(engine, dpd=40)
    first = dt.date(2026, 10, 10)
    add_arrangement(engine, a["account_id"], "ARR-5", first,
                    [("paid", "200.00"), ("missed", "50.00"), ("due", "0")], kept=False)  # fmt: skip
    plan(engine, DAY)
    loop = loop_rows(engine, DAY)
    assert set(loop) == {"missed_instalment_sms", "missed_instalment_email"}
    assert {r["slot"] for r in loop.values()} == {dt.date(2026, 11, 10).toordinal()}
    # Not kept: no pause; the stage's own steps go too.
    assert any(r["stage"] == "collections_call" and r["verdict"] == "send"
               for r in rows(engine, DAY))  # fmt: skip
    # The SMS went, the email did not (still planned): the next day only the email is due again.
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.key == loop["missed_instalment_sms"]["key"])
                     .values(state="sent"))  # fmt: skip
    nxt = DAY + dt.timedelta(days=1)
    plan(engine, nxt)
    again = loop_rows(engine, nxt)
    assert set(again) == {"missed_instalment_email"}
    assert again["missed_instalment_email"]["key"] == loop["missed_instalment_email"]["key"]
    # Past its window (14 days after the instalment's date): no more.
    late = dt.date(2026, 11, 25)
    plan(engine, late)
    assert "missed_instalment_email" not in loop_rows(engine, late)


def test_statements_go_monthly_on_the_first_instalments_day_of_the_month() -> None:
    first = dt.date(2026, 1, 31)
    assert statement_day(first, dt.date(2026, 2, 27)) is None
    assert statement_day(first, dt.date(2026, 2, 28)) == dt.date(2026, 2, 28)
    assert statement_day(first, dt.date(2026, 3, 30)) == dt.date(2026, 2, 28)
    assert statement_day(first, dt.date(2026, 3, 31)) == dt.date(2026, 3, 31)


def test_the_statement_is_planned_on_its_day_and_says_what_was_due_paid_and_remains(
        engine: Engine, tmp_path: Path, printer: Any) -> None:
    a = debtor(engine, dpd=40)
    first = dt.date(2026, 8, 23)  # statements on the 23rd: 2026-09-23, 10-23, 11-23
    add_arrangement(engine, a["account_id"], "ARR-3", first,
                    [("paid", "200.00"), ("partly_paid", "120.00"), ("paid", "200.00"),
                     ("due", "0"), ("due", "0"), ("due", "0")], amount="200.00")  # fmt: skip
    f.add_payment(engine, a["account_id"], dt.date(2026, 8, 23), "200.00")
    f.add_payment(engine, a["account_id"], dt.date(2026, 9, 25), "120.00")
    f.add_payment(engine, a["account_id"], dt.date(2026, 10, 23), "200.00")
    plan(engine, DAY - dt.timedelta(days=1))
    # The day before: the fourth instalment's reminder, no statement yet.
    assert set(loop_rows(engine, DAY - dt.timedelta(days=1))) == {"instalment_reminder_sms"}
    plan(engine, DAY)
    loop = loop_rows(engine, DAY)
    assert set(loop) == {"statement_letter", "statement_email"}
    assert loop["statement_email"]["slot"] == DAY.toordinal()

    with engine.connect() as conn:
        s = statement_of(conn, a["account_id"], DAY)
        context = loop_context(conn, a["account_id"], DAY)
    assert s is not None
    assert [(i.seq, i.state) for i in s.instalments] == [
        (1, "paid"), (2, "partly_paid"), (3, "paid"), (4, "due")]  # due on or before the day
    assert s.due_to_date == Decimal("800.00") and s.paid_to_date == Decimal("520.00")
    assert s.arrears == s.due_to_date - s.paid_to_date == Decimal("280.00")
    assert s.remaining == s.total - s.paid_total == Decimal("680.00")
    assert sum((p for _, p in s.payments), Decimal(0)) == s.paid_total
    assert context["statement"]["remaining"] == "680.00"
    assert context["statement"]["next_due_on"] == "2026-12-23"

    # Sent through the dispatcher, which builds the figures from the tables at send time.
    outbox = OutboxChannel("email", f"sqlite:///{tmp_path / 'outbox.db'}")
    dispatch_range(engine, DAY, "email", 0, 10**9, clock="logical", channel_impl=outbox)
    [sent] = [m for m in outbox.records() if m.tags["action"] == "statement_email"]
    assert sent.subject and "Statement of your repayment plan" in sent.subject
    for line in ("Due to date: 800.00 USD", "Paid to date: 520.00 USD",
                 "Still owed of what was due: 280.00 USD", "remaining: 680.00 USD",
                 "2. 2026-09-23  due 200.00  paid 120.00  (partly paid)",
                 "2026-09-25  120.00 USD", "Next instalment: 200.00 USD due 2026-12-23"):
        assert line in sent.body_text, line
    assert sent.body_html and "<strong>680.00 USD</strong>" in sent.body_html
    # And the letter, through the real print channel (a PDF in the mail house's drop).
    dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    [letter] = f.contacts(engine, key=loop["statement_letter"]["key"])
    assert letter["state"] == "sent"


def test_statement_letter_renders_in_chinese_with_the_same_figures(engine: Engine) -> None:
    a = debtor(engine, dpd=40)
    add_arrangement(engine, a["account_id"], "ARR-4", dt.date(2026, 10, 23),
                    [("paid", "200.00"), ("missed", "0"), ("due", "0")])  # fmt: skip
    with engine.connect() as conn:
        loop = loop_context(conn, a["account_id"], DAY)
    ctx = message_context(full_name="王小明", language="zh-CN", account_ref="4000123412340001",
                          amount_past_due=Decimal("600"), balance=Decimal("2400"),
                          currency="CNY", days_past_due=40, address=None, country="CN",
                          loop=loop)  # fmt: skip
    letter = render("letter/statement", "zh-CN", "letter", ctx).text
    assert "截至目前应还：400.00 CNY" in letter and "剩余应还：400.00 CNY" in letter
    assert "逾期未还" in letter
    assert loop["missed_amount"] == "200.00" and loop["missed_due_on"] == "2026-11-23"


# --- the broken-promise follow-up ---------------------------------------------------------------


def test_a_just_broken_promise_puts_the_follow_up_call_ahead_of_the_queue(engine: Engine) -> None:
    a = debtor(engine, dpd=20)
    b = debtor(engine, dpd=20)
    add_promise(engine, a["account_id"], "PR-1", DAY - dt.timedelta(days=5), status="broken",
                settled_on=DAY - dt.timedelta(days=1))  # fmt: skip
    add_promise(engine, b["account_id"], "PR-2", DAY - dt.timedelta(days=20), status="broken",
                settled_on=DAY - dt.timedelta(days=10))  # fmt: skip
    with engine.connect() as conn:
        boost = follow_up_boost(conn, [a["account_id"], b["account_id"]], DAY)
        assert boost == {a["account_id"]: 500}  # promises.follow_up: within 1 day, 500 points
        assert follow_up_boost(conn, [a["account_id"]], DAY + dt.timedelta(days=2)) == {}
    base = call_priority(Decimal("2400"), 20, 1, None)
    assert call_priority(Decimal("2400"), 20, 1, None, boost[a["account_id"]]) == base + 500
    plan(engine, DAY)
    stages = {(r["stage"], r["action"]) for r in rows(engine, DAY)}
    assert ("promise_follow_up", "follow_up_call") in stages  # a: broken yesterday
    assert ("collections_call", "agent_call") in stages  # b: broken 10 days ago, back in line


# --- the verification of a dispute --------------------------------------------------------------


def test_a_dispute_gets_its_verification_letter_once_through_the_dispute_hold(
        engine: Engine) -> None:
    from outreach.resolution.disputes import open_dispute

    # Disputed within the validation period: collection stops (us_reg_f) until verification.
    a = debtor(engine, dpd=20, notice=DAY - dt.timedelta(days=12))
    other = debtor(engine, dpd=20)
    with engine.begin() as conn:
        task = open_dispute(conn, account_id=a["account_id"], source="agent", actor="agent.kim",
                            day=DAY)  # fmt: skip
    plan(engine, DAY)
    by_account: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(text("SELECT account_id, stage, action, verdict, reasons, slot, key "
                                   "FROM contact WHERE plan_date = :d"), {"d": DAY}):  # fmt: skip
            by_account.setdefault(str(r[0]), []).append(dict(r._mapping))
    mine = {(r["stage"], r["action"]): r for r in by_account[str(a["account_id"])]}
    letter = mine[("resolution", "verification_letter")]
    assert (letter["verdict"], letter["slot"]) == ("send", task)
    paused = [r for k, r in mine.items() if k[0] != "resolution"]
    assert paused and all(r["verdict"] == "block" and "dispute" in r["reasons"] for r in paused)
    # Nobody who did not dispute is written to, nor planned a blocked letter.
    assert all(r["action"] != "verification_letter" for r in by_account[str(other["account_id"])])
    # Still open the next day (the letter not yet out): the same letter, the same key.
    nxt = DAY + dt.timedelta(days=1)
    plan(engine, nxt)
    assert loop_rows(engine, nxt)["verification_letter"]["key"] == letter["key"]
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.key == letter["key"]).values(state="sent"))
    later = DAY + dt.timedelta(days=2)
    plan(engine, later)
    assert "verification_letter" not in loop_rows(engine, later)
