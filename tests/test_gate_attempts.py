"""What counts as an attempt, rule by rule (issue 13 items 1 and 6): China's daily cap per number
counts attempts whose number is unknown; Regulation F's 7-in-7 and Massachusetts' 2-in-7 each
read a call that never connected from their own source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from outreach.dispatch.dispatcher import dispatch_range
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.portfolio.importer import import_file
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from policies.rulepacks import PACKS
from policies.windows import local_to_utc
from tests import factories as f

SHANGHAI = "Asia/Shanghai"
BOSTON = "America/New_York"
DAY = dt.date(2026, 11, 23)  # a Monday
ONE_DAY = dt.timedelta(days=1)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


def local(day: dt.date, hh: int, mm: int = 0, zone: str = SHANGHAI) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone)


def cn(history: tuple[PastContact, ...]) -> AccountFacts:
    return AccountFacts(1, "CN", "SH", 100.0, address_zones=(SHANGHAI,), history=history,
                        balance=5000.0)  # fmt: skip


def cn_call(cp: int = 10) -> Step:
    return Step("call", cp, (SHANGHAI,), phone_type="mobile")


def no_destination(n: int, outcome: str = "no_answer") -> tuple[PastContact, ...]:
    """Imported calls whose row gave no destination (contact_point_id unknown)."""
    return tuple(PastContact(local(DAY, 9, i), "call", outcome, None, None) for i in range(n))


# --- item 1: China, history without a destination -------------------------------------------


def test_china_daily_cap_counts_calls_whose_number_is_unknown() -> None:
    v = evaluate(cn_call(), cn(no_destination(6)), day=DAY, at=local(DAY, 15))
    assert (v.verdict, v.reasons) == ("defer", ("cn.unanswered_attempts_daily",))
    plan = evaluate(cn_call(), cn(no_destination(6)), day=DAY)
    assert (plan.verdict, plan.reasons) == ("defer", ("cn.unanswered_attempts_daily",))
    facts = plan.evidence()["cn.unanswered_attempts_daily"]["facts"]
    assert facts["counted_in_period"] == 6


def test_china_daily_cap_adds_unknown_and_known_numbers_for_the_step_number() -> None:
    mixed = no_destination(3) + tuple(
        PastContact(local(DAY, 10, i), "call", "busy", 10, "mobile") for i in range(3)
    )
    assert evaluate(cn_call(10), cn(mixed), day=DAY).verdict == "defer"
    # Another known number's calls still do not count for this one: 3 unknown + 0 < 6.
    assert evaluate(cn_call(11), cn(mixed), day=DAY).verdict == "send"


def test_china_five_calls_of_unknown_number_leave_room_for_a_sixth() -> None:
    assert evaluate(cn_call(), cn(no_destination(5)), day=DAY, at=local(DAY, 15)).verdict == "send"


def test_china_pack_version_records_the_new_reading() -> None:
    v = evaluate(cn_call(), cn(()), day=DAY)
    assert "cn@2022.07.07-r3" in v.pack_versions


# --- item 6: a call that never connected, per rule -------------------------------------------


def ma(history: tuple[PastContact, ...], role: str = "collector") -> AccountFacts:
    return AccountFacts(1, "US", "MA", 100.0, address_zones=(BOSTON,), history=history,
                        balance=5000.0, role=role)  # fmt: skip


def ma_call(cp: int = 10) -> Step:
    return Step("call", cp, (BOSTON,), phone_type="mobile", consent=True)


def calls(outcomes: list[str], first: dt.date) -> tuple[PastContact, ...]:
    return tuple(
        PastContact(local(first + ONE_DAY * i, 11, zone=BOSTON), "call", o, 10, "mobile")
        for i, o in enumerate(outcomes)
    )


@pytest.mark.parametrize("outcome", ["busy", "not_in_service", "wrong_number"])
def test_massachusetts_does_not_count_a_call_that_reached_neither_debtor_nor_voicemail(
    outcome: str,
) -> None:
    # Two such calls in the seven days: the creditor was truly unable to reach the debtor or
    # leave a message, so it has initiated no communication.
    history = calls([outcome, outcome], DAY - 3 * ONE_DAY)
    v = evaluate(ma_call(), ma(history), day=DAY)
    assert v.verdict == "send", v.reasons
    assert evaluate(ma_call(), ma(history, role="creditor"), day=DAY).verdict == "send"


@pytest.mark.parametrize("outcome", ["conversation", "voicemail", "no_answer", "attempted"])
def test_massachusetts_counts_a_call_that_connected_or_whose_fate_is_unknown(
    outcome: str,
) -> None:
    history = calls(["voicemail", outcome], DAY - 3 * ONE_DAY)
    v = evaluate(Step("sms", 10, (BOSTON,), phone_type="mobile", consent=True), ma(history),
                 day=DAY)  # fmt: skip
    assert (v.verdict, v.reasons) == ("defer", ("us_ma.personal_phone_2in7",))


@pytest.mark.parametrize("outcome", ["failed", "undelivered"])
def test_massachusetts_does_not_count_a_text_that_never_arrived(outcome: str) -> None:
    texts = tuple(PastContact(local(DAY - ONE_DAY * k, 11, zone=BOSTON), "sms", outcome, 10,
                              "mobile") for k in (1, 2))  # fmt: skip
    assert evaluate(ma_call(), ma(texts), day=DAY).verdict == "send"
    sent = tuple(PastContact(h.at, "sms", "sent", 10, "mobile") for h in texts)
    assert evaluate(ma_call(), ma(sent), day=DAY).verdict == "defer"


def test_the_same_busy_calls_count_for_neither_cap_and_answered_ones_for_both() -> None:
    """Seven busy or not-in-service calls: no Regulation F attempt (1006.14(b)(3)(iii)) and no
    Massachusetts communication; seven unanswered ones are both."""
    never = calls(["busy", "not_in_service"] * 3 + ["busy"], DAY - 6 * ONE_DAY)
    v = evaluate(ma_call(), ma(never), day=DAY, trace=True)
    assert v.verdict == "send"
    ev = v.evidence()
    assert ev["us_reg_f.call_frequency_7in7"]["facts"]["attempts_in_period"] == 0
    assert ev["us_ma.personal_phone_2in7"]["facts"]["counted_in_period"] == 0
    rang = calls(["no_answer"] * 7, DAY - 6 * ONE_DAY)
    v = evaluate(ma_call(), ma(rang), day=DAY)
    assert set(v.reasons) == {"us_reg_f.call_frequency_7in7", "us_ma.personal_phone_2in7"}


def test_each_attempt_rule_cites_its_reading_of_a_call_that_never_connected() -> None:
    rules = {r.rule_id: r for p in PACKS for r in p.rules}
    assert "1006.14(b)(3)(iii)" in rules["us_reg_f.call_frequency_7in7"].citation
    ma_cite = rules["us_ma.personal_phone_2in7"].citation
    assert "truly unable to reach the debtor or to leave a message" in ma_cite
    assert rules["us_ma.other_phone_2in30"].params["not_counted"] == \
        rules["us_ma.personal_phone_2in7"].params["not_counted"]  # fmt: skip
    v = evaluate(ma_call(), ma(()), day=DAY)
    assert "us_ma@2023.01.01-r2" in v.pack_versions


# --- item 1 end to end: import, plan, dispatch -----------------------------------------------


def _cn_account_file(path: Path) -> Path:
    record = {
        "record": "account", "account_ref": "CN1", "person_ref": "PCN1", "full_name": "王伟",
        "language": "zh-CN", "product": "credit_card", "currency": "CNY",
        "balance": "8000.00", "amount_past_due": "900.00", "due_date": "2026-11-03",
        "balance_as_of": "2026-11-20", "country": "CN", "region": "GD", "city": "广州",
        "address_line1": "天河路 1 号", "postal_code": "510000",
        "phones": [{"number": "+8613800138000", "type": "mobile", "sms_consent": True,
                    "call_consent": True}],
    }  # fmt: skip
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _calls_without_destination(path: Path, n: int) -> Path:
    """``n`` unanswered calls early on the local day, from a previous system that did not say
    which number it dialled (``destination`` is optional)."""
    rows = [
        {"record": "contact_event", "account_ref": "CN1", "channel": "call",
         "occurred_at": f"{DAY}T07:{10 + i:02d}:00+08:00", "outcome": "no_answer",
         "event_ref": f"old-call-{i}"}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("earlier_calls", "queued"), [(6, 0), (5, 1)])
def test_china_a_seventh_call_is_not_dispatched_after_calls_imported_without_destination(
    tmp_path: Path, earlier_calls: int, queued: int
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = f.database(url)
    assert not import_file(_cn_account_file(tmp_path / "accounts.jsonl"), engine=engine).rejected
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    planned = f.contacts(engine, channel="call")
    assert [(c["action"], c["state"]) for c in planned] == [("agent_call", "planned")]
    # The day's earlier calls arrive after the plan; the dispatcher's send-time gate reads them.
    report = import_file(_calls_without_destination(tmp_path / "calls.jsonl", earlier_calls),
                         engine=engine)  # fmt: skip
    assert not report.rejected
    with engine.connect() as conn:
        cps = conn.execute(text("SELECT DISTINCT contact_point_id FROM contact_event")).all()
    assert cps == [(None,)]
    channel = build_channel("call", {"backend": "agent_queue"},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    counts = dispatch_range(engine, DAY, "call", 0, 10**9, clock="logical", channel_impl=channel)
    assert counts.sent == queued
    with engine.connect() as conn:
        tasks = conn.execute(text("SELECT COUNT(*) FROM call_task")).scalar()
        row = conn.execute(text("SELECT state, reasons FROM contact WHERE channel = 'call'")).one()
    assert tasks == queued
    if not queued:
        assert tuple(row) == ("deferred", "cn.unanswered_attempts_daily")
