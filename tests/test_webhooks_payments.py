"""The payment processor's webhook over real HTTP (uvicorn on 127.0.0.1): signed with
HMAC-SHA256, idempotent on the payment id, capped, and silent about what the body says."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from sqlalchemy import Engine, insert, select

from outreach.entry.webhooks_app import create_app
from outreach.kernel.clock import utcnow
from outreach.services.payments import signing_secret
from outreach.storage.models import Payment, PaymentAllocation, Promise, ResolutionEvent
from tests import factories as f

DAY = dt.date(2026, 12, 7)
NOW = dt.datetime(2026, 12, 7, 15, 0)
SECRET = "whsec-for-tests-only"


@dataclass
class Server:
    url: str

    def post(self, event: dict[str, Any] | bytes, *, secret: str = SECRET,
             stamp: int | None = None, signature: str | None = None,
             tamper: bool = False) -> requests.Response:  # fmt: skip
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        t = str(stamp if stamp is not None else int(time.time()))
        sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json"}
        if signature != "":
            headers["X-Outreach-Signature"] = f"t={t},v1={signature or sig}"
        if tamper:
            body = body.replace(b'"amount": "', b'"amount": "1')
        return requests.post(self.url + "/webhooks/payments", data=body, headers=headers,
                             timeout=30)  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def server(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    yield from serve(engine, monkeypatch)


def serve(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The webhook app under uvicorn on 127.0.0.1, the processor's secret configured."""
    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_PAYMENTS",
                       json.dumps({"conn_type": "generic", "password": SECRET}))  # fmt: skip
    # Read once here: the first read imports Airflow's models, slow on a loaded machine, and
    # must not eat into a request's timeout.
    assert signing_secret() == SECRET
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(engine=engine, now=lambda: NOW),
                                        log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.started
    try:
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def posted(account_ref: str, payment_id: str = "pi_001", amount: str = "40.00",
           **changes: Any) -> dict[str, Any]:  # fmt: skip
    return {"event": "payment.posted", "payment_id": payment_id, "account_ref": account_ref,
            "amount": amount, "currency": "USD", "paid_on": str(DAY), **changes}  # fmt: skip


def table(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model.__table__)))


@pytest.fixture
def account(engine: Engine) -> dict[str, Any]:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    with engine.begin() as conn:
        conn.execute(insert(Promise).values(
            account_id=acc["account_id"], promise_ref="PR-1", amount=Decimal("100.00"),
            due_on=DAY + dt.timedelta(days=5), recorded_at=utcnow(), source="agent",
            status="open", pauses=True, pause_until=DAY + dt.timedelta(days=8),
        ))  # fmt: skip
    return acc


def test_a_signed_payment_is_posted_allocated_and_a_repeat_is_a_duplicate(
    server: Server, engine: Engine, account: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = server.post(posted(account["account_ref"]))
    assert (first.status_code, first.json()) == (200, {"status": "posted"})
    [payment] = table(engine, Payment)
    assert (payment.payment_ref, payment.amount, payment.source) == ("pi_001", Decimal("40.00"),
                                                                     "webhook")  # fmt: skip
    assert payment.received_at == NOW
    [allocation] = table(engine, PaymentAllocation)
    assert (allocation.target, allocation.amount) == ("promise", Decimal("40.00"))
    assert table(engine, Promise)[0].paid_amount == Decimal("40.00")
    events = len(table(engine, ResolutionEvent))

    again = server.post(posted(account["account_ref"]))
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert len(table(engine, Payment)) == 1 and len(table(engine, PaymentAllocation)) == 1
    assert len(table(engine, ResolutionEvent)) == events
    # The same id with another amount is not a duplicate: refused, nothing changes.
    other = server.post(posted(account["account_ref"], amount="41.00"))
    assert other.status_code == 409
    assert table(engine, Payment)[0].amount == Decimal("40.00")
    logged = caplog.text
    assert account["account_ref"] not in logged and "pi_001" not in logged


@pytest.mark.parametrize("how", ["tampered", "wrong_secret", "missing", "stale", "future",
                                 "garbled"])  # fmt: skip
def test_a_bad_missing_or_stale_signature_is_refused_and_changes_nothing(
    server: Server, engine: Engine, account: dict[str, Any], how: str
) -> None:
    event = posted(account["account_ref"])
    now = int(time.time())
    response = {
        "tampered": lambda: server.post(event, tamper=True),
        "wrong_secret": lambda: server.post(event, secret="another-secret"),
        "missing": lambda: server.post(event, signature=""),
        "stale": lambda: server.post(event, stamp=now - 601),
        "future": lambda: server.post(event, stamp=now + 601),
        "garbled": lambda: server.post(event, signature="not-hex"),
    }[how]()
    assert response.status_code == 403
    assert table(engine, Payment) == [] and table(engine, ResolutionEvent) == []


def test_the_allowed_age_is_the_webhooks_setting(
    server: Server, engine: Engine, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_WEBHOOK_MAX_AGE_SECONDS", "30")
    event = posted(account["account_ref"])
    assert server.post(event, stamp=int(time.time()) - 60).status_code == 403
    assert server.post(event, stamp=int(time.time()) - 5).status_code == 200


def test_without_the_connection_nothing_is_accepted(
    server: Server, engine: Engine, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OUTREACH_PAYMENTS")
    assert server.post(posted(account["account_ref"])).status_code == 403
    assert table(engine, Payment) == []


def test_an_oversized_body_is_refused_before_its_signature_is_read(
    server: Server, engine: Engine, account: dict[str, Any]
) -> None:
    huge = posted(account["account_ref"], padding="x" * (1024 * 1024))
    response = server.post(huge)
    assert response.status_code == 413
    assert table(engine, Payment) == []


def test_an_unknown_account_is_404_without_repeating_anything_of_the_body(
    server: Server, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = server.post(posted("ACCT-SECRET-REF", payment_id="pi_secret"))
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_account"}
    assert "ACCT-SECRET-REF" not in caplog.text and "pi_secret" not in caplog.text
    assert table(engine, Payment) == []


@pytest.mark.parametrize("change,field", [
    ({"amount": "12.345"}, "amount"), ({"amount": "abc"}, "amount"), ({"currency": "CNY"},
    "currency"), ({"paid_on": "07/12/2026"}, "paid_on"), ({"event": "payment.refunded"}, "event"),
    ({"payment_id": ""}, "payment_id"),
])  # fmt: skip
def test_a_bad_field_is_422_naming_the_field_not_its_value(
    server: Server, engine: Engine, account: dict[str, Any], change: dict[str, str], field: str
) -> None:
    response = server.post(posted(account["account_ref"], **change))
    assert response.status_code == 422
    assert response.json()["error"] == field
    for value in change.values():
        if value:
            assert value not in response.text
    assert table(engine, Payment) == []


def test_a_reversal_takes_the_payment_back_once(
    server: Server, engine: Engine, account: dict[str, Any]
) -> None:
    assert server.post(posted(account["account_ref"])).status_code == 200
    reversal = {"event": "payment.reversed", "payment_id": "pi_001", "reason": "chargeback"}
    first = server.post(reversal)
    assert (first.status_code, first.json()) == (200, {"status": "reversed"})
    [payment] = table(engine, Payment)
    assert (payment.status, payment.reversed_on, payment.reversal_reason) == (
        "reversed", DAY, "chargeback")  # fmt: skip
    assert table(engine, Promise)[0].paid_amount == Decimal("0.00")
    assert [a.reversed for a in table(engine, PaymentAllocation)] == [True]
    again = server.post(reversal)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    unknown = server.post({**reversal, "payment_id": "pi_404"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown_payment"})
