"""Issue 13 item 8: a notice counts from the day it is mailed (its print batch, the plan day in
the consumer's zone), the letter and the gates read that one day, and a replan of the same day
after dispatch gives the same plan."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text

from contact_channels.letter_wording import format_date
from outreach.dispatch.dispatcher import dispatch_range
from outreach.kernel.facts import load_accounts
from outreach.media.letters.channel import PrintChannel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import PlanCounts, iter_plan
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import Step
from tests import factories as f

DAY = dt.date(2026, 11, 23)  # a Monday; the Thursday after is Thanksgiving
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
GUAM = {"country": "US", "region": "GU", "address_zones": "Pacific/Guam",
        "phones": [{"value": "+16715550101", "type": "mobile", "zones": "Pacific/Guam"}]}  # fmt: skip


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


def plan(engine: Engine, day: dt.date = DAY) -> PlanCounts:
    total = PlanCounts()
    for counts in iter_plan(engine, LADDER, day, 1000):
        total.add(counts)
    return total


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def notice_date(engine: Engine, account_id: int) -> dt.date:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT validation_notice_sent_on FROM account WHERE id = :a"),
                             {"a": account_id}).scalar_one()  # fmt: skip
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def test_a_guam_notice_counts_from_its_mailing_day_in_the_letter_and_the_gate(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    # Guam is UTC+10: its local day DAY starts at 14:00 UTC on the eve, where the logical
    # clock sends the letter. The print batch (the mailing day) is DAY all the same.
    acc = f.add_account(engine, as_of=DAY, dpd=5, **GUAM)
    plan(engine)
    counts = dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    assert counts.sent == 1
    assert notice_date(engine, acc["account_id"]) == DAY

    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter' AND state = 'sent'"), {"a": acc["account_id"]}).scalar_one()  # fmt: skip
        facts = load_accounts(conn, acc["account_id"], acc["account_id"], day=DAY + dt.timedelta(1),
                              cutoff=dt.datetime(2026, 11, 24))[acc["account_id"]]  # fmt: skip
    pdf = (drop / DAY.isoformat() / "letters" / f"{key}.pdf").read_bytes()
    words = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    verdict = evaluate(Step("legal"), facts.gate_facts("collector"), day=DAY + dt.timedelta(1),
                       trace=True)  # fmt: skip
    period = next(r for r in verdict.results if r.rule_id == "us_reg_f.validation_period_open")
    ends = period.facts["validation_period_ends"]
    # Mailed Monday Nov 23: receipt 5 business days on (Thanksgiving skipped), then 30 days.
    assert ends == "2026-12-31"
    assert f"Call or write to us by {format_date(ends, 'en')} to dispute" in words


def test_a_replan_of_the_same_day_after_dispatch_gives_the_same_plan(
    engine: Engine, printer: PrintChannel
) -> None:
    ids = [f.add_account(engine, as_of=DAY, dpd=5, **GUAM)["account_id"] for _ in range(3)]
    ids.append(f.add_account(engine, as_of=DAY, dpd=5)["account_id"])  # New York
    first = plan(engine)
    decisions = count(engine, "SELECT COUNT(*) FROM policy_decision WHERE phase = 'plan'")
    dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    assert count(engine, "SELECT COUNT(*) FROM contact WHERE state = 'sent'") == len(ids)

    again = plan(engine)
    assert again.as_dict() == first.as_dict()
    assert count(engine, "SELECT COUNT(*) FROM policy_decision WHERE phase = 'plan'") == decisions
    # Every sent notice keeps its plan-phase decision.
    assert count(
        engine,
        "SELECT COUNT(*) FROM contact c WHERE c.state = 'sent' AND NOT EXISTS (SELECT 1 FROM "
        "policy_decision d WHERE d.contact_key = c.key AND d.phase = 'plan' AND d.as_of = :day)",
        day=DAY,
    ) == 0
    # And the next day the notices are on record: none is planned again.
    assert all(notice_date(engine, i) == DAY for i in ids)


def test_a_notice_recorded_on_the_eve_by_an_older_dispatch_does_not_change_the_days_replan(
    engine: Engine, printer: PrintChannel
) -> None:
    # Ledgers written before the fix recorded the send instant's UTC date (the eve for Guam):
    # a replan of the day must still see the day's own notice as taken that day, not before.
    acc = f.add_account(engine, as_of=DAY, dpd=5, **GUAM)
    first = plan(engine)
    dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    with engine.begin() as conn:
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d WHERE id = :a"),
                     {"d": DAY - dt.timedelta(1), "a": acc["account_id"]})  # fmt: skip
    assert plan(engine).as_dict() == first.as_dict()
