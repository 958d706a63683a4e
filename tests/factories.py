"""Builders for small portfolios written straight into a test database."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text

from outreach.storage.db import make_engine, migrate
from outreach.storage.models import (
    Account,
    AccountHold,
    ContactEvent,
    ContactPoint,
    OptOut,
    Payment,
    Person,
)

NOW = dt.datetime(2026, 1, 1)
_refs = itertools.count(1)


def database(url: str) -> Engine:
    migrate(url)
    return make_engine(url)


def add_account(
    engine: Engine,
    *,
    as_of: dt.date,
    dpd: int = 5,
    balance: str = "1000.00",
    past_due: str = "100.00",
    country: str = "US",
    region: str | None = "NY",
    address_zones: str | None = "America/New_York",
    language: str = "en",
    phones: list[dict[str, Any]] | None = None,
    emails: list[str | dict[str, Any]] | None = None,
    postal: bool = True,
    segment: str | None = None,
    product: str = "credit_card",
    city: str = "Town",
    inconvenient_times: str | None = None,
    **account_columns: Any,
) -> dict[str, Any]:
    """One person with one account; returns ids: account, person and contact points by label.

    A phone is a dict (value, type, zones, sms_consent, call_consent, workplace, valid,
    no_calls_at_work, used_by_consumer, relation); an email is an address or such a dict with
    ``value`` and consent, workplace, used_by_consumer, relation, valid. ``account_columns`` go
    to the account row as they are (validation_notice_sent_on, scra_checked_on, ...).
    """
    n = next(_refs)
    if "itemization_date" not in account_columns:
        # The Regulation F itemization (us_reg_f.itemization_unknown blocks a validation notice
        # without one): the last statement, on the snapshot day, at the snapshot balance.
        account_columns = {"itemization_date": as_of - dt.timedelta(days=1),
                           "itemization_kind": "last_statement",
                           "itemization_amount": Decimal(balance), **account_columns}
    if phones is None:
        phones = [{"value": f"+1212555{n % 10000:04d}", "type": "mobile",
                   "zones": "America/New_York"}]
    emails = [f"person{n}@example.com"] if emails is None else emails
    with engine.begin() as conn:
        person_id = conn.execute(insert(Person).values(
            person_ref=f"P{n:07d}", full_name=f"Pat Example{n}", language=language,
            address_line1="1 Main St", city=city, region=region, postal_code="10001",
            country=country, time_zones=address_zones, inconvenient_times=inconvenient_times,
            updated_at=NOW)).inserted_primary_key[0]
        account_id = conn.execute(insert(Account).values(
            account_ref=f"A{n:07d}", person_id=person_id, product=product,
            currency="USD" if country == "US" else "CNY", balance=Decimal(balance),
            amount_past_due=Decimal(past_due), due_date=as_of - dt.timedelta(days=dpd),
            balance_as_of=as_of - dt.timedelta(days=1), jurisdiction_country=country,
            jurisdiction_region=region, segment=segment, updated_at=NOW,
            **account_columns)).inserted_primary_key[0]
        points: dict[str, int] = {}
        for i, phone in enumerate(phones):
            points[f"phone{i}"] = conn.execute(insert(ContactPoint).values(
                person_id=person_id, kind="phone", value=phone["value"],
                phone_type=phone.get("type", "mobile"), time_zones=phone.get("zones"),
                sms_consent=phone.get("sms_consent", True),
                call_consent=phone.get("call_consent", True),
                is_workplace=phone.get("workplace", False), valid=phone.get("valid", True),
                no_calls_at_work=phone.get("no_calls_at_work", False),
                used_by_consumer=phone.get("used_by_consumer", False),
                relation=phone.get("relation", "self"),
                priority=i + 1, updated_at=NOW)).inserted_primary_key[0]
        for i, email in enumerate(emails):
            e = {"value": email} if isinstance(email, str) else email
            points[f"email{i}"] = conn.execute(insert(ContactPoint).values(
                person_id=person_id, kind="email", value=e["value"], priority=i + 1,
                email_consent=e.get("consent", False), is_workplace=e.get("workplace", False),
                used_by_consumer=e.get("used_by_consumer", False),
                relation=e.get("relation", "self"), valid=e.get("valid", True),
                updated_at=NOW)).inserted_primary_key[0]
        if postal:
            points["postal"] = conn.execute(insert(ContactPoint).values(
                person_id=person_id, kind="postal", value="1 Main St, Town, NY 10001",
                priority=1, updated_at=NOW)).inserted_primary_key[0]
    return {"account_id": account_id, "person_id": person_id, "account_ref": f"A{n:07d}",
            "points": points}


def add_hold(engine: Engine, account_id: int, kind: str, started_on: dt.date,
             ended_on: dt.date | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(AccountHold).values(account_id=account_id, kind=kind,
                                                started_on=started_on, ended_on=ended_on,
                                                source="test"))


def add_opt_out(engine: Engine, person_id: int, channel: str, scope: str,
                recorded_at: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(OptOut).values(person_id=person_id, channel=channel, scope=scope,
                                           recorded_at=recorded_at, source="test"))


def add_payment(engine: Engine, account_id: int, paid_on: dt.date, amount: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Payment).values(payment_ref=f"PAY{next(_refs)}", account_id=account_id,
                                            paid_on=paid_on, amount=Decimal(amount)))


def add_call(engine: Engine, account_id: int, at: dt.datetime, outcome: str = "no_answer",
             direction: str = "outbound", contact_point_id: int | None = None) -> None:
    add_event(engine, account_id, at, "call", outcome, direction, contact_point_id)


def add_event(engine: Engine, account_id: int, at: dt.datetime, channel: str,
              outcome: str = "sent", direction: str = "outbound",
              contact_point_id: int | None = None) -> None:
    """One contact_event (naive UTC ``at``) on any channel."""
    with engine.begin() as conn:
        conn.execute(insert(ContactEvent).values(
            event_ref=f"E{next(_refs)}", account_id=account_id, occurred_at=at, channel=channel,
            contact_point_id=contact_point_id, direction=direction, outcome=outcome,
            source="import"))


def contacts(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    from outreach.storage.models import Contact

    stmt = select(Contact)
    for name, value in where.items():
        stmt = stmt.where(getattr(Contact, name) == value)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def add_final_notice(engine: Engine, account_id: int, sent_at: dt.datetime) -> None:
    """The account's final notice letter went out at ``sent_at``: a sent ledger row (what the
    agency and legal stages' ``requires`` read) and the account's date (what the dispatcher
    records when it sends one, and core.final_notice_wait reads)."""
    with engine.begin() as conn:
        due = conn.execute(select(Account.due_date).where(Account.id == account_id)).scalar()
        conn.execute(text(
            "INSERT INTO contact (key, account_id, episode, stage, action, slot, channel, "
            "plan_date, state, verdict, reasons, config_version, pack_versions, attempts, "
            "sent_at, updated_at) VALUES (:k, :a, :e, 'final_notice', 'final_notice_letter', 1, "
            "'letter', :p, 'sent', 'send', '', 'test', '', 1, :s, :s)"),
            {"k": f"notice-{account_id}", "a": account_id, "e": due, "p": sent_at.date(),
             "s": sent_at})  # fmt: skip
        conn.execute(text("UPDATE account SET final_notice_sent_on = :d WHERE id = :a"),
                     {"d": sent_at.date(), "a": account_id})  # fmt: skip


def _cjk_font_embedded() -> bool:
    from contact_channels.letter_fonts import letter_fonts

    return letter_fonts().cjk_embedded


# Chinese letters are refused without an embeddable CJK font (letter.cjk_font_missing): a test
# that needs one sent skips on a machine without it (.ci/run and the Dockerfile install
# fonts-wqy-zenhei, so CI runs them).
needs_cjk_font = pytest.mark.skipif(
    not _cjk_font_embedded(),
    reason="no CJK TrueType font installed (apt-get install fonts-wqy-zenhei)",
)
