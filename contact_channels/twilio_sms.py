"""SMS through Twilio's Messages API with the official ``twilio`` SDK.

Connection ``twilio_default``: login = Account SID, password = Auth Token; extras
``messaging_service_sid`` or ``from_number``, ``status_callback_url``, ``base_url``, ``timeout``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from contact_channels.base import (
    ChannelError,
    OutboundMessage,
    PermanentError,
    SendResult,
    UncertainError,
)
from contact_channels.credentials import ConnectionInfo
from contact_channels.masking import mask_phone, scrub_text
from contact_channels.retry import (
    DEFAULT_POLICY,
    RetryPolicy,
    call_with_retry,
    http_error,
    network_error,
    parse_retry_after,
)

log = logging.getLogger(__name__)

# The SDK logs ~10 INFO lines per request (URL, headers). At tens of thousands of messages that
# drowns the task log, so its logger is ours and starts at WARNING; lower it to debug the wire.
sdk_log = logging.getLogger(f"{__name__}.sdk")
if sdk_log.level == logging.NOTSET:
    sdk_log.setLevel(logging.WARNING)

PROVIDER = "twilio"
DEFAULT_TIMEOUT = 10.0
POOL_SIZE = 64  # keep-alive connections, at least the dispatcher's sender threads


class RoutedTwilioHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, with two additions the adapter needs.

    It can send every request to another origin (``base_url``: a fake server, a proxy) after the
    SDK has built the URL, so edge/region settings cannot re-point it; and it keeps the headers
    of this thread's last response, because ``TwilioRestException`` drops ``Retry-After``.
    """

    def __init__(self, *, base_url: str | None, timeout: float, logger: logging.Logger) -> None:
        super().__init__(timeout=timeout, logger=logger)
        if self.session is not None:
            # Keep a connection per sender thread alive (requests keeps 10 by default, and
            # drops the rest after each use: a new TCP and TLS handshake per message).
            for scheme in ("https://", "http://"):
                self.session.mount(scheme, HTTPAdapter(pool_maxsize=POOL_SIZE))
        self._origin = urlsplit(base_url.rstrip("/")) if base_url else None
        self._last = threading.local()

    def _route(self, url: str) -> str:
        if self._origin is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(
            (
                self._origin.scheme,
                self._origin.netloc,
                self._origin.path + parts.path,
                parts.query,
                parts.fragment,
            )
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self._last.headers = None
        response = super().request(
            method,
            self._route(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._last.headers = response.headers
        return response

    def last_retry_after(self) -> float | None:
        headers = getattr(self._last, "headers", None)
        if not headers:
            return None
        return parse_retry_after(headers.get("Retry-After"))


def with_key(callback_url: str, key: str) -> str:
    """``callback_url`` with ``key=<ledger key>`` added to its query (the key is a hash, not PII)."""
    parts = urlsplit(callback_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "key"]
    query.append(("key", key))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _transport_stage(exc: requests.RequestException) -> str:
    """``connect`` when the request certainly never left, else ``no_reply``."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect"
    if isinstance(exc, requests.ReadTimeout):
        return "no_reply"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        # NewConnectionError (refused, DNS) subclasses ConnectTimeoutError in urllib3.
        if isinstance(reason, ConnectTimeoutError | NewConnectionError):
            return "connect"
        return "no_reply"
    return "unknown"


class TwilioSmsChannel:
    """Sends ``sms`` messages with ``client.messages.create``. Build once per run; thread-safe."""

    kind = "sms"
    backend = "twilio"

    def __init__(
        self,
        connection: ConnectionInfo,
        *,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not connection.login or not connection.password:
            raise ValueError(
                f"connection {connection.conn_id}: login (Account SID) and password "
                "(Auth Token) are required"
            )
        self.conn_id = connection.conn_id
        self._messaging_service_sid = connection.extra_str("messaging_service_sid")
        self._from_number = connection.extra_str("from_number")
        if not self._messaging_service_sid and not self._from_number:
            raise ValueError(
                f"connection {connection.conn_id}: extra 'messaging_service_sid' or "
                "'from_number' is required"
            )
        self._status_callback_url = connection.extra_str("status_callback_url")
        timeout = connection.extra_float("timeout", DEFAULT_TIMEOUT)
        if timeout is None or timeout <= 0:
            raise ValueError(f"connection {connection.conn_id}: extra 'timeout' must be > 0")
        self._http = RoutedTwilioHttpClient(
            base_url=connection.extra_str("base_url"), timeout=timeout, logger=sdk_log
        )
        self._client = Client(
            username=connection.login,
            password=connection.password,
            account_sid=connection.login,
            http_client=self._http,
        )
        self._policy = retry_policy
        self._sleep = sleep

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != self.kind:
            raise PermanentError(
                f"twilio sms adapter was given a {message.channel!r} message", code="wrong_channel"
            )
        label = f"twilio sms to {mask_phone(message.destination)} key {message.key[:16]}"
        params: dict[str, Any] = {"to": message.destination, "body": message.body_text}
        if self._messaging_service_sid:
            params["messaging_service_sid"] = self._messaging_service_sid
        if self._from_number:
            params["from_"] = self._from_number
        if self._status_callback_url:
            params["status_callback"] = with_key(self._status_callback_url, message.key)
        result = call_with_retry(
            lambda: self._create(params), policy=self._policy, sleep=self._sleep, label=label
        )
        log.info("%s accepted as %s (%s)", label, result.provider_id, result.provider_status)
        return result

    def _create(self, params: dict[str, Any]) -> SendResult:
        """One attempt: the SDK call, with every failure turned into a classified error."""
        # `from None` below: the SDK's exception text can quote the destination, and a chained
        # cause would carry it into task-log tracebacks.
        try:
            created = self._client.messages.create(**params)
        except TwilioRestException as exc:
            raise http_error(
                PROVIDER,
                status=exc.status,
                code=exc.code,
                detail=scrub_text(str(exc.msg or "")),
                retry_after=self._http.last_retry_after(),
            ) from None
        except TwilioServiceException as exc:
            raise http_error(
                PROVIDER,
                status=exc.status,
                code=exc.code,
                detail=scrub_text(str(getattr(exc, "title", "") or "")),
                retry_after=self._http.last_retry_after(),
            ) from None
        except requests.RequestException as exc:
            raise network_error(PROVIDER, _transport_stage(exc), exc) from None
        except ChannelError:
            raise
        except Exception as exc:
            # E.g. an unreadable 2xx body: we cannot tell whether the provider kept the message,
            # so a person (or the status callback) resolves it rather than a blind resend.
            raise UncertainError(
                f"twilio: unexpected {type(exc).__name__} while sending", code="net:unknown"
            ) from None
        return SendResult(provider_id=created.sid, provider_status=str(created.status or "queued"))

    def lookup(self, key: str) -> SendResult | None:
        """Always None: Twilio cannot search messages by our key.

        Uncertain SMS are resolved by the status callback, which carries ``?key=`` in its URL.
        """
        return None

    def close(self) -> None:
        session = self._http.session
        if session is not None:
            session.close()

    def __repr__(self) -> str:
        return f"TwilioSmsChannel(conn_id={self.conn_id!r})"
