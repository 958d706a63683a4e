"""The webhook app over real HTTP (uvicorn on 127.0.0.1), signed with the providers' own schemes."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, text
from twilio.request_validator import RequestValidator

from contact_channels.base import OutboundMessage, SendResult
from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
from outreach.entry.webhooks_app import create_app
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 11, 0)
TOKEN = "twilio-auth-token-for-tests"
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


def _keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


SG_PRIVATE, SG_PUBLIC = _keypair()
OTHER_PRIVATE, _ = _keypair()


@dataclass
class Server:
    base: str
    engine: Engine

    def url(self, path: str) -> str:
        return self.base + path

    def twilio(self, path: str, params: dict[str, str], token: str = TOKEN,
               signed_url: str | None = None, signature: str | None = None,
               host: str | None = None) -> requests.Response:
        url = self.url(path)
        sig = signature if signature is not None else RequestValidator(token).compute_signature(
            signed_url or url, params)
        headers = {"X-Twilio-Signature": sig} if sig else {}
        if host:
            headers["Host"] = host
        return requests.post(url, data=params, headers=headers, timeout=30)

    def sendgrid(self, events: list[dict[str, Any]], key: ec.EllipticCurvePrivateKey = SG_PRIVATE,
                 timestamp: float | str | None = None, signed: bool = True) -> requests.Response:
        payload = json.dumps(events)
        ts = timestamp if isinstance(timestamp, str) else str(
            int(timestamp if timestamp is not None else time.time()))
        headers = {"Content-Type": "application/json"}
        if signed:
            sig = key.sign((ts + payload).encode(), ec.ECDSA(hashes.SHA256()))
            headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(sig).decode()
            headers["X-Twilio-Email-Event-Webhook-Timestamp"] = ts
        return requests.post(self.url("/webhooks/sendgrid/events"), data=payload.encode(),
                             headers=headers, timeout=30)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", json.dumps(
        {"conn_type": "http", "login": "ACtest", "password": TOKEN,
         "extra": {"from_number": "+18005550000"}}))
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps(
        {"conn_type": "http", "password": "SG.test",
         "extra": {"from_email": "billing@example.com", "asm_group_id": 1,
                   "webhook_public_key": SG_PUBLIC}}))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def server(engine: Engine, connections: None,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(engine=engine, now=lambda: NOW)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.started
    base = f"http://127.0.0.1:{port}"
    # Twilio signs the public URL, which must be configured: here the app is served at its root.
    monkeypatch.setenv("OUTREACH_PUBLIC_BASE_URL", base)
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    try:
        yield Server(base, engine)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def snapshot(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(
            tuple(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")))
            for t in ("contact", "contact_event", "opt_out", "contact_point", "policy_decision")
        )


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def person(engine: Engine, phone: str, email: str | None = None) -> dict[str, Any]:
    return f.add_account(engine, as_of=DAY, dpd=5, emails=[email] if email else [],
                         phones=[{"value": phone, "type": "mobile", "zones": "America/New_York"}])


def uncertain_sms(engine: Engine, acc: dict[str, Any], key: str, channel: str = "sms",
                  point: str = "phone0") -> str:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO contact (key, account_id, stage, action, slot, channel, contact_point_id, "
            "plan_date, state, verdict, reasons, config_version, pack_versions, attempts, "
            "claimed_at, updated_at) VALUES (:k, :a, 'early', 'sms', 1, :ch, :cp, :d, "
            "'uncertain', 'send', '', 'v1', 'core@1', 1, :now, :now)"),
            {"k": key, "a": acc["account_id"], "ch": channel, "cp": acc["points"][point],
             "d": DAY, "now": NOW})
    return key


def state(engine: Engine, key: str) -> str:
    return str(scalar(engine, "SELECT state FROM contact WHERE key = :k", k=key))


# --- Twilio ---------------------------------------------------------------------------------


def test_signed_status_callback_resolves_the_uncertain_contact_and_a_replay_changes_nothing(
        server: Server) -> None:
    acc = person(server.engine, "+14155550201")
    key = uncertain_sms(server.engine, acc, "ab" * 16)
    params = {"MessageSid": "SM100", "MessageStatus": "delivered", "AccountSid": "ACtest"}
    reply = server.twilio(f"/webhooks/twilio/status?key={key}", params)
    assert reply.status_code == 200 and reply.text == "applied"
    assert state(server.engine, key) == "sent"
    before = snapshot(server.engine)
    again = server.twilio(f"/webhooks/twilio/status?key={key}", params)
    assert again.status_code == 200 and again.text == "duplicate"
    assert snapshot(server.engine) == before


@pytest.mark.parametrize("how", ["unsigned", "wrong token", "tampered", "other url", "garbage"])
def test_forged_twilio_requests_are_refused_and_change_nothing(server: Server, how: str) -> None:
    acc = person(server.engine, "+14155550202")
    key = uncertain_sms(server.engine, acc, "cd" * 16)
    path = f"/webhooks/twilio/status?key={key}"
    params = {"MessageSid": "SM101", "MessageStatus": "delivered"}
    before = snapshot(server.engine)
    if how == "unsigned":
        reply = server.twilio(path, params, signature="")
    elif how == "wrong token":
        reply = server.twilio(path, params, token="not-the-token")
    elif how == "tampered":  # signed for 'failed', sent as 'delivered'
        sig = RequestValidator(TOKEN).compute_signature(
            server.url(path), {**params, "MessageStatus": "failed"})
        reply = server.twilio(path, params, signature=sig)
    elif how == "other url":  # a signature for another contact's key, replayed on this one
        reply = server.twilio(path, params, signed_url=server.url(
            "/webhooks/twilio/status?key=" + "ef" * 16))
    else:
        reply = server.twilio(path, params, signature="not base64 at all!")
    assert reply.status_code == 403
    stop = server.twilio("/webhooks/twilio/inbound",
                         {"MessageSid": "SM102", "From": "+14155550202", "Body": "STOP"},
                         token="not-the-token")
    assert stop.status_code == 403
    assert snapshot(server.engine) == before


def test_twilio_requests_are_refused_without_the_connection(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TWILIO_DEFAULT")
    acc = person(server.engine, "+14155550203")
    key = uncertain_sms(server.engine, acc, "12" * 16)
    reply = server.twilio(f"/webhooks/twilio/status?key={key}",
                          {"MessageSid": "SM103", "MessageStatus": "delivered"})
    assert reply.status_code == 403 and state(server.engine, key) == "uncertain"


def test_public_base_url_is_what_twilio_signed(server: Server,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    public = "https://ops.example.com/outreach"
    monkeypatch.setenv("OUTREACH_PUBLIC_BASE_URL", public)
    acc = person(server.engine, "+14155550204")
    key = uncertain_sms(server.engine, acc, "34" * 16)
    path = f"/webhooks/twilio/status?key={key}"
    params = {"MessageSid": "SM104", "MessageStatus": "sent"}
    assert server.twilio(path, params).status_code == 403  # signed for the local URL
    assert server.twilio(path, params, signed_url=public + path).status_code == 200
    assert state(server.engine, key) == "sent"


@pytest.mark.parametrize("configured", [True, False])
def test_a_forged_host_header_with_a_signature_for_that_host_is_refused(
        server: Server, monkeypatch: pytest.MonkeyPatch, configured: bool) -> None:
    if not configured:
        monkeypatch.delenv("OUTREACH_PUBLIC_BASE_URL")
    acc = person(server.engine, "+14155550208")
    key = uncertain_sms(server.engine, acc, "9a" * 16)
    path = f"/webhooks/twilio/status?key={key}"
    params = {"MessageSid": "SM105", "MessageStatus": "delivered"}
    before = snapshot(server.engine)
    # a signature made with the same token for another deployment's host, replayed here
    forged = server.twilio(path, params, host="other.example.com",
                           signed_url="http://other.example.com" + path)
    assert forged.status_code == 403
    assert snapshot(server.engine) == before


def test_without_a_configured_public_url_twilio_requests_are_refused_and_logged(
        server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("OUTREACH_PUBLIC_BASE_URL")
    acc = person(server.engine, "+14155550209")
    key = uncertain_sms(server.engine, acc, "9b" * 16)
    with caplog.at_level("ERROR", logger="outreach.entry.webhooks_app"):
        reply = server.twilio(f"/webhooks/twilio/status?key={key}",
                              {"MessageSid": "SM106", "MessageStatus": "delivered"})
    assert reply.status_code == 403 and state(server.engine, key) == "uncertain"
    assert any("OUTREACH_PUBLIC_BASE_URL" in r.getMessage() and "[api] base_url" in r.getMessage()
               for r in caplog.records)


def test_airflow_api_base_url_is_used_when_no_public_url_is_set(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTREACH_PUBLIC_BASE_URL")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    acc = person(server.engine, "+14155550210")
    key = uncertain_sms(server.engine, acc, "9c" * 16)
    path = f"/webhooks/twilio/status?key={key}"
    params = {"MessageSid": "SM107", "MessageStatus": "sent"}
    assert server.twilio(path, params).status_code == 403  # signed for the local URL
    # the plugin mounts the app under /outreach of the api-server
    signed = "https://airflow.example.com/outreach" + path
    assert server.twilio(path, params, signed_url=signed).status_code == 200
    assert state(server.engine, key) == "sent"


def test_mounted_like_the_plugin_the_airflow_base_url_and_its_path_are_what_twilio_signed(
        engine: Engine, connections: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the api-server: [api] base_url with a path becomes the app's root_path, the plugin
    mounts this app under /outreach, and the proxy passes the full path through."""
    from fastapi import FastAPI

    from outreach.entry.webhooks_app import MOUNT_PATH

    monkeypatch.delenv("OUTREACH_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://ops.example.com/airflow/")
    api_server = FastAPI(root_path="/airflow")
    api_server.mount(MOUNT_PATH, create_app(engine=engine, now=lambda: NOW))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(api_server, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        acc = person(engine, "+14155550212")
        key = uncertain_sms(engine, acc, "9e" * 16)
        path = f"/airflow/outreach/webhooks/twilio/status?key={key}"
        params = {"MessageSid": "SM108", "MessageStatus": "sent"}
        local = Server(f"http://127.0.0.1:{port}", engine)
        assert local.twilio(path, params).status_code == 403  # signed for the local URL
        reply = local.twilio(path, params, signed_url="https://ops.example.com" + path)
        assert reply.status_code == 200 and state(engine, key) == "sent"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_inbound_stop_start_help_answer_in_twiml(server: Server) -> None:
    acc = person(server.engine, "+14155550205")
    number = {"From": "+14155550205", "To": "+18005550000"}
    stop = server.twilio("/webhooks/twilio/inbound", {**number, "MessageSid": "SM1", "Body": "Stop"})
    assert stop.status_code == 200 and stop.headers["content-type"].startswith("application/xml")
    assert "<Message>You are unsubscribed" in stop.text
    assert scalar(server.engine, "SELECT COUNT(*) FROM opt_out WHERE person_id = :p",
                  p=acc["person_id"]) == 1
    replay = server.twilio("/webhooks/twilio/inbound",
                           {**number, "MessageSid": "SM1", "Body": "Stop"})
    assert replay.status_code == 200 and "<Message>" not in replay.text
    assert "<Response" in replay.text
    helped = server.twilio("/webhooks/twilio/inbound",
                           {**number, "MessageSid": "SM2", "Body": "HELP"})
    assert "Reply STOP to opt out" in helped.text
    start = server.twilio("/webhooks/twilio/inbound",
                          {**number, "MessageSid": "SM3", "Body": "START"})
    assert "resubscribed" in start.text
    assert scalar(server.engine, "SELECT COUNT(*) FROM opt_out") == 0
    chat = server.twilio("/webhooks/twilio/inbound",
                         {**number, "MessageSid": "SM4", "Body": "ok thanks"})
    assert "<Message>" not in chat.text


# --- SendGrid -------------------------------------------------------------------------------


def test_signed_sendgrid_events_apply_once(server: Server) -> None:
    acc = person(server.engine, "+14155550206", "pat@example.com")
    key = uncertain_sms(server.engine, acc, "56" * 16, channel="email", point="email0")
    events = [
        {"event": "delivered", "email": "pat@example.com", "sg_event_id": "sgev1",
         "sg_message_id": "m1.f", "timestamp": 1795000000, "ledger_key": key},
        {"event": "group_unsubscribe", "email": "pat@example.com", "sg_event_id": "sgev2",
         "sg_message_id": "m1.f", "timestamp": 1795000100, "asm_group_id": 1},
        {"event": "open", "email": "pat@example.com", "sg_event_id": "sgev3"},
    ]
    reply = server.sendgrid(events)
    assert reply.status_code == 200
    assert reply.json() == {"applied": 2, "duplicate": 0, "ignored": 1, "suppressed": 0}
    assert state(server.engine, key) == "sent"
    assert scalar(server.engine, "SELECT channel FROM opt_out") == "email"
    before = snapshot(server.engine)
    again = server.sendgrid(events)
    assert again.json()["duplicate"] == 2 and snapshot(server.engine) == before


@pytest.mark.parametrize("how", ["unsigned", "other key", "stale", "future", "tampered"])
def test_forged_or_stale_sendgrid_requests_are_refused(server: Server, how: str) -> None:
    acc = person(server.engine, "+14155550207", "jo@example.com")
    key = uncertain_sms(server.engine, acc, "78" * 16, channel="email", point="email0")
    events = [{"event": "bounce", "email": "jo@example.com", "sg_event_id": "sgev9",
               "ledger_key": key, "type": "bounce"}]
    before = snapshot(server.engine)
    if how == "unsigned":
        reply = server.sendgrid(events, signed=False)
    elif how == "other key":
        reply = server.sendgrid(events, key=OTHER_PRIVATE)
    elif how == "stale":
        reply = server.sendgrid(events, timestamp=time.time() - 3600)
    elif how == "future":
        reply = server.sendgrid(events, timestamp=time.time() + 3600)
    else:
        payload = json.dumps(events)
        ts = str(int(time.time()))
        sig = SG_PRIVATE.sign((ts + payload).encode(), ec.ECDSA(hashes.SHA256()))
        reply = requests.post(
            server.url("/webhooks/sendgrid/events"),
            data=payload.replace("bounce", "delivered").encode(),
            headers={"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                     "X-Twilio-Email-Event-Webhook-Timestamp": ts}, timeout=30)
    assert reply.status_code == 403
    assert snapshot(server.engine) == before


@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-inf", "1e308", "9" * 400])
def test_a_non_finite_or_absurd_sendgrid_timestamp_fails_the_freshness_check(
        server: Server, timestamp: str) -> None:
    acc = person(server.engine, "+14155550211", "lee@example.com")
    key = uncertain_sms(server.engine, acc, "9d" * 16, channel="email", point="email0")
    events = [{"event": "delivered", "email": "lee@example.com", "sg_event_id": "sgev10",
               "sg_message_id": "m10.f", "ledger_key": key}]
    before = snapshot(server.engine)
    reply = server.sendgrid(events, timestamp=timestamp)  # signed with the right key
    assert reply.status_code == 403
    assert snapshot(server.engine) == before


# --- STOP while a batch is queued -------------------------------------------------------------


class Recording:
    """The outbox, with every send call recorded (duplicates cannot hide in its idempotency)."""

    def __init__(self, inner: OutboxChannel) -> None:
        self.inner, self.kind, self.backend = inner, inner.kind, inner.backend
        self.calls: list[tuple[str, str]] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls.append((message.key, message.destination))
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key)

    def close(self) -> None:
        pass


def test_stop_while_a_batch_of_1000_sms_is_queued(server: Server, tmp_path: Path) -> None:
    engine = server.engine
    numbers = [f"+1415556{i:04d}" for i in range(1000)]
    for i, number in enumerate(numbers):
        f.add_account(engine, as_of=DAY, dpd=2 + i % 10, emails=[], postal=False,
                      phones=[{"value": number, "type": "mobile", "zones": "America/New_York"}])
    for _ in iter_plan(engine, LADDER, DAY, 250):
        pass
    assert scalar(engine, "SELECT COUNT(*) FROM contact WHERE channel = 'sms' "
                  "AND state = 'planned'") == 1000
    sms = Recording(OutboxChannel("sms", f"sqlite:///{tmp_path / 'outbox.db'}"))
    ranges = dispatch_ranges(engine, DAY, "sms", 100)
    half = len(ranges) // 2

    def dispatch(part: list[tuple[int, int]]) -> None:
        for lo, hi in part:
            dispatch_range(engine, DAY, "sms", lo, hi, clock="logical", channel_impl=sms)

    dispatch(ranges[:half])
    sent_before = len(sms.calls)
    assert 0 < sent_before < 1000
    stopper = numbers[800]
    assert all(dest != stopper for _, dest in sms.calls)  # still queued
    reply = server.twilio("/webhooks/twilio/inbound",
                          {"MessageSid": "SMstop", "From": stopper, "To": "+18005550000",
                           "Body": "STOP"})
    assert reply.status_code == 200 and "<Message>" in reply.text
    # Recorded at once: the opt-out exists and the queued SMS to that number is suppressed.
    assert scalar(engine, "SELECT COUNT(*) FROM opt_out WHERE channel = 'sms'") == 1
    assert scalar(engine, "SELECT state FROM contact c JOIN contact_point cp "
                  "ON cp.id = c.contact_point_id WHERE cp.value = :v", v=stopper) == "suppressed"
    dispatch(ranges[half:])
    destinations = [dest for _, dest in sms.calls]
    assert stopper not in destinations
    assert len(destinations) == len(set(destinations)) == 999
    assert set(destinations) == set(numbers) - {stopper}
    assert sms.inner.count() == 999
    assert scalar(engine, "SELECT COUNT(*) FROM policy_decision WHERE phase = 'send' "
                  "AND verdict = 'block' AND reasons = 'core.opted_out'") == 1
    counts = dict(tuple(r) for r in sqlite_rows(engine, "SELECT state, COUNT(*) FROM contact "
                                                        "WHERE channel = 'sms' GROUP BY state"))
    assert counts == {"sent": 999, "suppressed": 1}


def sqlite_rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


# --- The plugin -------------------------------------------------------------------------------


def test_the_airflow_plugin_mounts_the_app_under_outreach() -> None:
    path = PROJECT_ROOT / "plugins" / "outreach_plugin.py"
    spec = importlib.util.spec_from_file_location("outreach_plugin_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (entry,) = module.OutreachPlugin.fastapi_apps
    assert entry["url_prefix"] == "/outreach"
    routes = {getattr(r, "path", None) for r in entry["app"].routes}
    assert {"/webhooks/twilio/status", "/webhooks/twilio/inbound",
            "/webhooks/sendgrid/events"} <= routes
