"""The resolution loop in the generated portfolio: promises, arrangements, stated means, causes,
partial and returned payments, deterministic for the seed and consistent with the accounts."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import Counter
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from outreach.portfolio.generator import generate
from outreach.resolution.policy import CAUSES

AS_OF = dt.date(2026, 11, 20)
SNAPSHOT = AS_OF - dt.timedelta(days=1)
ACCOUNTS = 4000
LOOP_RECORDS = ("promise", "arrangement", "means", "cause", "payment_reversal")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("gen-loop") / "portfolio.jsonl"
    report = generate(ACCOUNTS, seed=5, out=path, as_of=AS_OF)
    return report, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def records(generated: tuple[Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return generated[1]


def _of(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["record"] == kind]


def _accounts(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["account_ref"]: r for r in _of(records, "account")}


def _payments(records: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [p for p in _of(records, "payment") if p["payment_ref"].rsplit("-", 1)[1][0] == suffix]


def _instant(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    assert at.utcoffset() is not None, f"{text} has no offset"
    return at


def test_the_report_counts_every_loop_record(
    generated: tuple[Any, list[dict[str, Any]]],
) -> None:
    report, records = generated
    kinds = Counter(r["record"] for r in records)
    assert report.promises == kinds["promise"] > 0
    assert report.arrangements == kinds["arrangement"] > 0
    assert report.settlements == sum(a["kind"] == "settlement" for a in _of(records, "arrangement"))
    assert report.means == kinds["means"] > 0
    assert report.causes == kinds["cause"] > 0
    assert report.payment_reversals == kinds["payment_reversal"] > 0
    assert report.partial_payments == len(_payments(records, "R")) > 0
    assert report.payments == kinds["payment"]
    assert report.lines == len(records)
    assert "promises" in str(report) and "arrangements" in str(report)


def test_loop_records_come_in_realistic_shares(records: list[dict[str, Any]]) -> None:
    n = len(_of(records, "account"))
    assert 0.025 < len(_of(records, "promise")) / n < 0.06
    arrangements = Counter(a["kind"] for a in _of(records, "arrangement"))
    assert 0.008 < arrangements["instalment"] / n < 0.03
    assert arrangements["settlement"] >= 1
    assert 0.03 < len(_of(records, "means")) / n < 0.09
    assert 0.04 < len(_of(records, "cause")) / n < 0.15
    assert 0.005 < len(_of(records, "payment_reversal")) / n < 0.02
    assert 0.01 < len(_payments(records, "R")) / n < 0.04
    # One promise and one arrangement at most per account (promises.max_open is 1).
    for kind in ("promise", "arrangement"):
        refs = Counter(r["account_ref"] for r in _of(records, kind))
        assert max(refs.values()) == 1


def test_promises_fall_due_before_and_after_the_day_and_some_are_paid(
    records: list[dict[str, Any]],
) -> None:
    accounts = _accounts(records)
    paid = {p["account_ref"]: p for p in _payments(records, "P")}
    before = after = past_grace = 0
    for p in _of(records, "promise"):
        account = accounts[p["account_ref"]]
        assert account["due_date"] and Decimal(account["amount_past_due"]) > 0
        assert not any(h["account_ref"] == p["account_ref"] for h in _of(records, "hold"))
        due = dt.date.fromisoformat(p["due_on"])
        made = _instant(p["made_at"]).date()
        assert made < AS_OF and 0 < (due - made).days <= 30  # promises.max_days_ahead
        assert Decimal(p["amount"]) > 0 and p["source"] in ("agent", "self_service")
        if due >= AS_OF:
            after += 1
            assert p["account_ref"] not in paid  # not due yet: nothing paid so far
        else:
            before += 1
            if (AS_OF - due).days > 3:  # past its grace days: unpaid, broken on settling
                past_grace += 1
                assert p["account_ref"] not in paid
        if p["account_ref"] in paid:
            payment = paid[p["account_ref"]]
            assert payment["paid_on"] == AS_OF.isoformat()  # after the snapshot
            assert Decimal(payment["amount"]) <= Decimal(p["amount"])
    assert before and after and past_grace
    full = [
        a
        for a, pay in paid.items()
        if any(
            p["account_ref"] == a and p["amount"] == pay["amount"] for p in _of(records, "promise")
        )
    ]
    assert full and len(full) < len(paid)  # some kept in full, some in part


def test_instalment_plans_are_paid_on_their_schedule_or_miss_the_latest(
    records: list[dict[str, Any]],
) -> None:
    accounts = _accounts(records)
    payments: dict[str, list[dict[str, Any]]] = {}
    for p in _payments(records, "I"):
        payments.setdefault(p["account_ref"], []).append(p)
    kept = missed = 0
    for a in _of(records, "arrangement"):
        accepted = _instant(a["accepted_at"]).date()
        first = dt.date.fromisoformat(a["first_due_on"])
        total = Decimal(a["total"])
        assert a["state"] == "active" and accepted < AS_OF
        assert total == total.quantize(Decimal("0.01")) and total > 0
        if a["kind"] == "settlement":
            assert a["term_months"] == 1 and first > AS_OF
            assert total < Decimal(accounts[a["account_ref"]]["balance"])  # at a discount
            assert a["account_ref"] not in payments
            continue
        assert a["term_months"] in (6, 12, 24) and first == accepted + dt.timedelta(days=7)
        # Rounded down, the last instalment taking the remainder (offers.split).
        instalment = (total / a["term_months"]).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        assert instalment >= (Decimal(25) if accounts[a["account_ref"]]["currency"] == "USD"
                              else Decimal(100))  # fmt: skip
        due = [d for i in range(a["term_months"]) if (d := _monthly(first, i)) <= SNAPSHOT]
        paid = sorted(payments.get(a["account_ref"], []), key=lambda p: p["paid_on"])
        assert [p["paid_on"] for p in paid] == [d.isoformat() for d in due[: len(paid)]]
        assert all(Decimal(p["amount"]) == instalment for p in paid)
        assert len(paid) in (len(due), len(due) - 1)
        if due and len(paid) < len(due):
            missed += 1
        elif due:
            kept += 1
    assert kept > missed > 0


def _monthly(first: dt.date, i: int) -> dt.date:
    import calendar

    month = first.month - 1 + i
    year, month = first.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(first.day, calendar.monthrange(year, month)[1]))


def test_partial_payments_are_forty_to_ninety_five_percent_of_what_is_past_due(
    records: list[dict[str, Any]],
) -> None:
    accounts = _accounts(records)
    for p in _payments(records, "R"):
        past_due = Decimal(accounts[p["account_ref"]]["amount_past_due"])
        assert p["paid_on"] == AS_OF.isoformat()
        assert past_due * Decimal("0.39") <= Decimal(p["amount"]) <= past_due * Decimal("0.96")


def test_returned_payments_follow_their_payment_and_leave_the_itemization_whole(
    records: list[dict[str, Any]],
) -> None:
    """A returned payment was paid and returned before the itemization date; the amount owed on
    that date plus nothing but the payments that stuck since gives the snapshot's balance."""
    position = {r["payment_ref"]: i for i, r in enumerate(records) if r["record"] == "payment"}
    by_ref = {p["payment_ref"]: p for p in _of(records, "payment")}
    accounts = _accounts(records)
    reversed_refs = set()
    for i, rev in enumerate(records):
        if rev["record"] != "payment_reversal":
            continue
        payment = by_ref[rev["payment_ref"]]
        assert position[rev["payment_ref"]] < i
        paid_on = dt.date.fromisoformat(payment["paid_on"])
        returned = dt.date.fromisoformat(rev["reversed_on"])
        account = accounts[payment["account_ref"]]
        assert paid_on < returned < dt.date.fromisoformat(account["itemization_date"])
        assert rev["reason"] in ("insufficient_funds", "account_closed", "chargeback", "stopped")
        reversed_refs.add(rev["payment_ref"])
    since: dict[str, Decimal] = Counter()  # type: ignore[assignment]
    for p in _of(records, "payment"):
        account = accounts[p["account_ref"]]
        if (
            dt.date.fromisoformat(account["itemization_date"])
            < dt.date.fromisoformat(p["paid_on"])
            <= SNAPSHOT
            and p["payment_ref"] not in reversed_refs
        ):
            since[p["account_ref"]] += Decimal(p["amount"])
    for ref, account in accounts.items():
        expected = Decimal(account["balance"]) + since.get(ref, Decimal(0))
        assert abs(Decimal(account["itemization_amount"]) - expected) <= Decimal("0.01"), ref


def test_means_and_causes_are_well_formed(records: list[dict[str, Any]]) -> None:
    accounts = _accounts(records)
    for m in _of(records, "means"):
        assert m["account_ref"] in accounts
        income, expenses = Decimal(m["monthly_income"]), Decimal(m["monthly_expenses"])
        assert income > 0 and expenses > 0 and dt.date.fromisoformat(m["stated_on"]) < AS_OF
    holds = {h["account_ref"]: h["kind"] for h in _of(records, "hold")}
    causes = _of(records, "cause")
    assert {c["cause"] for c in causes} <= set(CAUSES)
    assert all(_instant(c["recorded_at"]).date() < AS_OF for c in causes)
    disputed = [c for c in causes if holds.get(c["account_ref"]) == "dispute"]
    assert disputed and all(c["cause"] in ("disputes_debt", "fraud") for c in disputed)
    hardship = [c for c in causes if holds.get(c["account_ref"]) == "hardship"]
    assert hardship and all(c["cause"] in ("job_loss", "illness", "over_indebtedness")
                            for c in hardship)  # fmt: skip


def test_the_csv_carries_the_same_loop_records(tmp_path: Path) -> None:
    generate(600, seed=9, out=tmp_path / "p.jsonl.gz", as_of=AS_OF)
    generate(600, seed=9, out=tmp_path / "p.csv", as_of=AS_OF)
    with gzip.open(tmp_path / "p.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    with (tmp_path / "p.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows, strict=True):
        if line["record"] in LOOP_RECORDS:
            assert {k: str(v) for k, v in line.items()} == {k: v for k, v in row.items() if v}
