"""What the self-service page reads and does (``outreach.entry.self_service_app``): the token's
account, what it owes, and the consumer's answers (a promise, an offer taken, income and
expenses stated, a dispute, no more texts or emails), each taking effect at once through the
loop's own services, recorded with actor ``consumer`` and source ``self_service``, and answered
with the gate's verdict on the account's next step. docs/self-service.md."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from outreach.dispatch.callbacks import apply_consumer_opt_out
from outreach.kernel import self_service_token
from outreach.kernel.clock import utcnow
from outreach.kernel.self_service_token import SelfServiceSecretMissing
from outreach.operations import self_service_views as views
from outreach.resolution.events import Transition, record
from outreach.resolution.policy import resolution_policy

__all__ = [
    "ACTOR", "SOURCE", "Answer", "SelfServiceSecretMissing", "account_for", "form_token",
    "next_step", "overview", "stop_messages",
]  # fmt: skip

ACTOR = "consumer"
SOURCE = "self_service"
# "No more texts or emails": the channels a consumer can stop from the page.
STOPPABLE = ("sms", "email")
SEND = "send"


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of an answer: ``done`` or not, a code the page words (never personal data),
    the ref of what it made, and the gate's verdict on the account's next step."""

    done: bool
    code: str
    ref: str | None = None
    next_step: dict[str, Any] = field(default_factory=dict)


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from outreach.services.database import engine as default_engine

    return default_engine()


def signing_key() -> str:
    """The links' key (the connection ``outreach_self_service``); ``SelfServiceSecretMissing``
    names what to configure when it is absent."""
    return self_service_token.secret()


def account_for(token: str, *, engine: Engine | None = None, now: dt.datetime | None = None,
                key: str | None = None) -> int | None:  # fmt: skip
    """The account a link's token opens, or None: tampered, malformed, expired, or naming no
    account. One answer for all of them (the page must not tell them apart)."""
    account_id = self_service_token.read(token, now or utcnow(), key)
    if account_id is None:
        return None
    with _engine(engine).connect() as conn:
        return account_id if views.owed(conn, account_id) is not None else None


def form_token(token: str, key: str | None = None) -> str:
    """The page's CSRF field for this token (an HMAC of it)."""
    return self_service_token.form_token(token, key)


def overview(account_id: int, day: dt.date, *, engine: Engine | None = None) -> dict[str, Any]:
    """What the page shows: what is owed, the open promise and the live arrangement, the
    channels already stopped, where "pay now" goes, and the promise limits."""
    policy = resolution_policy()
    with _engine(engine).connect() as conn:
        owed = views.owed(conn, account_id)
        if owed is None:
            raise LookupError("no such account")
        promise = views.open_promise(conn, account_id)
        arrangement = views.current_arrangement(conn, account_id)
        stopped = views.opted_out_of(conn, account_id)
    return {
        "account_last4": owed.account_ref[-4:],
        "balance": owed.balance,
        "past_due": owed.past_due,
        "currency": owed.currency,
        "days_past_due": owed.days_past_due(day),
        "language": owed.language,
        "promise": promise,
        "arrangement": arrangement,
        "stopped": [c for c in STOPPABLE if c in stopped],
        "payment_url": policy.self_service.payment_url,
        "promise_latest": day + dt.timedelta(days=policy.promises.max_days_ahead),
        "day": day,
    }


def next_step(account_id: int, day: dt.date, *, engine: Engine | None = None) -> dict[str, Any]:
    """The gate's verdict on the account's steps due on ``day``, as the next plan judges them
    (``outreach explain``): each step's verdict and reason codes, and ``paused_by``, the codes
    that hold the account's collection (e.g. ``core.promise_open``)."""
    from outreach.services.accounts import explain
    from outreach.services.ladders import ladder_in_force

    db = _engine(engine)
    with db.connect() as conn:
        owed = views.owed(conn, account_id)
    if owed is None:
        return {"steps": [], "paused_by": []}
    explanation = explain(db, ladder_in_force(engine=db), owed.account_ref, day) or {}
    steps = []
    for action in explanation.get("actions", []):
        decision = action.get("decision")
        if not action.get("due") or not decision:
            continue
        steps.append({
            "action": action["action"], "channel": action["channel"],
            "verdict": decision["verdict"], "reasons": list(decision["reasons"]),
        })  # fmt: skip
    paused_by = sorted({r for s in steps if s["verdict"] != SEND for r in s["reasons"]})
    return {"steps": steps, "paused_by": paused_by, "holds": explanation.get("facts", {}).get(
        "holds", [])}  # fmt: skip


def _with_next_step(answer: Answer, account_id: int, day: dt.date, engine: Engine) -> Answer:
    """The answer with the gate's verdict on the next step, recorded as a resolution event
    (subject ``hold``: what now holds the account's collection, or ``none``)."""
    verdict = next_step(account_id, day, engine=engine)
    paused = verdict["paused_by"]
    with engine.begin() as conn:
        record(conn, [Transition(
            account_id, "hold", answer.ref, None, "paused" if paused else "not_paused", ACTOR,
            f"{SOURCE} {answer.code}: next step "
            + (" ".join(paused) if paused else "not paused by the gate"),
        )])  # fmt: skip
    return Answer(answer.done, answer.code, answer.ref, verdict)


def stop_messages(account_id: int, day: dt.date, *, engine: Engine | None = None) -> Answer:
    """"No more texts or emails": an opt-out of every SMS and email destination of the person,
    their queued texts and emails suppressed at once (as an inbound STOP does), recorded."""
    db = _engine(engine)
    at = utcnow()
    with db.begin() as conn:
        suppressed = apply_consumer_opt_out(conn, account_id, STOPPABLE, at, SOURCE)
        record(conn, [Transition(
            account_id, "hold", f"opt_out:{','.join(STOPPABLE)}", None, "opted_out", ACTOR,
            f"{SOURCE}: no more texts or emails ({sum(suppressed.values())} queued suppressed)",
        )], at=at)  # fmt: skip
    return _with_next_step(Answer(True, "stopped"), account_id, day, db)


def parse_money(raw: str) -> Decimal | None:
    """A positive amount in cents from a form field ("1,234.5" -> 1234.50), else None."""
    text = (raw or "").strip().replace(",", "")
    if not text or len(text) > 16:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    if not value.is_finite() or value <= 0 or value != value.quantize(views.CENT):
        return None
    return value.quantize(views.CENT)
