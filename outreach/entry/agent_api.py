"""The agents' API over the call queue: claim the next call, record what came of it.

``build_router(engine_provider, dependencies=...)`` returns a FastAPI ``APIRouter`` under
``/agent``; ``router`` is the one built on the application's engine. The ops console
(``outreach.entry.console.create_app``) mounts it behind Airflow's login, with the body's ``agent``
bound to the signed-in user; never mount it without such a dependency. See docs/call-queue.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from outreach.kernel.clock import utcnow
from outreach.services import calls
from outreach.services.database import engine


class ClaimRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=calls.MAX_AGENT_LENGTH)


class DispositionRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=calls.MAX_AGENT_LENGTH)
    # Checked by call_queue (so an unknown one is refused with the list of known ones).
    disposition: str = Field(max_length=64)
    promise_amount: Decimal | None = None
    promise_date: dt.date | None = None
    # The cause of delinquency the agent classified (one of the causes; 422 otherwise).
    cause: str | None = Field(default=None, max_length=64)


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "detail": detail})


def build_router(
    engine_provider: Callable[[], Engine],
    dependencies: Sequence[Depends] = (),
    *,
    clock: Callable[[], dt.datetime] = utcnow,
) -> APIRouter:
    """The ``/agent`` routes on the engine ``engine_provider()`` gives (called per request, so
    the router can be built before the database is configured). ``dependencies`` run before
    every route (authentication, an audit log); ``clock`` is the instant a claim or a
    disposition is judged at (naive UTC)."""
    router = APIRouter(prefix="/agent", tags=["agents"], dependencies=list(dependencies))

    # Plain `def` routes: FastAPI runs them in its thread pool, so the blocking database work
    # of one agent does not hold up the others.
    @router.post(
        "/tasks/claim",
        responses={204: {"description": "No call is due now"},
                   409: {"description": "The agent already holds as many open calls as allowed"}},
        summary="Claim the next call due now, checked against the compliance gate",
    )
    def claim(body: ClaimRequest) -> Any:
        try:
            task = calls.claim_next(engine_provider(), body.agent, clock())
        except calls.TooManyOpenTasks as exc:
            # The keys (no personal data) let an agent who lost a page find the call to close.
            return JSONResponse(status_code=409, content={
                "code": "too_many_open_tasks", "detail": str(exc), "open": exc.open_keys})
        except ValueError as exc:
            return _error(422, "agent", str(exc))
        if task is None:
            return Response(status_code=204)
        return task.as_json()

    @router.post(
        "/tasks/{key}/disposition",
        responses={404: {}, 409: {}, 422: {}},
        summary="Record what came of a claimed call",
    )
    def disposition(key: str, body: DispositionRequest) -> Any:
        try:
            return calls.record_disposition(
                engine_provider(),
                key,
                body.agent,
                body.disposition,
                clock(),
                promise_amount=body.promise_amount,
                promise_date=body.promise_date,
                cause=body.cause,
            )
        except calls.DispositionError as exc:
            return _error(exc.status, exc.code, str(exc))

    return router


router = build_router(engine)
