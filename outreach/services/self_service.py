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
from outreach.resolution.arrangements import ArrangementRefused, accept_offer, offers_for_account
from outreach.resolution.arrangements import state_means as _state_means
from outreach.resolution.events import Transition, record
from outreach.resolution.offers import Offer
from outreach.resolution.policy import resolution_policy
from outreach.services import disputes as dispute_service
from outreach.services import promises as promise_service

__all__ = [
    "ACTOR", "SOURCE", "Answer", "SelfServiceSecretMissing", "accept", "account_for", "dispute",
    "form_token", "next_step", "offers", "overview", "parse_money", "promise", "requests_per_minute",
    "state_means", "stop_messages",
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
    """The gate's verdict on the account's steps due in the next plan, the plan of the day after
    ``day`` (the first to see an answer given today), as ``outreach explain`` judges them: each
    step's verdict and reason codes, and ``paused_by``, the codes that hold the account's
    collection (e.g. ``core.promise_open``)."""
    from outreach.services.accounts import explain
    from outreach.services.ladders import ladder_in_force

    db = _engine(engine)
    with db.connect() as conn:
        owed = views.owed(conn, account_id)
    if owed is None:
        return {"steps": [], "paused_by": []}
    plan_day = day + dt.timedelta(days=1)
    explanation = explain(db, ladder_in_force(engine=db), owed.account_ref, plan_day) or {}
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
    holds = explanation.get("facts", {}).get("holds", [])
    return {"plan_day": plan_day, "steps": steps, "paused_by": paused_by, "holds": holds}


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


def _account_ref(account_id: int, engine: Engine) -> str:
    with engine.connect() as conn:
        owed = views.owed(conn, account_id)
    if owed is None:
        raise LookupError("no such account")
    return owed.account_ref


def promise(account_id: int, amount: Decimal, due_on: dt.date, day: dt.date, *,
            engine: Engine | None = None) -> Answer:  # fmt: skip
    """"I will pay ``amount`` on ``due_on``": a promise (``outreach.services.promises``); while
    open it pauses collection until its date plus grace days. Refused: ``done`` False and the
    refusal's code (``too_far_ahead``, ``too_many_open``, ...)."""
    db = _engine(engine)
    try:
        made = promise_service.make_promise(
            _account_ref(account_id, db), amount, due_on, SOURCE, ACTOR, as_of=day, engine=db
        )
    except promise_service.PromiseRefused as refused:
        return Answer(False, refused.code)
    code = "promise_made" if made.pauses else "promise_made_no_pause"
    return _with_next_step(Answer(True, code, made.ref), account_id, day, db)


def _offer_view(index: int, offer: Offer) -> dict[str, Any]:
    return {
        "index": index, "kind": offer.kind, "term_months": offer.term_months,
        "instalment_amount": offer.instalment_amount, "total": offer.total,
        "first_due_on": offer.first_due_on, "needs_approval": offer.needs_approval,
        "discount": offer.discount, "affordable": offer.affordable,
        "terms": offer_terms(offer),
    }  # fmt: skip


def offer_terms(offer: Offer) -> str:
    """What identifies an offer on the page: the consumer picks these terms, not a position
    in a list that may have changed since the page was shown."""
    return f"{offer.kind}:{offer.term_months}:{offer.total}:{offer.first_due_on.isoformat()}"


def offers(account_id: int, day: dt.date, *, engine: Engine | None = None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """The offers the calculator allows the account on ``day`` (sized to stated means)."""
    with _engine(engine).connect() as conn:
        return [_offer_view(i, o) for i, o in enumerate(offers_for_account(conn, account_id, day))]


def accept(account_id: int, terms: str, day: dt.date, *, engine: Engine | None = None
           ) -> Answer:  # fmt: skip
    """The consumer takes the offer with these ``terms`` (``offer_terms``), if the calculator
    still allows it today: active at once, or pending a second person's approval for a band
    that needs one. ``offer_gone`` when it is no longer offered."""
    db = _engine(engine)
    with db.begin() as conn:
        chosen = next(
            (o for o in offers_for_account(conn, account_id, day) if offer_terms(o) == terms), None
        )
        if chosen is None:
            return Answer(False, "offer_gone")
        try:
            ref = accept_offer(conn, account_id=account_id, offer=chosen, via=SOURCE,
                               actor=ACTOR, day=day)  # fmt: skip
        except ArrangementRefused as refused:
            return Answer(False, refused.code)
    code = "offer_pending_approval" if chosen.needs_approval else "offer_accepted"
    return _with_next_step(Answer(True, code, ref), account_id, day, db)


def state_means(account_id: int, income: Decimal, expenses: Decimal, day: dt.date, *,
                engine: Engine | None = None) -> Answer:  # fmt: skip
    """The consumer's monthly income and expenses: recorded (the event names the source, never
    the amounts); the next offers are sized to them."""
    db = _engine(engine)
    with db.begin() as conn:
        try:
            means_id = _state_means(conn, account_id=account_id, income=income,
                                    expenses=expenses, source=SOURCE, actor=ACTOR, day=day)  # fmt: skip
        except ArrangementRefused as refused:
            return Answer(False, refused.code)
    return Answer(True, "means_stated", str(means_id))


def dispute(account_id: int, day: dt.date, *, engine: Engine | None = None) -> Answer:
    """"I dispute this debt": the dispute hold and a verification task
    (``outreach.services.disputes``); collection stops until the verification is sent."""
    db = _engine(engine)
    result = dispute_service.dispute(db, _account_ref(account_id, db), source=SOURCE,
                                     actor=ACTOR, as_of=day)  # fmt: skip
    return _with_next_step(
        Answer(True, "disputed", f"verification-{result['verification_task']}"),
        account_id, day, db,
    )  # fmt: skip


def requests_per_minute() -> int:
    """``self_service.requests_per_minute``: the page's limit per token and per address."""
    return resolution_policy().self_service.requests_per_minute


def parse_money(raw: str, *, allow_zero: bool = False) -> Decimal | None:
    """An amount in cents from a form field ("1,234.5" -> 1234.50), more than 0 (or 0 too with
    ``allow_zero``), else None."""
    text = (raw or "").strip().replace(",", "")
    if not text or len(text) > 16:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        return None
    if value != value.quantize(views.CENT) or value >= Decimal("1e12"):
        return None
    return value.quantize(views.CENT)
