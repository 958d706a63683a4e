"""Email through SendGrid's v3 Mail Send API with the official ``sendgrid`` SDK.

Connection ``sendgrid_default``: password = API key; extras ``from_email``, ``from_name``,
``asm_group_id`` (required), ``sandbox_mode``, ``base_url``, ``timeout``.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Asm,
    CustomArg,
    From,
    GroupId,
    Mail,
    MailSettings,
    SandBoxMode,
    To,
)

from contact_channels.base import (
    ChannelError,
    OutboundMessage,
    PermanentError,
    SendResult,
    UncertainError,
)
from contact_channels.credentials import ConnectionInfo
from contact_channels.masking import mask_email
from contact_channels.retry import (
    DEFAULT_POLICY,
    RetryPolicy,
    call_with_retry,
    http_error,
    network_error,
    parse_retry_after,
)

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
DEFAULT_BASE_URL = "https://api.sendgrid.com"
DEFAULT_TIMEOUT = 10.0
LEDGER_KEY_ARG = "ledger_key"


class _DropSdkDebug(logging.Filter):
    """python_http_client logs the request payload and headers (API key, addresses, bodies) at
    DEBUG; drop those records so a debug-level task log cannot leak them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_sdk_logger = logging.getLogger("python_http_client.client")
if not any(isinstance(f, _DropSdkDebug) for f in _sdk_logger.filters):
    _sdk_logger.addFilter(_DropSdkDebug())


def _retry_after(exc: SendGridHTTPError) -> float | None:
    headers = getattr(exc, "headers", None)
    if headers is None:
        return None
    return parse_retry_after(headers.get("Retry-After"))


def _error_detail(exc: SendGridHTTPError) -> str:
    """The provider's first error message (scrubbed later by the classifier), or ''."""
    try:
        errors = exc.to_dict.get("errors") or []
        return str(errors[0].get("message") or "") if errors else ""
    except Exception:  # an HTML or empty body from a proxy: the status says enough
        return ""


class SendGridEmailChannel:
    """Sends ``email`` messages with ``SendGridAPIClient.send``. Build once per run; thread-safe."""

    kind = "email"
    backend = "sendgrid"

    def __init__(
        self,
        connection: ConnectionInfo,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not connection.password:
            raise ValueError(f"connection {connection.conn_id}: password (API key) is required")
        self.conn_id = connection.conn_id
        self._from_email = connection.extra_str("from_email")
        if not self._from_email:
            raise ValueError(f"connection {connection.conn_id}: extra 'from_email' is required")
        self._from_name = connection.extra_str("from_name")
        # Collection emails must always carry an unsubscribe group; refuse to build without one.
        asm_group_id = connection.extra_int("asm_group_id")
        if asm_group_id is None:
            raise ValueError(f"connection {connection.conn_id}: extra 'asm_group_id' is required")
        self._asm_group_id = asm_group_id
        self._sandbox_mode = connection.extra_bool("sandbox_mode", False)
        timeout = connection.extra_float("timeout", DEFAULT_TIMEOUT)
        if timeout is None or timeout <= 0:
            raise ValueError(f"connection {connection.conn_id}: extra 'timeout' must be > 0")
        base_url = (connection.extra_str("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self._client = SendGridAPIClient(api_key=connection.password, host=base_url)
        # The SDK builds its python_http_client without a timeout (urllib would wait forever);
        # every per-path client it derives copies this attribute.
        self._client.client.timeout = timeout
        self._policy = retry_policy
        self._sleep = sleep

    def build_mail(self, message: OutboundMessage) -> dict[str, Any]:
        """The v3 request body for a message (exposed for tests and the dry-run view)."""
        mail = Mail(
            from_email=From(self._from_email, self._from_name),
            to_emails=To(message.destination),
            subject=message.subject,
            plain_text_content=message.body_text,
            html_content=message.body_html,
        )
        # Tags first so that no tag can overwrite the ledger key.
        custom_args = {**{str(k): str(v) for k, v in message.tags.items()}}
        custom_args[LEDGER_KEY_ARG] = message.key
        mail.custom_arg = [CustomArg(k, v) for k, v in custom_args.items()]
        mail.asm = Asm(GroupId(self._asm_group_id))
        settings = MailSettings()
        settings.sandbox_mode = SandBoxMode(self._sandbox_mode)
        mail.mail_settings = settings
        body: dict[str, Any] = mail.get()
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != self.kind:
            raise PermanentError(
                f"sendgrid adapter was given a {message.channel!r} message", code="wrong_channel"
            )
        if not message.subject:
            raise PermanentError("an email needs a subject", code="no_subject")
        label = f"sendgrid email to {mask_email(message.destination)} key {message.key[:16]}"
        try:
            body = self.build_mail(message)
        except Exception as exc:  # nothing left this process: safe to fail it for good
            raise PermanentError(
                f"could not build the email: {type(exc).__name__}", code="bad_message"
            ) from None
        result = call_with_retry(
            lambda: self._post(body), policy=self._policy, sleep=self._sleep, label=label
        )
        log.info("%s accepted as %s", label, result.provider_id)
        return result

    def _post(self, body: dict[str, Any]) -> SendResult:
        """One attempt: the SDK call, with every failure turned into a classified error."""
        # `from None` below: the SDK's exception text can quote the destination, and a chained
        # cause would carry it into task-log tracebacks.
        try:
            response = self._client.send(body)
        except SendGridHTTPError as exc:
            raise http_error(
                PROVIDER,
                status=int(exc.status_code),
                detail=_error_detail(exc),
                retry_after=_retry_after(exc),
            ) from None
        except urllib.error.URLError as exc:
            # urllib raises URLError only while connecting or writing the request (refused,
            # DNS, connect timeout); a complete request was never handed to the provider.
            raise network_error(PROVIDER, "connect", exc) from None
        except (OSError, http.client.HTTPException) as exc:
            # Raised while waiting for or reading the reply: the request was written.
            raise network_error(PROVIDER, "no_reply", exc) from None
        except ChannelError:
            raise
        except Exception as exc:
            raise UncertainError(
                f"sendgrid: unexpected {type(exc).__name__} while sending", code="net:unknown"
            ) from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        # Sandbox mode validates only (200, nothing queued); say so in the ledger.
        return SendResult(
            provider_id=message_id, provider_status="sandbox" if self._sandbox_mode else "accepted"
        )

    def lookup(self, key: str) -> SendResult | None:
        """Always None: finding a message by custom arg needs the Email Activity add-on.

        Uncertain emails are resolved by the Event Webhook, which echoes ``ledger_key``.
        """
        return None

    def close(self) -> None:
        # python_http_client opens one connection per request; nothing is pooled.
        pass

    def __repr__(self) -> str:
        return f"SendGridEmailChannel(conn_id={self.conn_id!r})"
