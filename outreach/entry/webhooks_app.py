"""The provider webhooks as a FastAPI app: Twilio status callbacks and inbound SMS, the SendGrid
Event Webhook, the payment processor's payments and reversals. ``plugins/outreach_plugin.py`` mounts it in Airflow's api-server under
``/outreach``; tests run it under uvicorn. See docs/webhooks.md.

Every request is verified before anything is read into the ledger: Twilio's
``X-Twilio-Signature`` with the SDK's ``RequestValidator`` (the Auth Token of the
``twilio_default`` connection), SendGrid's ECDSA signature with the SDK's ``EventWebhook``
(the ``webhook_public_key`` extra of ``sendgrid_default``), and its timestamp must be recent;
the payment processor's ``X-Outreach-Signature`` (HMAC-SHA256 of the timestamp and the body with
the password of the ``outreach_payments`` connection), its timestamp recent too.
A missing, forged or stale signature gets 403 and changes nothing. These routes are not behind
Airflow's authentication (providers cannot log in): the signature is the authentication.

Because anyone can post to them, a body is capped (``OUTREACH_WEBHOOK_MAX_BODY_BYTES``) before it
is read: the api-server that runs this app also serves Airflow's UI, REST API and the workers'
Task Execution API, so an unsigned upload must not be able to take its memory. The URL Twilio
signed comes from configuration, never from the request's ``Host`` header.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from outreach import settings
from outreach.entry.body_cap import (  # noqa: F401 (DEFAULT_MAX_BODY_BYTES: re-exported)
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLarge,
    max_body_bytes,
    too_large_response,
)
from outreach.kernel.clock import utcnow
from outreach.services import payments, webhooks

log = logging.getLogger(__name__)

TWILIO_SIGNATURE = "X-Twilio-Signature"
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
PAYMENTS_SIGNATURE = "X-Outreach-Signature"  # t=<unix seconds>,v1=<hex HMAC-SHA256>
# seconds a SendGrid or payment signature's timestamp may be away from our clock
DEFAULT_MAX_AGE = 600.0
# Twilio's richest inbound form (MMS with 10 media, WhatsApp extras) has under 100 fields, and its
# longest value is a 1,600-character Body (under 15 KB percent-encoded, even in Chinese).
TWILIO_MAX_FIELDS = 200
TWILIO_MAX_FIELD_BYTES = 64 * 1024
MOUNT_PATH = "/outreach"  # where plugins/outreach_plugin.py mounts the app in the api-server


def public_base_url() -> str | None:
    """``OUTREACH_PUBLIC_BASE_URL``: the public URL of this app's root as providers call it
    (``https://ops.example.com/outreach``), when a proxy or TLS terminator changes it."""
    return settings.public_base_url()


def airflow_api_base_url() -> str | None:
    """Airflow's ``[api] base_url`` (the api-server's public URL), when set."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="") or None


def public_root_url() -> str | None:
    """The public URL of this app's root: ``OUTREACH_PUBLIC_BASE_URL``, else Airflow's
    ``[api] base_url`` plus the plugin's mount path, else None (nothing to verify against)."""
    base = public_base_url()
    if base:
        return base.rstrip("/")
    api = airflow_api_base_url()
    if api:
        return api.rstrip("/") + MOUNT_PATH
    return None


def max_signature_age() -> float:
    return settings.webhook_max_age_seconds(DEFAULT_MAX_AGE)


def _conn_id(kind: str, default: str) -> str:
    return webhooks.conn_id(kind, default)


def _public_url(request: Request) -> str | None:
    """The URL the provider signed: the configured public root plus this route's path and query.
    Never the URL the request arrived on: its host is the sender's to choose, and a signature
    made with the same token for another deployment would then verify here. None when no public
    URL is configured."""
    base = public_root_url()
    if not base:
        return None
    root = request.scope.get("root_path") or ""
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]
    query = request.url.query
    return base + path + (f"?{query}" if query else "")


async def read_capped_body(request: Request, limit: int) -> bytes:
    """The request body, read from the ASGI stream chunk by chunk and abandoned as soon as it
    passes ``limit`` bytes, so no more than ``limit`` plus one chunk is ever pulled. A declared
    ``Content-Length`` over the limit is refused without reading anything."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request body over {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def parse_twilio_form(body: bytes) -> dict[str, str]:
    """A Twilio webhook's form (``application/x-www-form-urlencoded``) as the params its signature
    covers: blank values kept, a repeated name's last value wins, at most ``TWILIO_MAX_FIELDS``
    fields of at most ``TWILIO_MAX_FIELD_BYTES`` each (``BodyTooLarge`` otherwise)."""
    if not body:
        return {}
    fields = body.split(b"&")
    if len(fields) > TWILIO_MAX_FIELDS:
        raise BodyTooLarge(f"form over {TWILIO_MAX_FIELDS} fields")
    if any(len(field) > TWILIO_MAX_FIELD_BYTES for field in fields):
        raise BodyTooLarge(f"a form field over {TWILIO_MAX_FIELD_BYTES} bytes")
    # latin-1 keeps stray raw bytes as Starlette's form parser did; %-escapes decode as UTF-8
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                      max_num_fields=TWILIO_MAX_FIELDS, encoding="utf-8", errors="replace")
    return dict(pairs)


def _forbidden(what: str) -> Response:
    log.warning("webhook refused: %s", what)
    return Response(status_code=403, content="forbidden", media_type="text/plain")


def _twilio_valid(request: Request, params: dict[str, str]) -> bool:
    from twilio.request_validator import RequestValidator

    signature = request.headers.get(TWILIO_SIGNATURE)
    if not signature:
        return False
    url = _public_url(request)
    if url is None:
        log.error(
            "twilio webhook: neither OUTREACH_PUBLIC_BASE_URL nor Airflow's [api] base_url is "
            "set, cannot verify (the signed URL is never taken from the request's Host header)"
        )
        return False
    conn = webhooks.connection(_conn_id("sms", "twilio_default"))
    if conn is None or not conn.password:
        log.error("twilio webhook: no auth token (connection missing), cannot verify")
        return False
    return bool(RequestValidator(conn.password).validate(url, params, signature))


def _sendgrid_valid(request: Request, payload: str, clock: Callable[[], float]) -> bool:
    from sendgrid.helpers.eventwebhook import EventWebhook

    signature = request.headers.get(SENDGRID_SIGNATURE)
    timestamp = request.headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        return False
    try:
        sent_at = float(timestamp)
    except ValueError:
        return False
    if not math.isfinite(sent_at):  # nan compares false with everything: it would pass below
        log.warning("sendgrid webhook: signature timestamp is not a finite number")
        return False
    age = abs(clock() - sent_at)
    if age > max_signature_age():
        log.warning("sendgrid webhook: signature timestamp %.0f s away from our clock", age)
        return False
    conn = webhooks.connection(_conn_id("email", "sendgrid_default"))
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


def _payments_valid(request: Request, body: bytes, clock: Callable[[], float]) -> bool:
    """``X-Outreach-Signature: t=<unix>,v1=<hex>``: HMAC-SHA256 over ``t + "." + body`` with the
    ``outreach_payments`` connection's password, ``t`` within the allowed age. Several ``v1``
    (a secret being rotated) pass if one matches."""
    header = request.headers.get(PAYMENTS_SIGNATURE)
    if not header:
        return False
    stamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamp = value
        elif name == "v1" and value:
            signatures.append(value.lower())
    if stamp is None or not stamp.isdigit() or not signatures:
        return False
    age = abs(clock() - int(stamp))
    if age > max_signature_age():
        log.warning("payments webhook: signature timestamp %.0f s away from our clock", age)
        return False
    secret = payments.signing_secret()
    if not secret:
        log.error("payments webhook: no secret (connection %s missing), cannot verify",
                  payments.CONN_ID)  # fmt: skip
        return False
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def _json(status: int, content: dict[str, str]) -> Response:
    return Response(status_code=status, content=json.dumps(content), media_type="application/json")


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
    callbacks record; ``clock``: the wall clock (epoch seconds) that judges signature age.
    The body cap is read from the environment here, once, so a bad value stops the start."""
    body_limit = max_body_bytes()
    app = FastAPI(title="Outreach webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        log.warning("webhook refused: %s", exc)
        return too_large_response(exc)

    def db() -> Engine:
        if engine is not None:
            return engine
        from outreach.services.database import engine as default_engine

        return default_engine()

    async def form_params(request: Request) -> dict[str, str]:
        # Not request.form(): Starlette's parser would take up to 1,000 fields of 1 MB each.
        return parse_twilio_form(await read_capped_body(request, body_limit))

    @app.post("/webhooks/twilio/status")
    async def twilio_status(request: Request) -> Response:
        params = await form_params(request)
        if not await run_in_threadpool(_twilio_valid, request, params):
            return _forbidden("twilio status callback without a valid signature")
        key = request.query_params.get("key")
        result = await run_in_threadpool(
            lambda: webhooks.apply_twilio_status(db(), params, key, now=now)
        )
        return Response(content=result, media_type="text/plain")

    @app.post("/webhooks/twilio/inbound")
    async def twilio_inbound(request: Request) -> Response:
        params = await form_params(request)
        if not await run_in_threadpool(_twilio_valid, request, params):
            return _forbidden("inbound sms without a valid signature")
        result = await run_in_threadpool(
            lambda: webhooks.apply_inbound_sms(db(), params, now=now)
        )
        return _twiml(result.reply)

    @app.post("/webhooks/sendgrid/events")
    async def sendgrid_events(request: Request) -> Response:
        raw = await read_capped_body(request, body_limit)
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
            lambda: webhooks.apply_sendgrid_events(db(), events, now=now)
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

    @app.post("/webhooks/payments")
    async def payment_event(request: Request) -> Response:
        raw = await read_capped_body(request, body_limit)
        if not await run_in_threadpool(_payments_valid, request, raw, clock):
            return _forbidden("payment event without a valid signature")
        try:
            event: Any = json.loads(raw)
        except ValueError:
            return _json(400, {"error": "body is not JSON"})
        if not isinstance(event, dict):
            return _json(400, {"error": "expected a JSON object"})
        try:
            result = await run_in_threadpool(
                lambda: payments.apply_processor_event(db(), event, now())
            )
        # What is refused says why in words of its own: never a value of the body.
        except payments.UnknownAccount:
            return _json(404, {"error": "unknown_account"})
        except payments.PaymentNotFound:
            return _json(404, {"error": "unknown_payment"})
        except payments.PaymentConflict as exc:
            return _json(409, {"error": "conflict", "message": str(exc)})
        except payments.PaymentError as exc:
            return _json(422, {"error": exc.code, "message": str(exc)})
        log.info("payments webhook: %s", result["status"])
        return _json(200, result)

    return app
