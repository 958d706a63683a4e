"""Repayment arrangements' life: offered, accepted (pending a second person's approval or
active), kept or missed instalment by instalment, broken, completed or cancelled. Offers come
from the calculator (``offers.py``) on the account's figures as the gate sees them; every change
is a ``resolution_event`` saying who and why. docs/resolution.md, "Arrangements and offers"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from outreach.kernel.clock import utcnow
from outreach.kernel.facts import load_accounts
from outreach.resolution.events import Transition, history, record
from outreach.resolution.offers import CENT, Means, Offer, schedule
from outreach.resolution.offers import offers as calculate
from outreach.resolution.policy import ResolutionPolicy, resolution_policy
from outreach.storage.models import Account, Arrangement, ArrangementInstalment, StatedMeans

ARRANGEMENT = cast(Table, Arrangement.__table__)
INSTALMENT = cast(Table, ArrangementInstalment.__table__)
MEANS = cast(Table, StatedMeans.__table__)
ACCOUNT = cast(Table, Account.__table__)

OPEN_STATES = ("offered", "pending_approval", "active")
OFFER_VIA = ("letter", "sms", "email", "agent", "console", "self_service")
ACCEPT_VIA = ("agent", "console", "self_service", "import")
MEANS_SOURCES = ("agent", "console", "self_service", "import", "disposition")
# Who is not a person: never the second pair of eyes on an approval.
NOT_A_PERSON = frozenset({"consumer", "system", "import"})


class ArrangementRefused(ValueError):
    """An arrangement change the rules refuse: ``code`` says which (no personal data)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field  # the import record's field at fault, when one is


# --- offers -------------------------------------------------------------------------------------


def latest_means(conn: Connection, account_id: int, as_of: dt.date) -> Means | None:
    """The consumer's latest stated means on or before ``as_of`` (None: never stated)."""
    row = conn.execute(
        select(MEANS.c.monthly_income, MEANS.c.monthly_expenses)
        .where(MEANS.c.account_id == account_id, MEANS.c.stated_on <= as_of)
        .order_by(MEANS.c.stated_on.desc(), MEANS.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else Means(Decimal(str(row[0])), Decimal(str(row[1])))


def account_figures(conn: Connection, account_id: int, as_of: dt.date) -> dict[str, Any] | None:
    """Balance, past due and days past due as the gate sees them on ``as_of`` (payments since
    the snapshot counted: outreach.kernel.facts), with product, country and currency."""
    accounts = load_accounts(conn, account_id, account_id, day=as_of,
                             cutoff=dt.datetime(as_of.year, as_of.month, as_of.day))  # fmt: skip
    acc = accounts.get(account_id)
    if acc is None:
        return None
    currency = conn.execute(
        select(ACCOUNT.c.currency).where(ACCOUNT.c.id == account_id)
    ).scalar_one()
    dpd = (as_of - acc.due_date).days if acc.due_date is not None and acc.past_due > 0 else 0
    return {
        "balance": acc.balance, "past_due": acc.past_due, "days_past_due": max(0, dpd),
        "product": acc.product, "country": acc.country, "currency": currency,
        "score_band": acc.score_band,
    }  # fmt: skip


def offers_for_account(
    conn: Connection, account_id: int, as_of: dt.date, policy: ResolutionPolicy | None = None
) -> list[Offer]:
    """The offers the calculator allows the account on ``as_of`` (none for an unknown account)."""
    figures = account_figures(conn, account_id, as_of)
    if figures is None:
        return []
    return calculate(
        policy or resolution_policy(), balance=figures["balance"], past_due=figures["past_due"],
        days_past_due=figures["days_past_due"], product=figures["product"],
        country=figures["country"], currency=figures["currency"], as_of=as_of,
        means=latest_means(conn, account_id, as_of), score_band=figures["score_band"],
    )  # fmt: skip


# --- writing arrangements -----------------------------------------------------------------------


def _new_ref(conn: Connection, account_id: int, day: dt.date) -> str:
    n = conn.execute(
        select(func.count()).select_from(ARRANGEMENT).where(ARRANGEMENT.c.account_id == account_id)
    ).scalar_one()
    return f"ar-{account_id}-{day:%Y%m%d}-{int(n) + 1}"


def _by_ref(conn: Connection, ref: str) -> Any:
    row = conn.execute(select(ARRANGEMENT).where(ARRANGEMENT.c.arrangement_ref == ref)).first()
    if row is None:
        raise ArrangementRefused("unknown_arrangement", f"no arrangement {ref}")
    return row


def _insert(
    conn: Connection, *, account_id: int, offer: Offer, state: str, ref: str, day: dt.date,
    policy: ResolutionPolicy, extra: dict[str, Any], figures: dict[str, Any] | None = None,
) -> int:  # fmt: skip
    if figures is None:
        figures = account_figures(conn, account_id, day) or {}
    now = utcnow()
    values = {
        "arrangement_ref": ref, "account_id": account_id, "kind": offer.kind, "state": state,
        "total": offer.total, "term_months": offer.term_months,
        "instalment_amount": offer.instalment_amount, "first_due_on": offer.first_due_on,
        "balance_at_offer": figures.get("balance", offer.total),
        "past_due_at_offer": figures.get("past_due", Decimal(0)), "band": offer.band,
        "policy_version": policy.version, "needs_approval": offer.needs_approval,
        "kept": True, "missed": 0, "kept_streak": 0, "created_at": now, "updated_at": now,
        **extra,
    }  # fmt: skip
    arrangement_id = int(conn.execute(insert(ARRANGEMENT).values(**values)).inserted_primary_key[0])  # type: ignore[index]
    conn.execute(insert(INSTALMENT), [
        {"arrangement_id": arrangement_id, "seq": i, "due_on": due, "amount": amount,
         "paid_amount": Decimal(0), "state": "due"}
        for i, (due, amount) in enumerate(offer.schedule, start=1)
    ])  # fmt: skip
    return arrangement_id


def record_offer(
    conn: Connection, *, account_id: int, offer: Offer, via: str, actor: str, day: dt.date,
    arrangement_ref: str | None = None,
) -> str:  # fmt: skip
    """An offer made (by letter, SMS or email link, an agent): state ``offered``; returns its
    ref. Accepting it later (``accept_offer`` with the ref) keeps the ref and its schedule."""
    if via not in OFFER_VIA:
        raise ArrangementRefused("bad_channel", f"offered via must be one of {', '.join(OFFER_VIA)}")
    ref = arrangement_ref or _new_ref(conn, account_id, day)
    _insert(conn, account_id=account_id, offer=offer, state="offered", ref=ref, day=day,
            policy=resolution_policy(), extra={"offered_via": via, "offered_by": actor})  # fmt: skip
    record(conn, [Transition(account_id, "arrangement", ref, None, "offered", actor,
                             f"{offer.kind} {offer.term_months}m offered via {via}")])  # fmt: skip
    return ref


def _supersede(conn: Connection, account_id: int, keep_id: int | None, new_ref: str,
               actor: str, day: dt.date) -> None:  # fmt: skip
    """One arrangement in force per account: the others still open are cancelled, naming the
    one that replaces them."""
    rows = conn.execute(
        select(ARRANGEMENT.c.id, ARRANGEMENT.c.arrangement_ref, ARRANGEMENT.c.state).where(
            ARRANGEMENT.c.account_id == account_id, ARRANGEMENT.c.state.in_(OPEN_STATES),
            ARRANGEMENT.c.id != (keep_id or -1),
        )
    ).all()  # fmt: skip
    if not rows:
        return
    conn.execute(
        update(ARRANGEMENT).where(ARRANGEMENT.c.id.in_([r[0] for r in rows]))
        .values(state="cancelled", ended_on=day, updated_at=utcnow())
    )  # fmt: skip
    record(conn, [Transition(account_id, "arrangement", r[1], r[2], "cancelled", actor,
                             f"superseded by {new_ref}") for r in rows])  # fmt: skip


def accept_offer(
    conn: Connection, *, account_id: int, offer: Offer, via: str, actor: str, day: dt.date,
    arrangement_ref: str | None = None,
) -> str:  # fmt: skip
    """The consumer accepted ``offer`` (through an agent, the console, the self-service page or
    an import): ``pending_approval`` when its band needs a second person, else ``active``,
    replacing any arrangement still open on the account. With the ref of an ``offered``
    arrangement, that one is accepted. Returns the ref."""
    if via not in ACCEPT_VIA:
        raise ArrangementRefused("bad_channel", f"accepted via must be one of {', '.join(ACCEPT_VIA)}")
    state = "pending_approval" if offer.needs_approval else "active"
    now = utcnow()
    existing = None
    if arrangement_ref is not None:
        existing = conn.execute(
            select(ARRANGEMENT).where(ARRANGEMENT.c.arrangement_ref == arrangement_ref)
        ).first()
    if existing is not None:
        if existing.account_id != account_id or existing.state != "offered":
            raise ArrangementRefused(
                "not_offered", f"arrangement {arrangement_ref} is not an open offer of this account"
            )
        # The terms are those offered: its own schedule and approval, not today's figures.
        state = "pending_approval" if existing.needs_approval else "active"
        if state == "active":
            _supersede(conn, account_id, existing.id, existing.arrangement_ref, actor, day)
        conn.execute(
            update(ARRANGEMENT).where(ARRANGEMENT.c.id == existing.id).values(
                state=state, accepted_via=via, accepted_by=actor, accepted_at=now, updated_at=now)
        )  # fmt: skip
        ref, from_state = existing.arrangement_ref, "offered"
        kind, term, band = existing.kind, existing.term_months, existing.band
    else:
        ref = arrangement_ref or _new_ref(conn, account_id, day)
        if state == "active":
            _supersede(conn, account_id, None, ref, actor, day)
        _insert(conn, account_id=account_id, offer=offer, state=state, ref=ref, day=day,
                policy=resolution_policy(),
                extra={"accepted_via": via, "accepted_by": actor, "accepted_at": now,
                       "offered_via": via, "offered_by": actor})  # fmt: skip
        from_state = None
        kind, term, band = offer.kind, offer.term_months, offer.band
    why = f"{kind} {term}m accepted via {via}"
    if state == "pending_approval":
        why += f"; band {band} needs a second person's approval"
    record(conn, [Transition(account_id, "arrangement", ref, from_state, state, actor, why)])
    return ref


def approve(conn: Connection, ref: str, approver: str, day: dt.date) -> None:
    """A second person approves a pending arrangement: it becomes active (and replaces any
    other in force). Refused for whoever offered or accepted it, and for no person at all."""
    row = _by_ref(conn, ref)
    if row.state != "pending_approval":
        raise ArrangementRefused("not_pending", f"arrangement {ref} is {row.state}, not pending approval")
    if approver in NOT_A_PERSON or approver in {row.accepted_by, row.offered_by}:
        raise ArrangementRefused(
            "same_person", f"arrangement {ref} needs the approval of a second person"
        )
    _supersede(conn, row.account_id, row.id, ref, approver, day)
    conn.execute(
        update(ARRANGEMENT).where(ARRANGEMENT.c.id == row.id)
        .values(state="active", approved_by=approver, updated_at=utcnow())
    )  # fmt: skip
    record(conn, [Transition(row.account_id, "arrangement", ref, "pending_approval", "active",
                             approver, f"approved (band {row.band})")])  # fmt: skip


def cancel(conn: Connection, ref: str, actor: str, reason: str, day: dt.date) -> None:
    """Cancel an arrangement still open (offered, pending approval or active)."""
    row = _by_ref(conn, ref)
    if row.state not in OPEN_STATES:
        raise ArrangementRefused("not_open", f"arrangement {ref} is already {row.state}")
    conn.execute(
        update(ARRANGEMENT).where(ARRANGEMENT.c.id == row.id)
        .values(state="cancelled", ended_on=day, updated_at=utcnow())
    )  # fmt: skip
    record(conn, [Transition(row.account_id, "arrangement", ref, row.state, "cancelled", actor,
                             reason or "cancelled")])  # fmt: skip


def state_means(
    conn: Connection, *, account_id: int, income: Decimal, expenses: Decimal, source: str,
    actor: str, day: dt.date,
) -> int:  # fmt: skip
    """Record the monthly income and expenses the consumer stated (the latest sizes the next
    offers); returns the row's id. The event names the source, never the amounts."""
    if source not in MEANS_SOURCES:
        raise ArrangementRefused("bad_source", f"source must be one of {', '.join(MEANS_SOURCES)}")
    income, expenses = Decimal(income).quantize(CENT), Decimal(expenses).quantize(CENT)
    if income < 0 or expenses < 0:
        raise ArrangementRefused("bad_means", "income and expenses are not negative")
    means_id = int(conn.execute(insert(MEANS).values(
        account_id=account_id, monthly_income=income, monthly_expenses=expenses, stated_on=day,
        source=source, recorded_at=utcnow(),
    )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
    record(conn, [Transition(account_id, "means", str(means_id), None, "stated", actor,
                             f"stated via {source}")])  # fmt: skip
    return means_id


# --- import records (outreach.portfolio: the system of record's arrangements and means) ---------


IMPORT_STATES = ("active", "cancelled", "completed")


def import_arrangement(
    conn: Connection, *, account_id: int, arrangement_ref: str, kind: str, total: Decimal,
    term_months: int, first_due_on: dt.date, accepted_at: dt.datetime, state: str,
    day: dt.date,
) -> str:  # fmt: skip
    """An arrangement the system of record made: its schedule is the calculator's
    (``offers.schedule``). New: written in ``state`` (an active one replaces the account's
    arrangement in force; a completed one has every instalment paid). Known: the same terms
    are unchanged, or move on to cancelled or completed; other terms, another account or a way
    back are refused. Returns inserted, updated or unchanged."""
    plan = schedule(total, term_months, first_due_on)
    row = conn.execute(
        select(ARRANGEMENT).where(ARRANGEMENT.c.arrangement_ref == arrangement_ref)
    ).first()
    if row is not None:
        if row.account_id != account_id:
            raise ArrangementRefused("other_account",
                                     "the arrangement is on record for another account",
                                     "account_ref")  # fmt: skip
        for name, mine, theirs in (("kind", row.kind, kind), ("total", Decimal(str(row.total)), total),
                                   ("term_months", row.term_months, term_months),
                                   ("first_due_on", row.first_due_on, first_due_on)):  # fmt: skip
            if mine != theirs:
                raise ArrangementRefused("terms_differ", "differs from the arrangement on record "
                                         "(import a new arrangement_ref)", name)  # fmt: skip
        if row.state == state:
            return "unchanged"
        if row.state not in OPEN_STATES:
            raise ArrangementRefused("already_ended", f"the arrangement is already {row.state}",
                                     "state")  # fmt: skip
        _end_imported(conn, row.id, state, plan)
        conn.execute(update(ARRANGEMENT).where(ARRANGEMENT.c.id == row.id).values(
            state=state, ended_on=day if state != "active" else None, updated_at=utcnow()))  # fmt: skip
        record(conn, [Transition(account_id, "arrangement", arrangement_ref, row.state, state,
                                 "import", "the system of record's state")])  # fmt: skip
        return "updated"
    offer = Offer(kind=kind, term_months=term_months, instalment_amount=plan[0][1], total=total,
                  first_due_on=first_due_on, needs_approval=False, band="import",
                  discount=Decimal(0), schedule=plan)  # fmt: skip
    if state == "active":
        _supersede(conn, account_id, None, arrangement_ref, "import", day)
    # The account's figures as the system of record sent them (the row before it).
    balance, past_due = conn.execute(
        select(ACCOUNT.c.balance, ACCOUNT.c.amount_past_due).where(ACCOUNT.c.id == account_id)
    ).one()
    arrangement_id = _insert(
        conn, account_id=account_id, offer=offer, state=state, ref=arrangement_ref, day=day,
        policy=resolution_policy(), figures={"balance": balance, "past_due": past_due},
        extra={"accepted_via": "import", "accepted_by": "import", "accepted_at": accepted_at,
               "offered_via": "import", "ended_on": day if state != "active" else None},
    )  # fmt: skip
    _end_imported(conn, arrangement_id, state, plan)
    record(conn, [Transition(account_id, "arrangement", arrangement_ref, None, state, "import",
                             f"imported {kind} {term_months}m")])  # fmt: skip
    return "inserted"


def _end_imported(conn: Connection, arrangement_id: int, state: str, plan: Any) -> None:
    # The system of record says the plan is complete: every instalment was paid there.
    if state == "completed":
        conn.execute(update(INSTALMENT).where(INSTALMENT.c.arrangement_id == arrangement_id,
                                              INSTALMENT.c.state != "paid")
                     .values(paid_amount=INSTALMENT.c.amount, state="paid"))  # fmt: skip


def import_means(
    conn: Connection, *, account_id: int, income: Decimal, expenses: Decimal, stated_on: dt.date
) -> str:
    """Stated means from the system of record, one per account and day: inserted, updated (other
    amounts that day) or unchanged."""
    row = conn.execute(
        select(MEANS.c.id, MEANS.c.monthly_income, MEANS.c.monthly_expenses).where(
            MEANS.c.account_id == account_id, MEANS.c.stated_on == stated_on,
            MEANS.c.source == "import")
    ).first()  # fmt: skip
    if row is None:
        state_means(conn, account_id=account_id, income=income, expenses=expenses,
                    source="import", actor="import", day=stated_on)  # fmt: skip
        return "inserted"
    if (Decimal(str(row[1])), Decimal(str(row[2]))) == (income, expenses):
        return "unchanged"
    conn.execute(update(MEANS).where(MEANS.c.id == row[0]).values(
        monthly_income=income, monthly_expenses=expenses, recorded_at=utcnow()))  # fmt: skip
    record(conn, [Transition(account_id, "means", str(row[0]), "stated", "stated", "import",
                             "restated via import")])  # fmt: skip
    return "updated"


# --- the day's settling -------------------------------------------------------------------------


def settle_arrangements(
    conn: Connection, day: dt.date, actor: str, account_ids: Collection[int] | None
) -> dict[str, int]:
    """Settle the active arrangements for ``day`` (idempotent): an instalment paid in full is
    ``paid``; one still unpaid ``grace_days`` after its date is ``missed`` (the arrangement is no
    longer kept); ``missed_to_break`` misses break it; all paid completes it; kept again once no
    missed instalment is left unpaid; optional re-aging after a run of kept instalments."""
    policy = resolution_policy().arrangements
    where = [ARRANGEMENT.c.state == "active"]
    if account_ids is not None:
        if not account_ids:
            return {}
        where.append(ARRANGEMENT.c.account_id.in_(sorted(account_ids)))
    counts = dict.fromkeys(("paid", "missed", "kept", "broken", "completed", "reaged"), 0)
    counts["expired"] = _expire_offers(conn, day, actor, where[1:], policy.offer_valid_days)
    plans = conn.execute(select(ARRANGEMENT).where(*where).order_by(ARRANGEMENT.c.id)).all()
    if not plans:
        return counts
    by_plan: dict[int, list[Any]] = {}
    for r in conn.execute(
        select(INSTALMENT).where(INSTALMENT.c.arrangement_id.in_([p.id for p in plans]))
        .order_by(INSTALMENT.c.arrangement_id, INSTALMENT.c.seq)
    ):  # fmt: skip
        by_plan.setdefault(r.arrangement_id, []).append(r)
    grace = dt.timedelta(days=policy.grace_days)
    changes: list[Transition] = []
    now = utcnow()
    for plan in plans:
        _settle_one(conn, plan, by_plan.get(plan.id, []), day, actor, grace, policy, changes,
                    counts, now)  # fmt: skip
    record(conn, changes)
    return counts


def _expire_offers(conn: Connection, day: dt.date, actor: str, where: list[Any],
                   valid_days: int) -> int:  # fmt: skip
    """Offers not accepted within ``offer_valid_days`` of being made are cancelled."""
    cutoff = dt.datetime(day.year, day.month, day.day) - dt.timedelta(days=valid_days)
    stale = conn.execute(
        select(ARRANGEMENT.c.id, ARRANGEMENT.c.account_id, ARRANGEMENT.c.arrangement_ref).where(
            ARRANGEMENT.c.state == "offered", ARRANGEMENT.c.created_at < cutoff, *where)
    ).all()  # fmt: skip
    if not stale:
        return 0
    conn.execute(update(ARRANGEMENT).where(ARRANGEMENT.c.id.in_([r[0] for r in stale]))
                 .values(state="cancelled", ended_on=day, updated_at=utcnow()))  # fmt: skip
    record(conn, [Transition(r[1], "arrangement", r[2], "offered", "cancelled", actor,
                             f"offer not accepted within {valid_days} days") for r in stale])  # fmt: skip
    return len(stale)


def _instalment_state(inst: Any, day: dt.date, grace: dt.timedelta) -> str:
    paid, amount = Decimal(str(inst.paid_amount)), Decimal(str(inst.amount))
    if paid >= amount:
        return "paid"
    if day > inst.due_on + grace:
        return "missed"
    return "partly_paid" if paid > 0 else "due"


def _settle_one(
    conn: Connection, plan: Any, instalments: Sequence[Any], day: dt.date, actor: str,
    grace: dt.timedelta, policy: Any, changes: list[Transition], counts: dict[str, int],
    now: dt.datetime,
) -> None:  # fmt: skip
    acct, ref = plan.account_id, plan.arrangement_ref
    missed = int(plan.missed)
    states: list[str] = []
    for inst in instalments:
        state = _instalment_state(inst, day, grace)
        if state != inst.state:
            change: dict[str, Any] = {"state": state}
            if state == "paid" and inst.paid_on is None:
                change["paid_on"] = day
            conn.execute(update(INSTALMENT).where(INSTALMENT.c.id == inst.id).values(**change))
            if state == "missed":
                missed += 1
                counts["missed"] += 1
                why = f"unpaid {grace.days} days after {inst.due_on.isoformat()}"
            elif state == "paid":
                counts["paid"] += 1
                why = "paid in full"
            else:
                why = "partly paid" if state == "partly_paid" else "reopened: payment reversed"
            changes.append(Transition(acct, "instalment", f"{ref}#{inst.seq}", inst.state, state,
                                      actor, why))  # fmt: skip
        states.append(state)
    streak = _kept_streak(instalments, states, grace)
    values: dict[str, Any] = {}
    if missed != plan.missed:
        values["missed"] = missed
    if streak != plan.kept_streak:
        values["kept_streak"] = streak
    kept = "missed" not in states
    if missed >= policy.missed_to_break:
        values.update(state="broken", ended_on=day, kept=False)
        counts["broken"] += 1
        changes.append(Transition(acct, "arrangement", ref, "active", "broken", actor,
                                  f"{missed} instalments missed (limit {policy.missed_to_break})"))  # fmt: skip
    elif states and all(s == "paid" for s in states):
        values.update(state="completed", ended_on=day, kept=True)
        counts["completed"] += 1
        changes.append(Transition(acct, "arrangement", ref, "active", "completed", actor,
                                  "all instalments paid"))  # fmt: skip
    elif kept != bool(plan.kept):
        values["kept"] = kept
        counts["kept"] += kept
        first = next((i.seq for i, s in zip(instalments, states, strict=True) if s == "missed"), None)
        why = "kept: no missed instalment left unpaid" if kept else f"not kept: instalment {first} missed"
        changes.append(Transition(acct, "arrangement", ref, "active", "active", actor, why))
    if (policy.reage_after_kept is not None and plan.reaged_on is None and kept
            and values.get("state") is None and streak >= policy.reage_after_kept):  # fmt: skip
        values["reaged_on"] = day
        counts["reaged"] += 1
        _reage(conn, acct, now)
        changes.append(Transition(acct, "arrangement", ref, "active", "active", actor,
                                  f"re-aged: {streak} instalments kept in a row; arrears brought current"))  # fmt: skip
    if values:
        values["updated_at"] = now
        conn.execute(update(ARRANGEMENT).where(ARRANGEMENT.c.id == plan.id).values(**values))


def _kept_streak(instalments: Sequence[Any], states: Sequence[str], grace: dt.timedelta) -> int:
    """Instalments kept in a row, up to the latest settled one: each paid in full by its date
    plus grace (a missed one, even paid later, ends the run)."""
    streak = 0
    for inst, state in zip(instalments, states, strict=True):
        if state == "paid":
            on_time = inst.paid_on is None or inst.paid_on <= inst.due_on + grace
            if on_time and inst.state != "missed":
                streak += 1
            else:
                streak = 0
        elif state == "missed":
            streak = 0
        else:
            break
    return streak


def _reage(conn: Connection, account_id: int, now: dt.datetime) -> None:
    """Re-aging: the account is brought current (nothing past due, no delinquency episode); the
    balance stays. The day's arrangement file tells the system of record (``reaged_on``)."""
    conn.execute(
        update(ACCOUNT).where(ACCOUNT.c.id == account_id)
        .values(amount_past_due=Decimal(0), due_date=None, updated_at=now)
    )  # fmt: skip


# --- reading ------------------------------------------------------------------------------------


def events_json(events: Sequence[dict[str, object]]) -> list[dict[str, Any]]:
    """Resolution events with their instants as ISO text (explain's JSON, the console)."""
    return [{**e, "occurred_at": cast(dt.datetime, e["occurred_at"]).isoformat(timespec="seconds")}
            for e in events]  # fmt: skip


def arrangement_detail(conn: Connection, account_id: int) -> dict[str, Any] | None:
    """The account's arrangement in force (offered, pending or active; the latest), else the
    latest that ended: its terms, state, schedule and resolution events, as explain, the
    console and the timeline show them (None: the account never had one)."""
    rows = conn.execute(
        select(ARRANGEMENT).where(ARRANGEMENT.c.account_id == account_id)
        .order_by(ARRANGEMENT.c.id.desc())
    ).all()  # fmt: skip
    if not rows:
        return None
    plan = next((r for r in rows if r.state in OPEN_STATES), rows[0])
    schedule = [
        {"seq": i.seq, "due_on": i.due_on.isoformat(), "amount": str(i.amount),
         "paid": str(i.paid_amount), "state": i.state,
         "paid_on": i.paid_on.isoformat() if i.paid_on else None}
        for i in conn.execute(select(INSTALMENT).where(INSTALMENT.c.arrangement_id == plan.id)
                              .order_by(INSTALMENT.c.seq))
    ]  # fmt: skip
    ref = plan.arrangement_ref
    events = [
        e for e in events_json(history(conn, account_id))
        if e["subject_ref"] == ref or (e["subject"] == "instalment"
                                       and str(e["subject_ref"]).startswith(f"{ref}#"))
    ]  # fmt: skip
    return {
        "ref": ref, "kind": plan.kind, "state": plan.state, "kept": bool(plan.kept),
        "missed": plan.missed, "kept_streak": plan.kept_streak, "total": str(plan.total),
        "term_months": plan.term_months, "instalment_amount": str(plan.instalment_amount),
        "first_due_on": plan.first_due_on.isoformat(), "band": plan.band,
        "needs_approval": bool(plan.needs_approval), "offered_via": plan.offered_via,
        "accepted_via": plan.accepted_via, "accepted_by": plan.accepted_by,
        "approved_by": plan.approved_by,
        "ended_on": plan.ended_on.isoformat() if plan.ended_on else None,
        "reaged_on": plan.reaged_on.isoformat() if plan.reaged_on else None,
        "schedule": schedule, "events": events,
        "others": [{"ref": r.arrangement_ref, "kind": r.kind, "state": r.state}
                   for r in rows if r.id != plan.id],
    }  # fmt: skip
