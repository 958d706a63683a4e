"""What the ops console reads from the ledger: an account's timeline, the day's uncertain and
failed contacts, the day's suppressed contacts by stage. Destinations and names are masked unless
the reader may see personal data (``pii``). See docs/console.md.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text

from contact_channels.masking import mask_email, mask_phone, scrub_text
from outreach.measurement.account_scores import account_score
from outreach.resolution.arrangements import arrangement_detail, events_json
from outreach.resolution.events import history


def _iso(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# Money columns: raw SQL hands SQLite's numbers back as int or float, so format them here.
MONEY_COLUMNS = frozenset({"amount", "balance", "amount_past_due", "balance_at_placement",
                           "balance_at_referral"})


def _money(value: Any) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.2f}"


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [
        {k: _money(v) if k in MONEY_COLUMNS else _iso(v) for k, v in row._mapping.items()}
        for row in conn.execute(text(sql), params)
    ]


def show_destination(kind: str | None, value: str | None, pii: bool) -> str | None:
    """A contact point's value as this user may see it: whole, or masked by its kind."""
    if value is None:
        return None
    if pii:
        return value
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return "***"  # postal addresses and anything else: no safe partial form


def _mask_name(name: str) -> str:
    return " ".join(part[:1] + "***" for part in name.split()) or "***"


def account_timeline(engine: Engine, account_ref: str, *, pii: bool) -> dict[str, Any] | None:
    """Everything the ledger knows about one account, oldest first; None when it is unknown.

    Each contact carries its gate decisions (plan and send) and its masked (or, with ``pii``,
    full) destination."""
    with engine.connect() as conn:
        account = conn.execute(
            text(
                "SELECT a.id, a.account_ref, a.product, a.currency, a.balance, a.amount_past_due, "
                "a.due_date, a.jurisdiction_country, a.jurisdiction_region, p.full_name "
                "FROM account a JOIN person p ON p.id = a.person_id WHERE a.account_ref = :r"
            ),
            {"r": account_ref},
        ).first()
        if account is None:
            return None
        aid = account.id
        points = {
            r.id: (r.kind, r.value)
            for r in conn.execute(
                text(
                    "SELECT cp.id, cp.kind, cp.value FROM contact_point cp "
                    "JOIN account a ON a.person_id = cp.person_id WHERE a.id = :a"
                ),
                {"a": aid},
            )
        }

        def dest(cp_id: Any) -> str | None:
            kind, value = points.get(cp_id, (None, None))
            return show_destination(kind, value, pii)

        decisions: dict[str, list[dict[str, Any]]] = {}
        for d in _rows(
            conn,
            "SELECT contact_key, phase, as_of, decided_at, verdict, reasons, window_start, "
            "window_end, defer_until, config_version, pack_versions FROM policy_decision "
            "WHERE account_id = :a ORDER BY decided_at, id",
            a=aid,
        ):
            key = d.pop("contact_key")
            d["reasons"] = (d["reasons"] or "").split()
            decisions.setdefault(key, []).append(d)
        contacts = []
        for c in _rows(
            conn,
            "SELECT key, plan_date, stage, action, slot, channel, contact_point_id, template, "
            "state, verdict, reasons, window_start, window_end, defer_until, config_version, "
            "pack_versions, backend, outcome, error_code, error_detail, attempts, sent_at, "
            "updated_at FROM contact WHERE account_id = :a ORDER BY plan_date, stage, action, "
            "slot, channel, key",
            a=aid,
        ):
            c["destination"] = dest(c.pop("contact_point_id"))
            c["reasons"] = (c["reasons"] or "").split()
            if not pii and c["error_detail"]:
                c["error_detail"] = scrub_text(c["error_detail"])
            c["decisions"] = decisions.get(c["key"], [])
            contacts.append(c)
        events = []
        for e in _rows(
            conn,
            "SELECT occurred_at, channel, contact_point_id, direction, outcome, source, "
            "ledger_key FROM contact_event WHERE account_id = :a ORDER BY occurred_at, id",
            a=aid,
        ):
            e["destination"] = dest(e.pop("contact_point_id"))
            events.append(e)
        call_tasks = []
        for t in _rows(
            conn,
            "SELECT key, contact_point_id, priority, due_start, due_end, state, agent, "
            "claimed_at, completed_at, disposition, reasons FROM call_task WHERE account_id = :a "
            "ORDER BY due_start, key",
            a=aid,
        ):
            t["destination"] = dest(t.pop("contact_point_id"))
            call_tasks.append(t)
        return {
            "account": {
                "account_ref": account.account_ref,
                "name": account.full_name if pii else _mask_name(account.full_name),
                "product": account.product,
                "currency": account.currency,
                "balance": _money(account.balance),
                "amount_past_due": _money(account.amount_past_due),
                "due_date": _iso(account.due_date),
                "jurisdiction": " ".join(
                    x for x in (account.jurisdiction_country, account.jurisdiction_region) if x
                ),
            },
            "personal_data": "shown" if pii else "masked",
            "contacts": contacts,
            "events": events,
            "payments": _rows(
                conn,
                "SELECT payment_ref, paid_on, amount, source, status, reversed_on, "
                "reversal_reason FROM payment WHERE account_id = :a ORDER BY paid_on, id",
                a=aid,
            ),
            "holds": _rows(
                conn,
                "SELECT kind, started_on, ended_on, source FROM account_hold "
                "WHERE account_id = :a ORDER BY started_on, id",
                a=aid,
            ),
            "promises": _rows(
                conn,
                "SELECT promise_ref, amount, due_on, recorded_at, source, actor, status, "
                "pauses, pause_until, paid_amount, settled_on, ledger_key FROM promise "
                "WHERE account_id = :a ORDER BY recorded_at, id",
                a=aid,
            ),
            "call_tasks": call_tasks,
            "placements": _rows(
                conn,
                "SELECT agency, ledger_key, placed_on, balance_at_placement, recall_due_on, "
                "state, recalled_on, recall_reason FROM placement WHERE account_id = :a "
                "ORDER BY placed_on, id",
                a=aid,
            ),
            "legal_cases": _rows(
                conn,
                "SELECT key, firm, referred_on, status, balance_at_referral FROM legal_case "
                "WHERE account_id = :a ORDER BY referred_on",
                a=aid,
            ),
            # The arrangement in force (else the latest), its schedule and events; every
            # resolution event of the account (outreach.resolution).
            "arrangement": arrangement_detail(conn, aid),
            "resolution_events": events_json(history(conn, aid)),
            # The latest score by the active model: band, model version, the top factors.
            "score": account_score(conn, aid, dt.date.max),
        }


def open_contacts(engine: Engine, day: dt.date, *, pii: bool) -> list[dict[str, Any]]:
    """The day's uncertain and failed contacts: what a person has to resolve."""
    with engine.connect() as conn:
        rows = _rows(
            conn,
            "SELECT c.key, a.account_ref, c.plan_date, c.stage, c.action, c.channel, c.state, "
            "c.backend, c.provider_id, c.error_code, c.error_detail, c.attempts, c.claimed_at, "
            "c.updated_at, cp.kind AS point_kind, cp.value AS point_value FROM contact c "
            "JOIN account a ON a.id = c.account_id "
            "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id "
            "WHERE c.plan_date = :d AND c.state IN ('uncertain', 'failed') "
            "ORDER BY c.state DESC, a.account_ref, c.key",
            d=day,
        )
    for r in rows:
        r["destination"] = show_destination(r.pop("point_kind"), r.pop("point_value"), pii)
        if not pii and r["error_detail"]:
            r["error_detail"] = scrub_text(r["error_detail"])
    return rows


def suppressed_by_stage(engine: Engine, day: dt.date) -> dict[str, dict[str, int]]:
    """The day's suppressed contacts counted by stage and reason code (``(none)`` for a row
    without codes), unsorted."""
    by_stage: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for stage, codes, n in conn.execute(
            text(
                "SELECT stage, reasons, COUNT(*) FROM contact WHERE plan_date = :d "
                "AND state = 'suppressed' GROUP BY stage, reasons"
            ),
            {"d": day},
        ):
            for code in (codes or "").split() or ["(none)"]:
                counts = by_stage.setdefault(stage, {})
                counts[code] = counts.get(code, 0) + int(n)
    return by_stage
