"""Table tests for the gates of the later stages: an open placement and a referral to counsel
stop everything of ours; a legal referral needs the balance and the final notice's wait."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from outreach.kernel.facts import load_accounts
from policies.gate import evaluate
from policies.model import AccountFacts, Step
from tests import factories as f

NY = "America/New_York"
DAY = dt.date(2026, 12, 1)
CHANNEL_STEPS = (Step("sms", 10, (NY,), phone_type="mobile", consent=True),
                 Step("email", 20, consent=True), Step("call", 10, (NY,), phone_type="mobile"),
                 Step("letter", 30), Step("agency", agency="acme", agency_approved=True),
                 Step("legal"))  # fmt: skip


def facts(**kw: object) -> AccountFacts:
    """A US account a collector may refer: notice long sent, SCRA checked, big balance."""
    base: dict[str, object] = dict(
        account_id=1, country="US", region="NY", past_due=900.0, balance=5000.0,
        address_zones=(NY,), validation_notice_sent=dt.date(2026, 1, 5),
        initial_communication=dt.date(2026, 1, 2), scra_checked_on=DAY - dt.timedelta(days=3),
        final_notice_sent=DAY - dt.timedelta(days=45),
    )
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def test_an_eligible_account_may_be_referred() -> None:
    assert evaluate(Step("legal"), facts(), day=DAY).verdict == "send"


@pytest.mark.parametrize("step", CHANNEL_STEPS, ids=lambda s: s.channel)
def test_an_open_placement_stops_every_channel_of_ours(step: Step) -> None:
    v = evaluate(step, facts(holds=frozenset({"agency_placement"})), day=DAY)
    assert v.verdict == "block" and "core.placed_with_agency" in v.reasons


@pytest.mark.parametrize("step", CHANNEL_STEPS, ids=lambda s: s.channel)
def test_a_referral_to_counsel_stops_every_channel_of_ours(step: Step) -> None:
    v = evaluate(step, facts(holds=frozenset({"legal_referral"})), day=DAY)
    assert v.verdict == "block" and "core.referred_to_counsel" in v.reasons


@pytest.mark.parametrize(("balance", "verdict"), [(2499.99, "block"), (2500.0, "send")])
def test_legal_referral_needs_the_threshold_balance(balance: float, verdict: str) -> None:
    v = evaluate(Step("legal"), facts(balance=balance), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("core.legal_min_balance",)
        assert v.evidence()["core.legal_min_balance"]["facts"] == {
            "balance": 2499.99, "min_balance": 2500}


@pytest.mark.parametrize(("days_ago", "verdict"), [(None, "block"), (0, "block"), (29, "block"),
                                                   (30, "send"), (31, "send")])
def test_legal_referral_waits_30_days_after_the_final_notice(days_ago: int | None,
                                                             verdict: str) -> None:
    sent = None if days_ago is None else DAY - dt.timedelta(days=days_ago)
    v = evaluate(Step("legal"), facts(final_notice_sent=sent), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("core.final_notice_wait",)


def test_the_later_stage_rules_leave_other_channels_alone() -> None:
    poor = facts(balance=10.0, final_notice_sent=None)
    assert evaluate(CHANNEL_STEPS[3], poor, day=DAY).verdict == "send"  # a letter


def test_placements_and_cases_are_holds_from_the_day_they_are_known(tmp_path: Path) -> None:
    engine = f.database(f"sqlite:///{tmp_path / 'app.db'}")
    placed = f.add_account(engine, as_of=DAY, dpd=170)["account_id"]
    referred = f.add_account(engine, as_of=DAY, dpd=260)["account_id"]
    recalled = f.add_account(engine, as_of=DAY, dpd=170)["account_id"]
    with engine.begin() as conn:
        for account_id, state in ((placed, "open"), (recalled, "recalled")):
            conn.execute(text(
                "INSERT INTO placement (account_id, agency, ledger_key, placed_on, "
                "balance_at_placement, recall_due_on, state, updated_at) VALUES (:a, 'acme', "
                ":k, :d, 1000, :r, :s, :d)"), {"a": account_id, "k": f"k{account_id}", "d": DAY,
                                               "r": DAY + dt.timedelta(days=90), "s": state})
        conn.execute(text(
            "INSERT INTO legal_case (key, account_id, firm, referred_on, status, "
            "balance_at_referral, updated_at) VALUES ('c1', :a, 'firm', :d, 'referred', 3000, :d)"),
            {"a": referred, "d": DAY})
    with engine.connect() as conn:
        # The plan of the day (cutoff: its midnight) does not know what its own dispatch did.
        planned = load_accounts(conn, 0, 10**9, day=DAY, cutoff=dt.datetime(2026, 12, 1))
        at_send = load_accounts(conn, 0, 10**9, day=DAY, cutoff=dt.datetime(2026, 12, 1, 15))
    assert all(not a.holds for a in planned.values())
    assert at_send[placed].holds == {"agency_placement"}
    assert at_send[referred].holds == {"legal_referral"}
    assert at_send[recalled].holds == set()


def test_a_placement_without_an_agency_waits_a_day() -> None:
    v = evaluate(Step("agency"), facts(), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("core.agency_unassigned",))
    assert v.defer_until == dt.datetime(2026, 12, 2, 5)  # New York's next midnight, in UTC


@pytest.mark.parametrize("hold", ["dispute", "original_creditor_request"])
@pytest.mark.parametrize("channel", ["agency", "legal"])
def test_a_dispute_at_any_time_stops_placement_and_referral(hold: str, channel: str) -> None:
    step = Step(channel, agency="acme", agency_approved=True) if channel == "agency" else Step(
        channel)
    v = evaluate(step, facts(holds=frozenset({hold})), day=DAY)
    assert v.verdict == "block" and "core.dispute_before_referral" in v.reasons


def test_a_cease_request_stops_a_placement() -> None:
    step = Step("agency", agency="acme", agency_approved=True)
    v = evaluate(step, facts(holds=frozenset({"cease_communication"})), day=DAY)
    assert v.verdict == "block" and "core.cease_before_placement" in v.reasons
