"""What a call's disposition changes: the task, the ledger row, the contact history the frequency
rules read and the account's holds (a promise to pay, a dispute, a cease request), in one
transaction. The dispositions and their effects: docs/call-queue.md."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from outreach.kernel.facts import as_date
from outreach.media.calls.queue import (
    DONE,
    account_hold,
    call_task,
    check_agent,
    contact,
    contact_event,
    contact_point,
    insert_ignoring,
    placeholder_ref,
    utc,
)
from outreach.resolution.disputes import open_dispute
from outreach.resolution.hardship import record_cause, record_hardship
from outreach.resolution.policy import CAUSES
from outreach.resolution.promises import PromiseRefused, make_promise
from outreach.storage.models import Promise

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Effect:
    """What a disposition changes besides the task and the ledger row's outcome."""

    event_outcome: str  # the contact_event outcome the frequency rules read
    hold: str | None = None  # an account_hold kind started today
    invalidates_number: bool = False
    promise: bool = False


# Outcomes, as policies/rulepacks read them: ``conversation`` starts Reg F's 7-day pause after a
# conversation (us_reg_f.call_after_conversation); every call outcome counts towards the 7-in-7
# cap except ``busy`` and ``not_in_service`` (us_reg_f.call_frequency_7in7 not_counted). Talking
# to a third party is a call placed, not a conversation with the consumer (1006.14(b)(2)(ii)).
DISPOSITIONS: Mapping[str, Effect] = {
    "right_party_conversation": Effect("conversation"),
    "third_party": Effect("third_party"),
    "no_answer": Effect("no_answer"),
    "voicemail": Effect("voicemail"),  # a limited-content message (12 CFR 1006.2(j))
    "busy": Effect("busy"),
    "not_in_service": Effect("not_in_service", invalidates_number=True),
    "wrong_number": Effect("wrong_number", invalidates_number=True),
    "promise_to_pay": Effect("conversation", promise=True),
    "dispute": Effect("conversation", hold="dispute"),
    "refusal": Effect("conversation"),
    "hardship": Effect("conversation", hold="hardship"),
    "cease_request": Effect("conversation", hold="cease_communication"),
}


class DispositionError(ValueError):
    """A disposition refused, with nothing changed. ``status``: 404 no such task, 409 the task
    is not this agent's or already has another disposition, 422 invalid input."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _promise_terms(
    disposition: str, amount: Any, on: Any, today: dt.date
) -> tuple[Decimal, dt.date] | None:
    if disposition != "promise_to_pay":
        if amount is not None or on is not None:
            raise DispositionError(
                f"promise_amount and promise_date go with promise_to_pay, not {disposition}",
                status=422, code="unexpected_promise",
            )
        return None
    if amount is None or on is None:
        raise DispositionError("promise_to_pay needs promise_amount and promise_date",
                               status=422, code="promise_incomplete")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise DispositionError("promise_amount: not a number", status=422,
                               code="promise_amount") from None
    if not value.is_finite() or value <= 0 or value >= Decimal("1e12"):
        raise DispositionError("promise_amount: must be more than 0", status=422,
                               code="promise_amount")
    if value != value.quantize(Decimal("0.01"), rounding=ROUND_DOWN):
        raise DispositionError("promise_amount: at most 2 decimals", status=422,
                               code="promise_amount")
    if isinstance(on, str):
        try:
            on = dt.date.fromisoformat(on)
        except ValueError:
            raise DispositionError("promise_date: not a date (YYYY-MM-DD)", status=422,
                                   code="promise_date") from None
    if not isinstance(on, dt.date) or isinstance(on, dt.datetime):
        raise DispositionError("promise_date: not a date", status=422, code="promise_date")
    if on < today:
        raise DispositionError("promise_date: in the past", status=422, code="promise_date")
    return value, on


def record_disposition(
    engine: Engine,
    key: str,
    agent: str,
    disposition: str,
    now: dt.datetime,
    promise_amount: Decimal | str | float | None = None,
    promise_date: dt.date | str | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """Record what came of a call, all in one transaction: the task (done, disposition,
    completed_at), the ledger row's outcome (its state stays ``sent``), the call's contact_event
    (its outcome as the frequency rules read it), and the account: a hold (dispute,
    cease_communication, hardship, started today), the number marked invalid (wrong_number,
    not_in_service) or a promise (promise_to_pay: ``outreach.resolution.promises``, whose
    refusals, ``too_many_open`` for one, are 422s with their code). A hardship starts the hardship pause
    (``outreach.resolution.hardship``), a dispute the dispute hold and its verification task
    (``outreach.resolution.disputes``); ``cause``, when given, records the cause of delinquency
    the agent classified (one of ``CAUSES``).

    Only the agent the task was last handed to may record it. The same disposition sent again
    by that agent changes nothing (``status: already_recorded``); anything else invalid raises
    ``DispositionError`` and changes nothing. Returns counts and flags only (no personal data).
    """
    now = utc(now)
    try:
        agent = check_agent(agent)
    except ValueError as exc:
        raise DispositionError(str(exc), status=422, code="agent") from None
    effect = DISPOSITIONS.get(disposition)
    if effect is None:
        raise DispositionError(
            f"unknown disposition {disposition!r}; expected one of {', '.join(DISPOSITIONS)}",
            status=422, code="unknown_disposition",
        )
    terms = _promise_terms(disposition, promise_amount, promise_date, now.date())
    if cause is not None and cause not in CAUSES:
        raise DispositionError(f"cause: {str(cause)[:40]!r} is not one of {', '.join(CAUSES)}",
                               status=422, code="cause")  # fmt: skip
    result: dict[str, Any] = {
        "key": key,
        "disposition": disposition,
        "event_outcome": effect.event_outcome,
        "hold": effect.hold,
        "number_invalid": effect.invalidates_number,
        "promise": effect.promise,
        "cause": cause,
    }
    with engine.begin() as conn:
        # The write comes first: it takes the row (and on SQLite the database) before anything
        # is read, so two submissions for one task cannot both pass the checks.
        taken = conn.execute(
            update(call_task)
            .where(call_task.c.key == key, call_task.c.agent == agent,
                   call_task.c.claimed_at.is_not(None), call_task.c.state != DONE)
            .values(state=DONE, disposition=disposition, completed_at=now, updated_at=now)
        ).rowcount
        if taken != 1:
            _refuse_or_replay(conn, key, agent, disposition, terms)
            return {**result, "status": "already_recorded"}
        task = conn.execute(
            select(call_task.c.account_id, call_task.c.contact_point_id).where(
                call_task.c.key == key
            )
        ).one()
        account_id, point_id = task
        conn.execute(
            update(contact).where(contact.c.key == key).values(outcome=disposition,
                                                               updated_at=now)
        )
        event = {
            "occurred_at": now,
            "outcome": effect.event_outcome,
            "source": "agent",
            "contact_point_id": point_id,
        }
        # One event per call: the dispatcher's placeholder gets the outcome; a task queued by
        # other means gets its event under the same reference.
        if conn.execute(
            update(contact_event).where(contact_event.c.event_ref == placeholder_ref(key))
            .values(**event)
        ).rowcount == 0:
            insert_ignoring(conn, contact_event, {
                **event, "event_ref": placeholder_ref(key), "account_id": account_id,
                "channel": "call", "direction": "outbound", "ledger_key": key,
            }, ["event_ref"])
        if effect.hold == "hardship":
            record_hardship(conn, account_id=account_id, source="agent", actor=agent,
                            day=now.date())  # fmt: skip
        elif effect.hold == "dispute":
            open_dispute(conn, account_id=account_id, source="agent", actor=agent, day=now.date())
        elif effect.hold is not None:
            insert_ignoring(conn, account_hold, {
                "account_id": account_id, "kind": effect.hold, "started_on": now.date(),
                "ended_on": None, "source": "agent",
            }, ["account_id", "kind", "started_on"])
        if cause is not None:
            record_cause(conn, account_id=account_id, cause=cause, source="agent", actor=agent)
        if effect.invalidates_number and point_id is not None:
            conn.execute(
                update(contact_point).where(contact_point.c.id == point_id)
                .values(valid=False, updated_at=now)
            )
        if terms is not None:
            # The promise's own rules (limits, the broken-promise limit, its event); a refusal
            # undoes the whole disposition.
            try:
                make_promise(conn, account_id=account_id, amount=terms[0], due_on=terms[1],
                             made_at=now, source="agent", actor=agent,
                             day=now.date(), promise_ref=f"call-{key}"[:64], ledger_key=key,
                             recorded_at=now)  # fmt: skip
            except PromiseRefused as exc:
                raise DispositionError(exc.message, status=422, code=exc.code) from None
    log.info("call task %s: disposition %s by %s", key[:16], disposition, agent)
    return {**result, "status": "recorded"}


def _refuse_or_replay(conn: Connection, key: str, agent: str, disposition: str,
                      terms: tuple[Decimal, dt.date] | None) -> None:
    """Why the task could not take the disposition: returns for a replay of the one recorded,
    raises DispositionError otherwise."""
    row = conn.execute(
        select(call_task.c.state, call_task.c.agent, call_task.c.disposition).where(
            call_task.c.key == key
        )
    ).first()
    if row is None:
        raise DispositionError("no such call task", status=404, code="not_found")
    state, holder, recorded = row
    if holder != agent:
        raise DispositionError("the task is not claimed by this agent", status=409,
                               code="not_your_task")
    if state != DONE:
        raise DispositionError(f"the task is {state}, not claimed", status=409,
                               code="not_claimed")
    if recorded != disposition:
        raise DispositionError(f"the task is already done ({recorded})", status=409,
                               code="already_done")
    if terms is not None:
        kept = conn.execute(
            select(Promise.amount, Promise.due_on).where(Promise.ledger_key == key)
        ).first()
        if kept is None or (Decimal(str(kept[0])), as_date(kept[1])) != terms:
            raise DispositionError("the task is already done with another promise", status=409,
                                   code="already_done")
