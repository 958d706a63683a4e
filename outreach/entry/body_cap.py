"""The cap on request bodies for every app this project mounts in Airflow's api-server (the
provider webhooks and the ops console): that process also serves Airflow's UI, REST API and the
workers' Task Execution API, so no request may make it buffer more than the cap.

``BodyCap`` is ASGI middleware: a declared ``Content-Length`` over the cap is answered 413
before the app runs (before authentication too); a body streamed without one is counted as the
app reads it, and the read that passes the cap raises ``BodyTooLarge``, which the app answers
with 413 (``too_large_response``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outreach import settings

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # a SendGrid batch or a ladder draft is far smaller


class BodyTooLarge(Exception):
    """A request body (or a form field) over its limit; answered 413 before anything else."""


def max_body_bytes() -> int:
    """``OUTREACH_WEBHOOK_MAX_BODY_BYTES``: the largest request body the webhooks and the
    console read (default 1 MiB). A value that is not a positive whole number is an error."""
    limit = settings.webhook_max_body_bytes()
    return DEFAULT_MAX_BODY_BYTES if limit is None else limit


def too_large_response(exc: BodyTooLarge) -> Response:
    # Connection: close makes the server drop the connection instead of draining the rest of an
    # upload the client may still be sending.
    return Response(status_code=413, content=f"{exc}\n", media_type="text/plain",
                    headers={"Connection": "close"})  # fmt: skip


class BodyCap:
    """ASGI middleware capping every request body at ``limit`` bytes (see the module)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.limit:
            await too_large_response(BodyTooLarge(f"request body over {self.limit} bytes"))(
                scope, receive, send
            )
            return
        received = 0
        over: BodyTooLarge | None = None
        replaced = False

        async def capped() -> Message:
            nonlocal received, over
            message: Any = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = BodyTooLarge(f"request body over {self.limit} bytes")
                    raise over
            return message  # type: ignore[no-any-return]

        async def answer(message: Message) -> None:
            # A framework that turns the read's error into its own answer (FastAPI: 400 "error
            # parsing the body") is overruled: the client is told the body was too large.
            nonlocal replaced
            if over is None:
                await send(message)
            elif message["type"] == "http.response.start" and not replaced:
                replaced = True
                await too_large_response(over)(scope, receive, send)

        await self.app(scope, capped, answer)
