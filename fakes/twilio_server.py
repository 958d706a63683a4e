"""A fake Twilio Messages API on 127.0.0.1: the subset our SMS adapter uses, with faults on demand.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, basic auth) and
``GET .../Messages/{MessageSid}.json``. Run standalone with ``python -m fakes.twilio_server``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contact_channels.sms_segments import sms_segments
from fakes.http import FakeProviderServer, Fault, RecordedRequest, Reply, retry_after_value

DEFAULT_ACCOUNT_SID = "AC00000000000000000000000000000001"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
STATUS_CALLBACK_URL = "https://outreach.example/outreach/webhooks/twilio/status"

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_MESSAGE = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages/(?P<msg>SM[0-9a-f]{32})\.json$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Messages as Twilio words them (https://www.twilio.com/docs/api/errors). Some echo the number,
# which is why the adapter scrubs provider messages.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
}
_CODE_FOR_STATUS = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def twilio_error(
    status: int,
    code: int,
    *,
    to: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    text = message or ERROR_MESSAGES.get(code, "Error").format(to=to or "")
    payload = {
        "code": code,
        "message": text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, payload, headers)


class FakeTwilio(FakeProviderServer):
    """``with FakeTwilio() as fake:`` point the SDK at ``fake.base_url``; read ``fake.messages``."""

    name = "fake-twilio"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_rate: float | None = None,
    ) -> None:
        super().__init__(host, port, max_rate=max_rate)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._messages: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}  # message sid -> our ledger key
        self._messages_lock = threading.Lock()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Message resources accepted (status ``queued``), in arrival order."""
        with self._messages_lock:
            return list(self._messages.values())

    def accepted_keys(self) -> list[str]:
        """The ledger key (``key=`` on the status callback URL) of every accepted message, in
        arrival order and with repeats: a key listed twice was sent twice."""
        with self._messages_lock:
            return [k for sid in self._messages if (k := self._keys.get(sid))]

    def _reset_state(self) -> None:
        with self._messages_lock:
            self._messages.clear()
            self._keys.clear()

    def connection_extra(self, **extra: Any) -> dict[str, Any]:
        """Connection extras pointing at this fake (``base_url``, a messaging service, a status
        callback URL, which carries our ledger key and is never called by the fake)."""
        return {
            "messaging_service_sid": "MG" + "0" * 32,
            "base_url": self.base_url,
            "status_callback_url": STATUS_CALLBACK_URL,
            **extra,
        }

    def airflow_conn_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_TWILIO_DEFAULT`` value (JSON form) for this fake."""
        return json.dumps(
            {
                "conn_type": "http",
                "login": self.account_sid,
                "password": self.auth_token,
                "extra": self.connection_extra(**extra),
            }
        )

    # -- provider hooks --------------------------------------------------------------------

    def destination_of(self, request: RecordedRequest) -> str | None:
        return request.form.get("To")

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and _MESSAGES.match(request.path) is not None

    def rate_units(self, request: RecordedRequest) -> int:
        # Twilio measures throughput in segments: a 3-part Chinese text is 3 against the rate.
        return sms_segments(request.form.get("Body", ""))[1]

    def check_auth(self, request: RecordedRequest) -> Reply | None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user, password = "", ""
        if scheme.lower() != "basic" or user != self.account_sid or password != self.auth_token:
            return twilio_error(401, 20003)
        match = _MESSAGES.match(request.path) or _MESSAGE.match(request.path)
        if match is not None and match.group("sid") != self.account_sid:
            return twilio_error(404, 20404)
        return None

    def error_reply(self, request: RecordedRequest, fault: Fault) -> Reply:
        headers = (
            {"Retry-After": retry_after_value(fault.retry_after)} if fault.retry_after else None
        )
        code = fault.code or _CODE_FOR_STATUS.get(fault.status, fault.status)
        return twilio_error(
            fault.status, code, to=request.destination, message=fault.message, headers=headers
        )

    def handle(self, request: RecordedRequest) -> Reply:
        if request.method == "POST" and _MESSAGES.match(request.path):
            return self._create(request)
        if request.method == "GET" and (match := _MESSAGE.match(request.path)):
            with self._messages_lock:
                resource = self._messages.get(match.group("msg"))
            return Reply.json(200, resource) if resource else twilio_error(404, 20404)
        return twilio_error(404, 20404)

    def _create(self, request: RecordedRequest) -> Reply:
        form = request.form
        to = form.get("To")
        if not to:
            return twilio_error(400, 21604)
        if not _E164.match(to):
            return twilio_error(400, 21211, to=to)
        if not form.get("Body") and not form.get("MediaUrl"):
            return twilio_error(400, 21602)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603)
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        body = form.get("Body", "")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(sms_segments(body)[1]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        callback = form.get("StatusCallback") or ""
        key = parse_qs(urlsplit(callback).query).get("key", [None])[-1]
        with self._messages_lock:
            self._messages[sid] = resource
            if key:
                self._keys[sid] = key
        return Reply.json(201, resource)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted, e.g. for the demo or a benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--max-rate", type=float, default=None, help="answer 429 to sends above this rate a second"
    )
    args = parser.parse_args(argv)
    with FakeTwilio(port=args.port, max_rate=args.max_rate) as fake:
        print(f"fake Twilio on {fake.base_url}")
        print(f"AIRFLOW_CONN_TWILIO_DEFAULT='{fake.airflow_conn_json()}'", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
