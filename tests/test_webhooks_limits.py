"""The webhook app's body cap, driven at the ASGI level so the test counts every byte the app
pulls from the request stream (a server would hand it the same chunks)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from outreach.entry import webhooks_app
from outreach.entry.webhooks_app import DEFAULT_MAX_BODY_BYTES, create_app
from tests import factories as f

CHUNK = 64 * 1024  # what uvicorn hands an app per read from the socket
TEN_MB = 10 * 1024 * 1024


class Upload:
    """An ASGI ``receive`` that streams ``total`` bytes in ``chunk``-sized messages and counts
    what the app pulled."""

    def __init__(self, total: int, chunk: int = CHUNK) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0
        self.piece = b"x" * chunk

    async def __call__(self) -> dict[str, Any]:
        size = min(self.chunk, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": self.piece[:size],
                "more_body": self.pulled < self.total}


def call(app: FastAPI, path: str, receive: Any, headers: dict[str, str],
         query: str = "") -> tuple[int, dict[str, str], bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every signature check a request got to (each route checks before anything)."""
    calls: list[str] = []

    def twilio(request: Any, params: Any) -> bool:
        calls.append("twilio")
        return False

    def sendgrid(request: Any, payload: Any, clock: Any) -> bool:
        calls.append("sendgrid")
        return False

    def payments(request: Any, body: Any, clock: Any) -> bool:
        calls.append("payments")
        return False

    monkeypatch.setattr(webhooks_app, "_twilio_valid", twilio)
    monkeypatch.setattr(webhooks_app, "_sendgrid_valid", sendgrid)
    monkeypatch.setattr(webhooks_app, "_payments_valid", payments)
    yield calls


ROUTES = ["/webhooks/twilio/status", "/webhooks/twilio/inbound", "/webhooks/sendgrid/events",
          "/webhooks/payments"]


def test_every_post_route_is_under_the_cap(engine: Engine) -> None:
    app = create_app(engine=engine)
    posts = {getattr(r, "path", None) for r in app.routes
             if "POST" in (getattr(r, "methods", None) or ())}
    assert posts == set(ROUTES)  # a new route must join the tests below


@pytest.mark.parametrize("path", ROUTES)
def test_a_declared_oversized_body_is_refused_without_reading_it(
        engine: Engine, reached: list[str], path: str) -> None:
    upload = Upload(TEN_MB)
    status, headers, body = call(create_app(engine=engine), path, upload,
                                 {"content-length": str(TEN_MB),
                                  "content-type": "application/x-www-form-urlencoded"})
    assert status == 413
    assert upload.pulled == 0
    assert reached == []
    assert headers["connection"] == "close"  # the server stops taking the rest of the upload
    assert str(DEFAULT_MAX_BODY_BYTES).encode() in body


@pytest.mark.parametrize("path", ROUTES)
def test_a_chunked_body_is_cut_off_one_chunk_past_the_cap(
        engine: Engine, reached: list[str], path: str) -> None:
    upload = Upload(TEN_MB)  # no Content-Length: Transfer-Encoding chunked
    status, headers, _ = call(create_app(engine=engine), path, upload,
                              {"content-type": "application/json"})
    assert status == 413
    assert DEFAULT_MAX_BODY_BYTES < upload.pulled <= DEFAULT_MAX_BODY_BYTES + CHUNK
    assert reached == []
    assert headers["connection"] == "close"


def test_the_cap_is_configurable_and_a_body_within_it_reaches_the_signature_check(
        engine: Engine, reached: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_WEBHOOK_MAX_BODY_BYTES", "4096")
    app = create_app(engine=engine)
    upload = Upload(4097, chunk=1000)
    status, _, _ = call(app, "/webhooks/sendgrid/events", upload, {})
    assert status == 413 and upload.pulled == 4097 and reached == []
    within = Upload(4096, chunk=1000)
    status, _, _ = call(app, "/webhooks/sendgrid/events", within, {})
    assert status == 403 and within.pulled == 4096 and reached == ["sendgrid"]
    # the default, 1 MiB, lets a SendGrid batch of that size through to the signature check
    monkeypatch.delenv("OUTREACH_WEBHOOK_MAX_BODY_BYTES")
    whole = Upload(DEFAULT_MAX_BODY_BYTES)
    status, _, _ = call(create_app(engine=engine), "/webhooks/sendgrid/events", whole, {})
    assert status == 403 and reached == ["sendgrid", "sendgrid"]


@pytest.mark.parametrize("value", ["1MB", "0", "-5", "1.5"])
def test_a_bad_cap_setting_is_refused_at_start_naming_the_setting(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OUTREACH_WEBHOOK_MAX_BODY_BYTES", value)
    with pytest.raises(ValueError, match="OUTREACH_WEBHOOK_MAX_BODY_BYTES"):
        create_app(engine=engine)


def form(body: bytes) -> Upload:
    upload = Upload(len(body), chunk=max(len(body), 1))
    upload.piece = body
    return upload


@pytest.mark.parametrize("path", ["/webhooks/twilio/status", "/webhooks/twilio/inbound"])
def test_a_twilio_form_with_too_many_fields_is_refused(
        engine: Engine, reached: list[str], path: str) -> None:
    app = create_app(engine=engine)
    many = urlencode({f"F{i}": "1" for i in range(webhooks_app.TWILIO_MAX_FIELDS + 1)}).encode()
    assert len(many) < DEFAULT_MAX_BODY_BYTES  # under the body cap: the field count decides
    status, _, body = call(app, path, form(many),
                           {"content-type": "application/x-www-form-urlencoded"})
    assert status == 413 and b"fields" in body and reached == []


@pytest.mark.parametrize("path", ["/webhooks/twilio/status", "/webhooks/twilio/inbound"])
def test_a_twilio_form_with_an_oversized_field_is_refused(
        engine: Engine, reached: list[str], path: str) -> None:
    app = create_app(engine=engine)
    big = urlencode({"MessageSid": "SM1",
                     "Body": "x" * webhooks_app.TWILIO_MAX_FIELD_BYTES}).encode()
    assert len(big) < DEFAULT_MAX_BODY_BYTES
    status, _, body = call(app, path, form(big),
                           {"content-type": "application/x-www-form-urlencoded"})
    assert status == 413 and b"field" in body and reached == []


def test_a_twilio_form_is_parsed_as_twilio_signs_it(monkeypatch: pytest.MonkeyPatch,
                                                    engine: Engine) -> None:
    seen: list[dict[str, str]] = []

    def twilio(request: Any, params: dict[str, str]) -> bool:
        seen.append(params)
        return False

    monkeypatch.setattr(webhooks_app, "_twilio_valid", twilio)
    body = urlencode({"MessageSid": "SM1", "Body": "退订 please+stop & thanks", "ErrorCode": "",
                      "MediaUrl0": "https://api.twilio.com/x?a=1&b=2"}).encode()
    status, _, _ = call(create_app(engine=engine), "/webhooks/twilio/inbound", form(body),
                        {"content-type": "application/x-www-form-urlencoded"})
    assert status == 403
    assert seen == [{"MessageSid": "SM1", "Body": "退订 please+stop & thanks", "ErrorCode": "",
                     "MediaUrl0": "https://api.twilio.com/x?a=1&b=2"}]
