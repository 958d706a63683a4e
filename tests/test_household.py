"""Householding (issue 13 item 5): one person with several accounts is one consumer.

At most one contact per person per channel per local day across their accounts (plan and send
time, core.household_one_per_day), the caps the law counts per consumer counted across the
person's accounts, the setting that turns householding off, and a rerun that keeps the winner.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range
from outreach.kernel.config_yaml import ConfigFileError
from outreach.kernel.facts import load_accounts
from outreach.kernel.policy_settings import parse_policy
from outreach.planning.explain import explain_account, prime_household
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan, plan_cutoff, plan_range
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import Account
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from tests import factories as f
from tests.test_dispatch import Recording

DAY = dt.date(2026, 11, 23)
NEXT = DAY + dt.timedelta(days=1)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
HOUSEHOLD = "core.household_one_per_day"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def outbox(tmp_path: Path) -> Callable[[str], OutboxChannel]:
    return lambda kind: OutboxChannel(kind, f"sqlite:///{tmp_path / 'outbox.db'}")


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Point config/policy.yaml at a file with ``householding`` set as given."""

    def use(householding: bool) -> None:
        path = tmp_path / f"policy-{householding}.yaml"
        path.write_text(f"role: collector\nhouseholding: {str(householding).lower()}\n")
        monkeypatch.setenv("OUTREACH_POLICY", str(path))

    return use


def add_sibling(engine: Engine, person: dict[str, Any], *, dpd: int, balance: str = "1000.00",
                past_due: str = "100.00", region: str = "NY", ref: str | None = None) -> int:
    """A second account of the person ``person`` (from factories.add_account)."""
    with engine.begin() as conn:
        return conn.execute(insert(Account).values(
            account_ref=ref or f"{person['account_ref']}-2", person_id=person["person_id"],
            product="credit_card", currency="USD", balance=Decimal(balance),
            amount_past_due=Decimal(past_due), due_date=DAY - dt.timedelta(days=dpd),
            balance_as_of=DAY - dt.timedelta(days=1), jurisdiction_country="US",
            jurisdiction_region=region, updated_at=f.NOW,
            # The Regulation F itemization, as factories.add_account gives every account.
            itemization_date=DAY - dt.timedelta(days=2), itemization_kind="last_statement",
            itemization_amount=Decimal(balance))).inserted_primary_key[0]


def plan(engine: Engine, day: dt.date = DAY, batch_size: int = 1000) -> None:
    for _ in iter_plan(engine, LADDER, day, batch_size):
        pass


def rows(engine: Engine, day: dt.date = DAY) -> dict[tuple[int, str], dict[str, Any]]:
    """The day's ledger rows by (account id, channel)."""
    with engine.connect() as conn:
        return {
            (r.account_id, r.channel): dict(r._mapping)
            for r in conn.execute(
                text("SELECT account_id, channel, state, verdict, reasons, defer_until, key "
                     "FROM contact WHERE plan_date = :d"), {"d": day})
        }


def dispatch(engine: Engine, outbox: Callable[[str], OutboxChannel], channel: str,
             day: dt.date = DAY, ids: tuple[int, int] = (0, 10**9)) -> Recording:
    sender = Recording(outbox(channel))
    dispatch_range(engine, day, channel, ids[0], ids[1], clock="logical", channel_impl=sender)
    return sender


def early_pair(engine: Engine) -> tuple[int, int]:
    """One person, two accounts in the early stage (validation letter, SMS, email due): the
    first with more days past due."""
    first = f.add_account(engine, as_of=DAY, dpd=9)
    second = add_sibling(engine, first, dpd=5)
    return first["account_id"], second


def test_two_accounts_of_one_person_get_one_letter_sms_and_email_a_day(engine: Engine) -> None:
    high, low = early_pair(engine)
    plan(engine)
    ledger = rows(engine)
    for channel in ("letter", "sms", "email"):
        assert ledger[(high, channel)]["state"] == "planned", channel
        deferred = ledger[(low, channel)]
        assert deferred["state"] == "deferred", channel
        assert deferred["reasons"] == HOUSEHOLD, channel
        # The next local day in New York: its first allowed instant (a letter has no hours;
        # texts and emails from 08:00 local).
        first = "2026-11-24 05:00:00" if channel == "letter" else "2026-11-24 13:00:00"
        assert str(deferred["defer_until"])[:19] == first, channel


def test_two_accounts_of_one_person_get_one_call_a_day(engine: Engine) -> None:
    first = f.add_account(engine, as_of=DAY, dpd=20, validation_notice_sent_on=dt.date(2026, 11, 2))
    second = add_sibling(engine, first, dpd=30)
    with engine.begin() as conn:
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d"),
                     {"d": dt.date(2026, 11, 2)})
    plan(engine)
    ledger = rows(engine)
    assert ledger[(second, "call")]["state"] == "planned"  # more days past due: it goes
    assert ledger[(first["account_id"], "call")]["reasons"] == HOUSEHOLD
    assert ledger[(first["account_id"], "call")]["state"] == "deferred"


def test_the_other_account_goes_the_next_day_after_dispatch(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    high, low = early_pair(engine)
    plan(engine)
    for channel in ("letter", "sms", "email"):
        sent = dispatch(engine, outbox, channel)
        assert len(sent.calls) == 1, channel
    ledger = rows(engine)
    assert {ledger[(high, c)]["state"] for c in ("letter", "sms", "email")} == {"sent"}
    assert {ledger[(low, c)]["state"] for c in ("letter", "sms", "email")} == {"deferred"}
    plan(engine, NEXT)
    tomorrow = rows(engine, NEXT)
    for channel in ("letter", "sms", "email"):
        assert tomorrow[(low, channel)]["state"] == "planned", channel
        assert (high, channel) not in tomorrow  # not due again so soon (cadence)
        assert len(dispatch(engine, outbox, channel, NEXT).calls) == 1


def test_priority_is_days_past_due_then_balance_then_reference(engine: Engine) -> None:
    first = f.add_account(engine, as_of=DAY, dpd=5, balance="500.00")
    richer = add_sibling(engine, first, dpd=5, balance="900.00")
    plan(engine)
    ledger = rows(engine)
    assert ledger[(richer, "sms")]["state"] == "planned"
    assert ledger[(first["account_id"], "sms")]["reasons"] == HOUSEHOLD
    equal = f.add_account(engine, as_of=DAY, dpd=5)
    twin = add_sibling(engine, equal, dpd=5, ref="A0000000-first")  # sorts before "A00..N"
    plan(engine)
    ledger = rows(engine)
    assert ledger[(twin, "sms")]["state"] == "planned"
    assert ledger[(equal["account_id"], "sms")]["reasons"] == HOUSEHOLD


def test_the_winner_is_the_same_whatever_the_batches(engine: Engine) -> None:
    """The person's accounts fall in different batches (ids far apart): each batch judges the
    siblings outside it too, so the plan is the one a single batch makes."""
    high, low = early_pair(engine)
    for _ in range(3):
        f.add_account(engine, as_of=DAY, dpd=4)
    plan(engine, batch_size=1000)
    whole = {k: (v["state"], v["reasons"]) for k, v in rows(engine).items()}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM policy_decision"))
        conn.execute(text("DELETE FROM contact"))
    plan(engine, batch_size=1)
    assert {k: (v["state"], v["reasons"]) for k, v in rows(engine).items()} == whole
    assert whole[(low, "sms")] == ("deferred", HOUSEHOLD)


def test_a_rerun_of_the_day_after_dispatch_keeps_the_winner(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    """The winner's SMS went; a payment today then drops its balance below its sibling's. A
    rerun of the day's plan still defers the sibling: what went today went."""
    first = f.add_account(engine, as_of=DAY, dpd=5, balance="1100.00", past_due="500.00")
    other = add_sibling(engine, first, dpd=5, balance="1000.00")
    plan(engine)
    assert len(dispatch(engine, outbox, "sms").calls) == 1
    before = rows(engine)
    f.add_payment(engine, first["account_id"], DAY, "200.00")
    plan(engine)
    after = rows(engine)
    assert after[(first["account_id"], "sms")]["state"] == "sent"
    assert after[(other, "sms")]["state"] == "deferred"
    assert after[(other, "sms")]["reasons"] == HOUSEHOLD
    assert {k: v["key"] for k, v in after.items()} == {k: v["key"] for k, v in before.items()}
    assert len(dispatch(engine, outbox, "sms").calls) == 0


def test_send_time_recheck_defers_a_sibling_whose_contact_went_today(
        engine: Engine, outbox, policy) -> None:  # type: ignore[no-untyped-def]
    """Planned without householding, dispatched with it: one SMS per person goes, in the same
    group and across separate dispatch runs alike."""
    policy(False)
    high, low = early_pair(engine)
    third = f.add_account(engine, as_of=DAY, dpd=9)
    fourth = add_sibling(engine, third, dpd=5)
    plan(engine)
    assert {rows(engine)[(a, "sms")]["state"] for a in (high, low, third["account_id"], fourth)} \
        == {"planned"}
    policy(True)
    together = dispatch(engine, outbox, "sms", ids=(high, low))  # one claimed group
    assert len(together.calls) == 1
    apart = [dispatch(engine, outbox, "sms", ids=(a, a)) for a in (third["account_id"], fourth)]
    assert [len(s.calls) for s in apart] == [1, 0]
    ledger = rows(engine)
    assert ledger[(fourth, "sms")]["state"] == "deferred"
    assert ledger[(fourth, "sms")]["reasons"] == HOUSEHOLD
    with engine.connect() as conn:
        decision = conn.execute(text(
            "SELECT evidence FROM policy_decision WHERE phase = 'send' AND contact_key = :k"),
            {"k": ledger[(fourth, "sms")]["key"]}).scalar()
    evidence = (decision if isinstance(decision, dict) else json.loads(decision))[HOUSEHOLD]
    assert evidence["outcome"] == "defer"
    assert evidence["facts"]["contacted_on_accounts"] == [third["account_id"]]


def test_householding_off_contacts_each_account_on_its_own(engine: Engine, policy) -> None:  # type: ignore[no-untyped-def]
    policy(False)
    high, low = early_pair(engine)
    plan(engine)
    ledger = rows(engine)
    for channel in ("letter", "sms", "email"):
        assert ledger[(high, channel)]["state"] == ledger[(low, channel)]["state"] == "planned"


def test_policy_file_householding_must_be_true_or_false() -> None:
    assert parse_policy("householding: false\n", "policy.yaml").householding is False
    assert parse_policy("role: creditor\n", "policy.yaml").householding is True
    with pytest.raises(ConfigFileError) as exc:
        parse_policy("householding: sometimes\n", "policy.yaml")
    assert "householding" in str(exc.value)


def test_explain_shows_the_household_deferral(engine: Engine) -> None:
    high, low = early_pair(engine)
    with engine.connect() as conn:
        accounts = load_accounts(conn, low, low, day=DAY, cutoff=plan_cutoff(DAY))
        prime_household(conn, LADDER, accounts, low, DAY, role="collector", enabled=True)
    e = explain_account(LADDER, accounts[low], DAY, role="collector")
    sms = next(a for a in e["actions"] if a["channel"] == "sms")
    assert sms["decision"]["verdict"] == "defer"
    assert sms["decision"]["reasons"] == [HOUSEHOLD]
    rule = next(r for r in sms["decision"]["rules"] if r["rule"] == HOUSEHOLD)
    assert rule["facts"]["contacted_on_accounts"] == [high]
    assert rule["pack"].startswith("core@")
    assert e["facts"]["householding"] is True


# --- caps the law counts per consumer ---------------------------------------------------------


def _call_history(account_id: int, days: list[dt.datetime], outcome: str = "no_answer",
                  cp: int | None = 7) -> tuple[PastContact, ...]:
    return tuple(PastContact(at, "call", outcome, cp, "mobile", account_id=account_id)
                 for at in days)


def _judge(region: str | None, channel: str, household: tuple[PastContact, ...], *,
           country: str = "US", day: dt.date = DAY, zone: str = "America/New_York",
           city: str | None = None) -> Any:
    facts = AccountFacts(1, country, region, 100.0, address_zones=(zone,), city=city,
                         household_history=household, householding=False,
                         validation_notice_sent=dt.date(2026, 10, 1),
                         initial_communication=dt.date(2026, 10, 1))
    step = Step(channel, 7, (zone,), phone_type="mobile", consent=True)
    return evaluate(step, facts, day=day)


def test_washington_counts_communications_across_the_debtors_accounts() -> None:
    sent = tuple(PastContact(dt.datetime(2026, 11, 20 + i, 18), "email", "sent", 9, account_id=2)
                 for i in range(3))
    v = _judge("WA", "sms", sent, zone="America/Los_Angeles")
    assert v.verdict == "defer" and v.reasons == ("us_wa.communications_3_per_week",)
    cap = next(r for r in v.results if r.rule_id == "us_wa.communications_3_per_week")
    assert cap.facts["per"] == "consumer" and cap.facts["other_accounts_counted"] == [2]


def test_regulation_f_counts_call_attempts_per_debt_not_across_accounts() -> None:
    calls = _call_history(2, [dt.datetime(2026, 11, 17 + i % 6, 15) for i in range(7)])
    v = _judge("NY", "call", calls)
    assert v.verdict == "send", v.reasons


def test_massachusetts_counts_per_debt() -> None:
    calls = _call_history(2, [dt.datetime(2026, 11, 20, 15), dt.datetime(2026, 11, 21, 15)],
                          outcome="voicemail")
    assert _judge("MA", "call", calls).verdict == "send"


def test_china_counts_unanswered_calls_to_one_number_across_accounts() -> None:
    calls = _call_history(2, [dt.datetime(2026, 11, 23, 1 + i) for i in range(6)])
    v = _judge(None, "call", calls, country="CN", zone="Asia/Shanghai")
    assert v.verdict == "defer" and v.reasons == ("cn.unanswered_attempts_daily",)
    elsewhere = _call_history(2, [dt.datetime(2026, 11, 23, 1 + i) for i in range(6)], cp=8)
    assert _judge(None, "call", elsewhere, country="CN", zone="Asia/Shanghai").verdict == "send"


def test_new_york_city_counts_per_consumer_until_the_2026_amendments() -> None:
    sent = tuple(PastContact(dt.datetime(2026, 8, 20 + i, 18), "letter", "sent", 9, account_id=2)
                 for i in range(3))
    before = _judge("NY", "sms", sent, city="Brooklyn", day=dt.date(2026, 8, 25))
    assert before.reasons == ("us_nyc.contacts_3in7",)
    assert "us_nyc@2024.10.01-r2" in before.pack_versions
    later = tuple(PastContact(dt.datetime(2026, 9, 20 + i, 18), "letter", "sent", 9,
                              account_id=2) for i in range(3))
    after = _judge("NY", "sms", later, city="Brooklyn", day=dt.date(2026, 9, 25))
    assert after.verdict == "send" and "us_nyc@2026.09.01" in after.pack_versions


def test_a_per_consumer_cap_reads_the_siblings_history_in_the_plan(engine: Engine) -> None:
    """Washington: three communications last week on one account of the person defer the
    other account's SMS today (us_wa.communications_3_per_week)."""
    first = f.add_account(engine, as_of=DAY, dpd=5, region="WA",
                          address_zones="America/Los_Angeles")
    other = add_sibling(engine, first, dpd=4, region="WA")
    for i in range(3):
        f.add_event(engine, first["account_id"], dt.datetime(2026, 11, 19 + i, 20), "email")
    with engine.begin() as conn:
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d"),
                     {"d": dt.date(2026, 11, 18)})
    counts = plan_range(engine, LADDER, DAY, 0, 10**9)
    ledger = rows(engine)
    assert counts.accounts == 2
    assert ledger[(other, "sms")]["reasons"] == "us_wa.communications_3_per_week"
    assert Counter(v["state"] for v in ledger.values()) == {"deferred": len(ledger)}
