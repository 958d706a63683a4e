"""Repayment arrangements' use cases, for the CLI (``outreach arrangements``), the console, the
self-service page and the daily run: the offers an account may take, accepting one, a second
person's approval, cancelling, stated means, the day's arrangement file
(``outreach.resolution.arrangements``, ``outreach.operations.arrangement_file``). Each is one
transaction; the configuration is validated first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from outreach.kernel.facts import account_ids_by_ref
from outreach.operations.arrangement_file import write_arrangement_file as _write_file
from outreach.resolution import arrangements as _arr
from outreach.resolution.arrangements import ArrangementRefused
from outreach.resolution.offers import Offer

__all__ = [
    "ArrangementRefused", "Offer", "accept", "approve", "cancel", "make_offer", "offer_json",
    "offers", "state_means", "write_arrangement_file",
]  # fmt: skip


def _engine(engine: Engine | None) -> Engine:
    from outreach.services.config import load_config
    from outreach.services.database import engine as app_engine

    db = engine or app_engine()
    load_config(engine=db)
    return db


def _account_id(conn: Connection, account_ref: str) -> int:
    found = account_ids_by_ref(conn, [account_ref]).get(account_ref)
    if found is None:
        raise ArrangementRefused("unknown_account", "no such account")
    return found


def offer_json(offer: Offer) -> dict[str, Any]:
    """An offer as JSON: money as strings, dates ISO."""
    return {
        "kind": offer.kind, "term_months": offer.term_months,
        "instalment_amount": str(offer.instalment_amount), "total": str(offer.total),
        "first_due_on": offer.first_due_on.isoformat(), "needs_approval": offer.needs_approval,
        "band": offer.band, "discount": str(offer.discount), "affordable": offer.affordable,
        "last_due_on": offer.schedule[-1][0].isoformat(),
        "last_amount": str(offer.schedule[-1][1]),
    }  # fmt: skip


def offers(account_ref: str, as_of: dt.date, *, engine: Engine | None = None) -> list[Offer]:
    """The offers the calculator allows ``account_ref`` on ``as_of``, instalment plans first."""
    db = _engine(engine)
    with db.connect() as conn:
        return _arr.offers_for_account(conn, _account_id(conn, account_ref), as_of)


def _pick(choices: list[Offer], offer: int | Mapping[str, Any] | Offer) -> Offer:
    """The offer chosen: by its index in ``offers``, by its terms (kind, term_months and, for a
    settlement, band), or an Offer equal to one of them. Anything else is refused: no one
    accepts terms the calculator does not allow today."""
    if isinstance(offer, Offer):
        if offer in choices:
            return offer
    elif isinstance(offer, int) and not isinstance(offer, bool):
        if 0 <= offer < len(choices):
            return choices[offer]
    elif isinstance(offer, Mapping):
        for o in choices:
            if o.kind == offer.get("kind") and o.term_months == int(offer.get("term_months", 0)) \
                    and offer.get("band") in (None, o.band):  # fmt: skip
                return o
    raise ArrangementRefused("not_offered", "that offer is not among the account's offers today")


def accept(
    account_ref: str, offer: int | Mapping[str, Any] | Offer, via: str, actor: str,
    as_of: dt.date, *, engine: Engine | None = None,
) -> str:  # fmt: skip
    """Accept one of today's offers for ``account_ref``; returns the arrangement's ref (active,
    or pending a second person's approval)."""
    db = _engine(engine)
    with db.begin() as conn:
        account_id = _account_id(conn, account_ref)
        chosen = _pick(_arr.offers_for_account(conn, account_id, as_of), offer)
        return _arr.accept_offer(conn, account_id=account_id, offer=chosen, via=via, actor=actor,
                                 day=as_of)  # fmt: skip


def make_offer(
    account_ref: str, offer: int | Mapping[str, Any] | Offer, via: str, actor: str,
    as_of: dt.date, *, engine: Engine | None = None,
) -> str:  # fmt: skip
    """Record that one of today's offers was made (letter, SMS or email link, an agent)."""
    db = _engine(engine)
    with db.begin() as conn:
        account_id = _account_id(conn, account_ref)
        chosen = _pick(_arr.offers_for_account(conn, account_id, as_of), offer)
        return _arr.record_offer(conn, account_id=account_id, offer=chosen, via=via, actor=actor,
                                 day=as_of)  # fmt: skip


def approve(ref: str, approver: str, as_of: dt.date, *, engine: Engine | None = None) -> None:
    """A second person approves the pending arrangement ``ref``."""
    db = _engine(engine)
    with db.begin() as conn:
        _arr.approve(conn, ref, approver, as_of)


def cancel(ref: str, actor: str, reason: str, as_of: dt.date, *,
           engine: Engine | None = None) -> None:  # fmt: skip
    """Cancel the arrangement ``ref`` (offered, pending or active)."""
    db = _engine(engine)
    with db.begin() as conn:
        _arr.cancel(conn, ref, actor, reason, as_of)


def state_means(
    account_ref: str, income: Decimal, expenses: Decimal, source: str, actor: str,
    as_of: dt.date, *, engine: Engine | None = None,
) -> list[Offer]:  # fmt: skip
    """Record the consumer's stated monthly income and expenses; returns the offers they size."""
    db = _engine(engine)
    with db.begin() as conn:
        account_id = _account_id(conn, account_ref)
        _arr.state_means(conn, account_id=account_id, income=income, expenses=expenses,
                         source=source, actor=actor, day=as_of)  # fmt: skip
        return _arr.offers_for_account(conn, account_id, as_of)


def write_arrangement_file(engine: Engine, day: dt.date) -> dict[str, Any]:
    """The day's file of new, changed and broken arrangements for the system of record."""
    return _write_file(engine, day)
