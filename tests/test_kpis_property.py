"""Collected amounts reconcile with the payments to the cent, whatever the grouping (hypothesis):
for random payments, reversals, snapshots and contacts, every grouping's collected amounts add
up, per currency, to the payments received in the period less those reversed by its end."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from outreach.measurement import kpis
from outreach.measurement.measurement_config import MeasurementConfig
from outreach.storage.models import AccountSnapshot, Contact, Payment
from tests import factories

START = dt.date(2026, 5, 1)
FROM, TO = dt.date(2026, 5, 5), dt.date(2026, 5, 25)
NOW = dt.datetime(2026, 6, 1)
CONFIG = MeasurementConfig(fx_rates={"USD": Decimal(1)})  # CNY deliberately without a rate

day = st.integers(0, 30).map(lambda n: START + dt.timedelta(days=n))
payment = st.tuples(
    st.integers(0, 3),  # account index
    day,
    st.integers(1, 500_000).map(lambda c: Decimal(c) / 100),
    st.one_of(st.none(), day),  # reversed on
)
snapshot = st.tuples(st.integers(0, 3), day, st.sampled_from(["s1", "s2", None]),
                     st.sampled_from(["x", "y", None]), st.integers(0, 200))  # fmt: skip
contact = st.tuples(st.integers(0, 3), day, st.sampled_from(["sms", "email", "letter"]),
                    st.sampled_from(["early", "late"]))  # fmt: skip


def test_collected_reconciles_with_payments(tmp_path: Path) -> None:
    engine = factories.database(f"sqlite:///{tmp_path / 'app.db'}")
    accounts = [
        factories.add_account(engine, as_of=START, country="CN" if i == 3 else "US",
                              region="BJ" if i == 3 else "NY")["account_id"]
        for i in range(4)
    ]  # fmt: skip
    currency = ["USD", "USD", "USD", "CNY"]

    # No shrinking: a failing case is printed as found (each example runs the whole report).
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              phases=[Phase.explicit, Phase.generate], database=None)  # fmt: skip
    @given(st.lists(payment, max_size=25), st.lists(snapshot, max_size=25),
           st.lists(contact, max_size=15))  # fmt: skip
    def check(payments, snapshots, contacts) -> None:  # type: ignore[no-untyped-def]
        with engine.begin() as conn:
            for table in (Payment, AccountSnapshot, Contact):
                conn.execute(delete(table))
            for n, (i, paid_on, amount, reversed_on) in enumerate(payments):
                conn.execute(insert(Payment).values(
                    payment_ref=f"P{n}", account_id=accounts[i], paid_on=paid_on, amount=amount,
                    status="reversed" if reversed_on else "posted", reversed_on=reversed_on))  # fmt: skip
            seen = set()
            for i, as_of, stage, segment, dpd in snapshots:
                if (i, as_of) in seen:
                    continue
                seen.add((i, as_of))
                conn.execute(insert(AccountSnapshot).values(
                    as_of=as_of, account_id=accounts[i], dpd=dpd, bucket="1-30",
                    past_due=Decimal(dpd), balance=Decimal(dpd), currency=currency[i], stage=stage,
                    segment=segment, arm=segment and f"e/{segment}"))  # fmt: skip
            for n, (i, sent_on, channel, stage) in enumerate(contacts):
                conn.execute(insert(Contact).values(
                    key=f"K{n}", account_id=accounts[i], stage=stage, action="a", slot=0,
                    channel=channel, plan_date=sent_on, state="sent", verdict="send",
                    config_version="L", pack_versions="core",
                    sent_at=dt.datetime.combine(sent_on, dt.time(9)), updated_at=NOW))  # fmt: skip
        expected: dict[str, Decimal] = {}
        for i, paid_on, amount, reversed_on in payments:
            if FROM <= paid_on <= TO and not (reversed_on and reversed_on <= TO):
                expected[currency[i]] = expected.get(currency[i], Decimal(0)) + amount
        report = kpis.compute(engine, FROM, TO, config=CONFIG)
        assert report.headline["collected"] == expected
        for group in report.groups:
            if not group.key.startswith("recovery_by_"):
                continue
            totals: dict[str, Decimal] = {}
            for row in group.rows:
                totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["collected"]
            assert {c: v for c, v in totals.items() if v} == expected, group.key
        # Converted totals leave out the currency without a rate, and say so.
        usd = expected.get("USD", Decimal(0))
        assert report.headline["collected_reporting"] == usd
        missing = report.method["currencies_without_rate"]
        assert missing in ([], ["CNY"]) and ("CNY" in missing or "CNY" not in expected)
        for key in ("contacts_by_day", "contacts_by_channel", "contacts_by_arm"):
            total = sum((r["collected_reporting"] for r in report.group(key).rows), Decimal(0))
            assert total == usd, key

    check()
