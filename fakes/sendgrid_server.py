"""A fake SendGrid v3 Mail Send API on 127.0.0.1, with faults on demand.

``POST /v3/mail/send`` (JSON, bearer auth): 202 with ``X-Message-Id`` (200 in sandbox mode).
Run standalone with ``python -m fakes.sendgrid_server``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from typing import Any

from fakes.http import FakeProviderServer, Fault, RecordedRequest, Reply, retry_after_value

DEFAULT_API_KEY = "SG.fake-sendgrid-api-key"
SEND_PATH = "/v3/mail/send"
MAX_PERSONALIZATIONS = 1000  # SendGrid's limit per request
MAX_SUBSTITUTIONS = 10_000  # bytes of substitutions per personalization


def sendgrid_error(
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """SendGrid's error envelope: ``{"errors": [{"message", "field", "help"}]}``."""
    return Reply.json(
        status, {"errors": [{"message": message, "field": field, "help": None}]}, headers
    )


_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}


class FakeSendGrid(FakeProviderServer):
    """``with FakeSendGrid() as fake:`` point the SDK at ``fake.base_url``; read ``fake.messages``."""

    name = "fake-sendgrid"

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_rate: float | None = None,
    ) -> None:
        super().__init__(host, port, max_rate=max_rate)
        self.api_key = api_key
        self._messages: list[dict[str, Any]] = []
        self._messages_lock = threading.Lock()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted mail bodies, each with ``_message_id`` (None in sandbox mode) added."""
        with self._messages_lock:
            return list(self._messages)

    def accepted_keys(self) -> list[str]:
        """The ledger key (``custom_args.ledger_key``, per personalization or for the whole
        mail) of every accepted email, in arrival order and with repeats: a key listed twice
        was sent twice. Sandbox mails are not sent and not listed."""
        keys = []
        for mail in self.messages:
            if mail["_message_id"] is None:
                continue
            for p in mail["personalizations"]:
                args = {**mail.get("custom_args", {}), **p.get("custom_args", {})}
                if "ledger_key" in args:
                    keys.append(str(args["ledger_key"]))
        return keys

    def recipients(self) -> list[str]:
        """Every address an accepted (non-sandbox) mail went to, with repeats."""
        return [
            str(r["email"])
            for mail in self.messages
            if mail["_message_id"] is not None
            for p in mail["personalizations"]
            for r in p["to"]
        ]

    def _reset_state(self) -> None:
        with self._messages_lock:
            self._messages.clear()

    def connection_extra(self, **extra: Any) -> dict[str, Any]:
        """Connection extras pointing at this fake."""
        return {
            "from_email": "collections@lender.example",
            "from_name": "Lender Collections",
            "asm_group_id": 4242,
            "base_url": self.base_url,
            **extra,
        }

    def airflow_conn_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_SENDGRID_DEFAULT`` value (JSON form) for this fake."""
        return json.dumps(
            {"conn_type": "http", "password": self.api_key, "extra": self.connection_extra(**extra)}
        )

    # -- provider hooks --------------------------------------------------------------------

    def destination_of(self, request: RecordedRequest) -> str | None:
        try:
            return str(request.json["personalizations"][0]["to"][0]["email"])
        except (KeyError, IndexError, TypeError):
            return None

    def messages_in(self, request: RecordedRequest) -> int:
        try:
            return len(request.json["personalizations"])
        except (KeyError, TypeError):
            return 1

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and request.path == SEND_PATH

    def check_auth(self, request: RecordedRequest) -> Reply | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return sendgrid_error(401, _STATUS_MESSAGES[401])
        return None

    def error_reply(self, request: RecordedRequest, fault: Fault) -> Reply:
        headers = (
            {"Retry-After": retry_after_value(fault.retry_after)} if fault.retry_after else None
        )
        message = fault.message or _STATUS_MESSAGES.get(fault.status, "error")
        return sendgrid_error(fault.status, message, headers=headers)

    def handle(self, request: RecordedRequest) -> Reply:
        if not self.is_send(request):
            return sendgrid_error(404, "not found")
        mail = request.json
        if not isinstance(mail, dict):
            return sendgrid_error(400, "Bad Request")
        problem = _validate(mail)
        if problem is not None:
            return sendgrid_error(400, problem[1], field=problem[0])
        sandbox = bool(mail.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"))
        # Sandbox mode validates and answers 200 without queueing anything.
        message_id = None if sandbox else secrets.token_urlsafe(16)
        with self._messages_lock:
            self._messages.append({**mail, "_message_id": message_id})
        if sandbox:
            return Reply(200)
        return Reply(202, headers={"X-Message-Id": message_id or ""})


def _validate(mail: dict[str, Any]) -> tuple[str, str] | None:
    """The first (field, message) SendGrid would reject, or None."""
    personalizations = mail.get("personalizations")
    if not personalizations or not isinstance(personalizations, list):
        return "personalizations", "The personalizations field is required."
    for p in personalizations:
        recipients = p.get("to") if isinstance(p, dict) else None
        if not recipients or not all(
            isinstance(r, dict) and "@" in str(r.get("email", "")) for r in recipients
        ):
            return "personalizations.0.to", "Does not contain a valid address."
    sender = mail.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        return "from.email", "The from email does not contain a valid address."
    if "template_id" not in mail:
        if not mail.get("subject") and not all(p.get("subject") for p in personalizations):
            return "subject", "The subject is required."
        content = mail.get("content")
        if not content or not all(c.get("value") for c in content):
            return (
                "content",
                "Unless a valid template_id is provided, the content parameter is required.",
            )
    sandbox = mail.get("mail_settings", {}).get("sandbox_mode", {}).get("enable", False)
    if not isinstance(sandbox, bool):
        return (
            "mail_settings.sandbox_mode.enable",
            "The sandbox mode enable param should be a boolean value.",
        )
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return "personalizations", "The personalizations field may not exceed 1000 items."
    for where, args in [("custom_args", mail.get("custom_args", {}))] + [
        (f"personalizations.{i}.custom_args", p.get("custom_args", {}))
        for i, p in enumerate(personalizations)
    ]:
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            return where, "Custom args values must be strings."
    for i, p in enumerate(personalizations):
        subs = p.get("substitutions", {})
        if not isinstance(subs, dict) or not all(isinstance(v, str) for v in subs.values()):
            return f"personalizations.{i}.substitutions", "Substitutions must be strings."
        if sum(len(k.encode()) + len(v.encode()) for k, v in subs.items()) > MAX_SUBSTITUTIONS:
            return (
                f"personalizations.{i}.substitutions",
                "The total size of substitutions may not exceed 10000 bytes per personalization.",
            )
    return None


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted, e.g. for the demo or a benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--max-rate", type=float, default=None, help="answer 429 to sends above this rate a second"
    )
    args = parser.parse_args(argv)
    with FakeSendGrid(port=args.port, max_rate=args.max_rate) as fake:
        print(f"fake SendGrid on {fake.base_url}")
        print(f"AIRFLOW_CONN_SENDGRID_DEFAULT='{fake.airflow_conn_json()}'", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
