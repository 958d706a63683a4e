"""The provider webhooks as a FastAPI app: Twilio status callbacks and inbound SMS, the SendGrid
Event Webhook. ``plugins/outreach_plugin.py`` mounts it in Airflow's api-server under
``/outreach``; tests run it under uvicorn. See docs/webhooks.md.

Every request is verified before anything is read into the ledger: Twilio's
``X-Twilio-Signature`` with the SDK's ``RequestValidator`` (the Auth Token of the
``twilio_default`` connection), SendGrid's ECDSA signature with the SDK's ``EventWebhook``
(the ``webhook_public_key`` extra of ``sendgrid_default``), and its timestamp must be recent.
A missing, forged or stale signature gets 403 and changes nothing. These routes are not behind
Airflow's authentication (providers cannot log in): the signature is the authentication.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from contact_channels.credentials import get_connection
from outreach import callbacks
from outreach.dispatcher import channel_settings, utcnow

log = logging.getLogger(__name__)

TWILIO_SIGNATURE = "X-Twilio-Signature"
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_MAX_AGE = 600.0  # seconds a SendGrid signature's timestamp may be away from our clock


def public_base_url() -> str | None:
    """``OUTREACH_PUBLIC_BASE_URL``: the public URL of this app's root as providers call it
    (``https://ops.example.com/outreach``), when a proxy or TLS terminator changes it."""
    return os.environ.get("OUTREACH_PUBLIC_BASE_URL") or None


def max_signature_age() -> float:
    return float(os.environ.get("OUTREACH_WEBHOOK_MAX_AGE_SECONDS", DEFAULT_MAX_AGE))


def _conn_id(kind: str, default: str) -> str:
    return str(channel_settings(kind).get("conn_id") or default)


def _public_url(request: Request) -> str:
    """The URL the provider signed: the configured public base plus this route's path and query,
    or the URL the request arrived on."""
    base = public_base_url()
    if not base:
        return str(request.url)
    root = request.scope.get("root_path") or ""
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]
    query = request.url.query
    return base.rstrip("/") + path + (f"?{query}" if query else "")


def _forbidden(what: str) -> Response:
    log.warning("webhook refused: %s", what)
    return Response(status_code=403, content="forbidden", media_type="text/plain")


def _twilio_valid(request: Request, params: dict[str, str]) -> bool:
    from twilio.request_validator import RequestValidator

    signature = request.headers.get(TWILIO_SIGNATURE)
    if not signature:
        return False
    conn = get_connection(_conn_id("sms", "twilio_default"))
    if conn is None or not conn.password:
        log.error("twilio webhook: no auth token (connection missing), cannot verify")
        return False
    return bool(RequestValidator(conn.password).validate(_public_url(request), params, signature))


def _sendgrid_valid(request: Request, payload: str, clock: Callable[[], float]) -> bool:
    from sendgrid.helpers.eventwebhook import EventWebhook

    signature = request.headers.get(SENDGRID_SIGNATURE)
    timestamp = request.headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        return False
    try:
        age = abs(clock() - float(timestamp))
    except ValueError:
        return False
    if age > max_signature_age():
        log.warning("sendgrid webhook: signature timestamp %.0f s away from our clock", age)
        return False
    conn = get_connection(_conn_id("email", "sendgrid_default"))
    key = conn.extra_str("webhook_public_key") if conn is not None else None
    if not key:
        log.error("sendgrid webhook: no webhook_public_key on the connection, cannot verify")
        return False
    webhook = EventWebhook()
    try:
        public_key = webhook.convert_public_key_to_ecdsa(key)
        return bool(webhook.verify_signature(payload, signature, timestamp, public_key))
    except (ValueError, TypeError):  # a malformed key or signature (bad base64, not DER)
        return False


def _twiml(reply: str | None) -> Response:
    from twilio.twiml.messaging_response import MessagingResponse

    twiml = MessagingResponse()
    if reply:
        twiml.message(reply)
    return Response(content=str(twiml), media_type="application/xml")


def create_app(
    *,
    engine: Engine | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The webhook app. ``engine``: the application database (default: ``outreach.db``'s, from
    the environment, opened on first use). ``now``: the ledger's clock (naive UTC) for what the
    callbacks record; ``clock``: the wall clock (epoch seconds) that judges signature age."""
    app = FastAPI(title="Outreach webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    def db() -> Engine:
        if engine is not None:
            return engine
        from outreach.db import get_engine

        return get_engine()

    async def form_params(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: str(v) for k, v in form.multi_items()}

    @app.post("/webhooks/twilio/status")
    async def twilio_status(request: Request) -> Response:
        params = await form_params(request)
        if not await run_in_threadpool(_twilio_valid, request, params):
            return _forbidden("twilio status callback without a valid signature")
        key = request.query_params.get("key")
        result = await run_in_threadpool(
            lambda: callbacks.apply_twilio_status(db(), params, key, now=now)
        )
        return Response(content=result, media_type="text/plain")

    @app.post("/webhooks/twilio/inbound")
    async def twilio_inbound(request: Request) -> Response:
        params = await form_params(request)
        if not await run_in_threadpool(_twilio_valid, request, params):
            return _forbidden("inbound sms without a valid signature")
        result = await run_in_threadpool(
            lambda: callbacks.apply_inbound_sms(db(), params, now=now)
        )
        return _twiml(result.reply)

    @app.post("/webhooks/sendgrid/events")
    async def sendgrid_events(request: Request) -> Response:
        raw = await request.body()
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _forbidden("sendgrid events: body is not UTF-8")
        if not await run_in_threadpool(_sendgrid_valid, request, payload, clock):
            return _forbidden("sendgrid events without a valid signature")
        try:
            events: Any = json.loads(payload)
        except ValueError:
            return Response(status_code=400, content="body is not JSON", media_type="text/plain")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return Response(
                status_code=400, content="expected a JSON array of events", media_type="text/plain"
            )
        result = await run_in_threadpool(
            lambda: callbacks.apply_sendgrid_events(db(), events, now=now)
        )
        return Response(
            content=json.dumps(
                {
                    "applied": result.applied,
                    "duplicate": result.duplicate,
                    "ignored": result.ignored,
                    "suppressed": result.suppressed,
                }
            ),
            media_type="application/json",
        )

    return app
