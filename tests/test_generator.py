"""The synthetic portfolio: deterministic, realistic in shape, and clean to import."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from outreach.kernel.zones import address_zones, normalize_phone, phone_zones
from outreach.portfolio.generator import generate
from outreach.portfolio.importer import import_file
from outreach.storage.db import make_engine, migrate
from policies.timeblocks import normalize as normalize_times

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = tmp_path_factory.mktemp("gen") / "portfolio.jsonl"
    generate(3000, seed=5, out=path, as_of=AS_OF)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _accounts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["record"] == "account"]


@pytest.mark.parametrize("name", ["p.jsonl", "p.csv", "p.jsonl.gz"])
def test_same_seed_and_day_give_the_same_bytes(tmp_path: Path, name: str) -> None:
    a, b, c = tmp_path / "a" / name, tmp_path / "b" / name, tmp_path / "c" / name
    generate(300, seed=7, out=a, as_of=AS_OF)
    generate(300, seed=7, out=b, as_of=AS_OF)
    generate(300, seed=8, out=c, as_of=AS_OF)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("name", ["portfolio.jsonl", "portfolio.csv"])
def test_the_output_imports_with_zero_rejects(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    generated = generate(1500, seed=3, out=tmp_path / name, as_of=AS_OF)
    report = import_file(tmp_path / name, engine=make_engine(url))
    assert report.rejected == 0, report.rejects_path and report.rejects_path.read_text()[:2000]
    assert report.rows_read == generated.lines
    assert report.by_record["account"]["read"] == generated.accounts == 1500
    assert report.by_record["contact_event"]["read"] == generated.contact_events


def test_the_portfolio_is_three_quarters_us_and_a_quarter_china(
    portfolio: list[dict[str, Any]],
) -> None:
    accounts = _accounts(portfolio)
    us = [a for a in accounts if a["country"] == "US"]
    cn = [a for a in accounts if a["country"] == "CN"]
    assert len(us) + len(cn) == len(accounts) == 3000
    assert 0.70 < len(us) / len(accounts) < 0.80
    assert {a["currency"] for a in us} == {"USD"} and {a["language"] for a in us} == {"en"}
    assert {a["currency"] for a in cn} == {"CNY"} and {a["language"] for a in cn} == {"zh-CN"}
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", a["full_name"]) for a in cn)
    states = Counter(a["region"] for a in us)
    assert states.most_common(1)[0][0] == "CA"  # weighted by population
    assert {"AZ", "HI", "FL", "IN", "TX"} <= set(states)
    split = [a for a in us if len(address_zones("US", a["region"], a["postal_code"])) == 2]
    assert split, "some addresses straddle a zone line"


def test_days_past_due_lean_early_with_a_few_current_accounts(
    portfolio: list[dict[str, Any]],
) -> None:
    accounts = _accounts(portfolio)
    current = [a for a in accounts if a["due_date"] is None]
    assert 0.01 < len(current) / len(accounts) < 0.06
    assert all(a["amount_past_due"] == "0.00" for a in current)
    dpd = [(AS_OF - dt.date.fromisoformat(a["due_date"])).days for a in accounts if a["due_date"]]
    assert min(dpd) >= 1 and max(dpd) <= 400
    assert sum(d <= 60 for d in dpd) > 2 * sum(d > 180 for d in dpd)
    for a in accounts:
        assert 0 <= float(a["amount_past_due"]) <= float(a["balance"])


def test_contacts_are_fictional(portfolio: list[dict[str, Any]]) -> None:
    accounts = _accounts(portfolio)
    phones = [p for a in accounts for p in a["phones"]]
    us_numbers = [re.sub(r"\D", "", p["number"]) for a in accounts if a["country"] == "US"
                  for p in a["phones"]]  # fmt: skip
    assert all(re.fullmatch(r"1?\d{3}55501\d\d", n) for n in us_numbers)
    cn_numbers = [normalize_phone(p["number"], "CN") for a in accounts if a["country"] == "CN"
                  for p in a["phones"]]  # fmt: skip
    assert cn_numbers and all(n.startswith("+86") for n in cn_numbers)
    emails = [e["address"] for a in accounts for e in a["emails"]]
    assert 0.7 < sum(1 for a in accounts if a["emails"]) / len(accounts) < 0.9
    assert all(e.split("@")[1] in ("example.com", "example.net", "example.org") for e in emails)
    kinds = Counter(p["type"] for p in phones)
    assert kinds["mobile"] > kinds["landline"] > kinds["work"] > 0


def test_some_people_moved_and_kept_a_mobile_from_another_zone(
    portfolio: list[dict[str, Any]],
) -> None:
    us = [a for a in _accounts(portfolio) if a["country"] == "US"]
    moved = 0
    for a in us:
        home = set(address_zones("US", a["region"], a["postal_code"]))
        for p in a["phones"]:
            number = "+1" + re.sub(r"\D", "", p["number"])[-10:]
            if p["type"] == "mobile" and not home & set(phone_zones(number)):
                moved += 1
                break
    assert 0.05 < moved / len(us) < 0.20


def test_history_covers_the_last_fourteen_days_with_busy_and_talked_to_accounts(
    portfolio: list[dict[str, Any]],
) -> None:
    events = [r for r in portfolio if r["record"] == "contact_event"]
    assert 0.8 < len(events) / 3000 < 2.0
    when: dict[str, list[dt.datetime]] = {e["account_ref"]: [] for e in events}
    for e in events:
        at = dt.datetime.fromisoformat(e["occurred_at"])
        assert at.utcoffset() is not None
        assert AS_OF - dt.timedelta(days=15) < at.date() < AS_OF
        assert 8 <= at.hour <= 20  # local calling hours
        if e["channel"] == "call" and e["direction"] == "outbound":
            when[e["account_ref"]].append(at)
    week_ago = dt.datetime.combine(AS_OF - dt.timedelta(days=7), dt.time(), dt.UTC)
    heavy = [ref for ref, calls in when.items() if sum(c >= week_ago for c in calls) >= 6]
    assert len(heavy) >= 30
    talked = {e["account_ref"] for e in events if e["outcome"] == "conversation"}
    assert len(talked) >= 100
    assert {e["channel"] for e in events} == {"call", "sms", "email", "letter"}


def test_holds_payments_and_opt_outs_come_in_realistic_shares(
    portfolio: list[dict[str, Any]],
) -> None:
    holds = Counter(r["kind"] for r in portfolio if r["record"] == "hold")
    open_disputes = sum(1 for r in portfolio if r["record"] == "hold"
                        and r["kind"] == "dispute" and r["ended_on"] is None)  # fmt: skip
    assert 45 < open_disputes < 140  # ~3% of 3000
    assert set(holds) == {"dispute", "bankruptcy", "deceased", "cease_communication", "attorney",
                          "hardship", "instalment_plan"}  # fmt: skip
    assert 10 < holds["instalment_plan"] < 60  # ~1%
    payments = [r for r in portfolio if r["record"] == "payment"]
    assert 300 < len(payments) < 1200
    opt_outs = [r for r in portfolio if r["record"] == "opt_out"]
    assert 40 < len(opt_outs) < 150
    assert any(o["destination"] == "*" for o in opt_outs)
    assert any(o["destination"] != "*" for o in opt_outs)


def test_compliance_facts_come_in_realistic_shares(portfolio: list[dict[str, Any]]) -> None:
    accounts = _accounts(portfolio)
    us_late = [a for a in accounts if a["country"] == "US" and a["due_date"]
               and (AS_OF - dt.date.fromisoformat(a["due_date"])).days > 6]  # fmt: skip
    past_20 = [a for a in us_late if (AS_OF - dt.date.fromisoformat(a["due_date"])).days > 20]
    noticed = [a for a in past_20 if "validation_notice_sent_on" in a]
    assert 0.90 < len(noticed) / len(past_20) < 0.99  # ~5% have no notice on record
    for a in us_late:
        first = dt.date.fromisoformat(a["initial_communication_on"])
        assert dt.date.fromisoformat(a["due_date"]) < first < AS_OF
        if "validation_notice_sent_on" in a:
            sent = dt.date.fromisoformat(a["validation_notice_sent_on"])
            assert 1 <= (sent - first).days <= 5 and sent < AS_OF
    others = [a for a in accounts if a not in us_late]
    assert not any("validation_notice_sent_on" in a for a in others)

    people = {a["person_ref"]: a for a in accounts}
    stated = [a["inconvenient_times"] for a in people.values() if "inconvenient_times" in a]
    assert 0.015 < len(stated) / len(people) < 0.05
    assert all(normalize_times(t) for t in stated)

    emails = [e for a in people.values() for e in a["emails"]]
    assert 0.5 < sum(e["consent"] for e in emails) / len(emails) < 0.7
    work_phones = [p for a in people.values() for p in a["phones"] if p["type"] == "work"]
    assert any(p["no_calls_at_work"] for p in work_phones)
    assert not all(p["no_calls_at_work"] for p in work_phones)

    checked = [a for a in accounts if "scra_checked_on" in a]
    assert 0.004 < len(checked) / len(accounts) < 0.02
    assert all(a["country"] == "US" for a in checked)
    assert all(dt.date.fromisoformat(a["scra_checked_on"]) < AS_OF for a in checked)
