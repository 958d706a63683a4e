"""Legal referral: the law firm an account goes to, and what its case package holds.

Whether an account may be referred is the gate's alone (core.legal_min_balance,
core.final_notice_wait, core.dispute_before_referral, the time bar, the validation period,
bankruptcy, SCRA): a referral that reaches these hooks was allowed by a rule on record.

The package's layout (PDF, JSON, CSV files at the firm's drop location) is the adapter's,
``contact_channels.legal_package``; its content is decided here. Details:
docs/agency-and-legal.md.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from contact_channels.media_fields import LegalFields, Refusal
from outreach.kernel.facts import as_date, as_instant
from outreach.media.agency.config import (
    LawFirm,
    agency_config,
    drop_root,
    jurisdiction_codes,
    licensed,
)
from outreach.media.agency.placement import account_lines
from outreach.planning.kinds import ChannelHooks, MessageContext
from policies.model import Verdict

# The reason codes a referral is refused with (the adapter's PermanentError code): the
# medium's own conditions, which no gate can know.
NO_FIRM = "legal.no_firm"
ALREADY_REFERRED = "legal.already_referred"
REFUSAL_CODES = (NO_FIRM, ALREADY_REFERRED)

HISTORY_COLUMNS = ("occurred_at", "channel", "direction", "outcome", "source", "stage", "action")
PAYMENT_COLUMNS = ("payment_ref", "paid_on", "amount", "currency")


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _iso(value: object) -> str:
    day = as_date(value)
    return day.isoformat() if day else ""


class LegalHooks(ChannelHooks):
    """Picks the law firm (licensed for the account's jurisdiction; the one with the fewest open
    cases, ties by id) and builds the case package's content. An account with no firm, or
    referred under another key, gets a ``refusal`` marker the adapter turns into a
    PermanentError with that code."""

    def __init__(self, engine: Engine | None = None, day: dt.date | None = None) -> None:
        super().__init__(engine, day)
        config = agency_config()
        self.firms = sorted(config.law_firms, key=lambda f: f.id)
        self.open_cases: Counter[str] = Counter()
        if engine is not None:
            with engine.connect() as conn:
                for firm, n in conn.execute(
                    text(
                        "SELECT firm, COUNT(*) FROM legal_case WHERE status = 'referred' "
                        "GROUP BY firm"
                    )
                ):
                    self.open_cases[firm] = int(n)

    def firm_for(self, country: str, region: str | None) -> LawFirm | None:
        candidates = [f for f in self.firms if licensed(f.jurisdictions, country, region)]
        if not candidates:
            return None
        return min(candidates, key=lambda f: (self.open_cases[f.id], f.id))

    def fields(self, ctx: MessageContext, verdict: Verdict) -> LegalFields | Refusal:
        account = ctx.account
        referred = ctx.conn.execute(
            text("SELECT key FROM legal_case WHERE account_id = :a"), {"a": account.id}
        ).scalar()
        if referred is not None and referred != ctx.contact.key:
            return Refusal(ALREADY_REFERRED)
        firm = self.firm_for(account.country, account.region)
        if firm is None:
            return Refusal(NO_FIRM)
        self.open_cases[firm.id] += 1
        content = case_package(ctx, firm)
        root = drop_root("legal", firm.id, firm.drop, firm.conn_id)
        return replace(content, drop=str(root), conn_id=firm.conn_id)


def case_package(ctx: MessageContext, firm: LawFirm) -> LegalFields:
    """What the firm receives about one account, as plain data: the summary's lines, the
    manifest (without its file list, which the adapter adds with each file's sha256), the
    contact history and the payments. Deterministic for the same data and send instant."""
    conn, account, day = ctx.conn, ctx.account, ctx.day
    line = account_lines(conn, [account.id], day)[account.id]
    currency = line["currency"]
    row = conn.execute(
        text(
            "SELECT product, due_date, charge_off_date, limitation_date, validation_notice_sent_on, "
            "scra_checked_on, scra_active_duty FROM account WHERE id = :a"
        ),
        {"a": account.id},
    ).one()
    notice = account.final_notice_sent_on
    payments = [
        {
            "payment_ref": r[0],
            "paid_on": _iso(r[1]),
            "amount": str(Decimal(str(r[2])).quantize(Decimal("0.01"))),
            "currency": currency,
        }
        for r in conn.execute(
            text(
                "SELECT payment_ref, paid_on, amount FROM payment WHERE account_id = :a "
                "AND paid_on <= :day ORDER BY paid_on, payment_ref"
            ),
            {"a": account.id, "day": day},
        )
    ]
    history = contact_history(conn, account.id, ctx.at)
    balance, past_due = Decimal(line["balance"]), Decimal(line["past_due"])
    paid_total = sum((Decimal(p["amount"]) for p in payments), Decimal(0))
    due_date = as_date(row[1])
    jurisdiction = sorted(jurisdiction_codes(account.country, account.region), key=len)[-1]
    address = ", ".join(
        x for x in (line["address_line1"], line["city"], line["region"], line["postal_code"],
                    line["country"]) if x
    )  # fmt: skip
    dates = {
        "referred_on": day.isoformat(),
        "due_date": _iso(row[1]),
        "charge_off_date": _iso(row[2]),
        "last_payment_date": line["last_payment_date"],
        "limitation_date": _iso(row[3]),
        "validation_notice_sent_on": _iso(row[4]),
        "final_notice_sent_on": notice.isoformat() if notice else "",
        "scra_checked_on": _iso(row[5]),
    }
    manifest = {
        "format": "outreach.case_package/1",
        "ledger_key": ctx.contact.key,
        "account": {
            "account_ref": line["account_ref"],
            "full_name": line["full_name"],
            "address": address,
            "jurisdiction": jurisdiction,
            "product": row[0],
            "currency": currency,
        },
        "amounts": {
            "balance": str(balance),
            "past_due": str(past_due),
            "payments_total": str(paid_total.quantize(Decimal("0.01"))),
        },
        "dates": dates,
        "scra_active_duty": bool(row[6]),
        "firm": {"id": firm.id, "name": firm.name},
        "history_entries": len(history),
        "payments_count": len(payments),
    }
    dpd = (day - due_date).days if due_date else None
    summary = [
        ("Account", line["account_ref"]),
        ("Debtor", line["full_name"]),
        ("Address", address),
        ("Jurisdiction", jurisdiction),
        ("Product", str(row[0]).replace("_", " ")),
        ("Balance", _money(balance, currency)),
        ("Amount past due", _money(past_due, currency)),
        ("Oldest unpaid due date", dates["due_date"] or "unknown"),
        ("Days past due", str(dpd) if dpd is not None else "unknown"),
        ("Charge-off date", dates["charge_off_date"] or "none"),
        ("Last payment", dates["last_payment_date"] or "none on record"),
        ("Payments on record", f"{len(payments)}, total {_money(paid_total, currency)}"),
        ("Validation notice sent", dates["validation_notice_sent_on"] or "none on record"),
        ("Final notice sent", dates["final_notice_sent_on"] or "none on record"),
        ("Limitation date", dates["limitation_date"] or "none on record"),
        ("Military status (SCRA) checked", dates["scra_checked_on"] or "not checked"),
        ("On active duty", "yes" if row[6] else "no"),
        (
            "Contact history",
            f"{len(history)} {'entry' if len(history) == 1 else 'entries'} (history.csv)",
        ),
        ("Referred on", day.isoformat()),
        ("Law firm", f"{firm.name} ({firm.id})"),
    ]
    return LegalFields(
        account_id=account.id,
        account_ref=line["account_ref"],
        firm=firm.id,
        firm_name=firm.name,
        referred_on=day.isoformat(),
        balance=str(balance),
        title=f"Case referral {line['account_ref']}",
        summary=[list(pair) for pair in summary],
        manifest=manifest,
        history={"columns": list(HISTORY_COLUMNS), "rows": history},
        payments={"columns": list(PAYMENT_COLUMNS), "rows": payments},
    )


def contact_history(conn: Connection, account_id: int, before: dt.datetime) -> list[dict[str, str]]:
    """Every contact event on record (imported history, our sends, outcomes) and every sent
    ledger contact without its event, known before ``before``, oldest first. Destinations are
    left out: the firm gets what happened, not the numbers."""
    rows: list[dict[str, str]] = []
    for r in conn.execute(
        text(
            "SELECT e.occurred_at, e.channel, e.direction, e.outcome, e.source, c.stage, c.action "
            "FROM contact_event e LEFT JOIN contact c ON c.key = e.ledger_key "
            "WHERE e.account_id = :a AND e.occurred_at < :before "
            "UNION ALL SELECT c.sent_at, c.channel, 'outbound', 'sent', 'ledger', c.stage, c.action "
            "FROM contact c WHERE c.account_id = :a AND c.state = 'sent' AND c.sent_at < :before "
            "AND NOT EXISTS (SELECT 1 FROM contact_event e WHERE e.ledger_key = c.key)"
        ),
        {"a": account_id, "before": before},
    ):
        at = as_instant(r[0])
        rows.append(
            {
                "occurred_at": at.isoformat() + "Z",
                "channel": r[1],
                "direction": r[2],
                "outcome": r[3],
                "source": r[4],
                "stage": r[5] or "",
                "action": r[6] or "",
            }
        )
    rows.sort(key=lambda h: tuple(h[c] for c in HISTORY_COLUMNS))
    return rows
