"""Email through SendGrid's v3 Mail Send API with the official ``sendgrid`` SDK.

Connection ``sendgrid_default``: password = API key; extras ``from_email``, ``from_name``,
``asm_group_id`` (required), ``sandbox_mode``, ``base_url``, ``timeout``, ``batch_size``.

``send_batch`` puts up to ``batch_size`` emails (default 50, at most 1,000) into one Mail Send
request: one personalization each, with its own recipient, subject, ``custom_args`` (our ledger
key) and substitutions carrying its rendered text and HTML bodies.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
from collections.abc import Callable, Sequence
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Asm,
    Content,
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
DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 1000  # personalizations per request (SendGrid's limit)
MAX_SUBSTITUTION_BYTES = 10_000  # per personalization (SendGrid's limit)
# A batch's shared content is placeholders, one per piece of body between SendGrid's own
# unsubscribe tags, which stay in the content itself (SendGrid replaces them with the link for
# the mail's ASM group); each personalization substitutes its own pieces. Emails are batched
# together only when their bodies hold the same unsubscribe tags in the same order.
_ASM_TAG = re.compile(r"<%asm_[a-z_]+%>")
# A 400 or 413 on a batch refuses the whole request, nothing sent: each email is then sent on
# its own so that one bad address fails alone. Other refusals (auth, forbidden) hold for all.
_SPLIT_ON = ("http:400", "http:413")


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
        batch_size = connection.extra_int("batch_size")
        if batch_size is not None and not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(
                f"connection {connection.conn_id}: extra 'batch_size' must be 1 to {MAX_BATCH_SIZE}"
            )
        self.max_batch = batch_size or DEFAULT_BATCH_SIZE
        self._policy = retry_policy
        self._sleep = sleep

    def _envelope(self) -> Mail:
        """What every mail shares: sender, unsubscribe group, sandbox setting."""
        mail = Mail(from_email=From(self._from_email, self._from_name))
        mail.asm = Asm(GroupId(self._asm_group_id))
        settings = MailSettings()
        settings.sandbox_mode = SandBoxMode(self._sandbox_mode)
        mail.mail_settings = settings
        return mail

    @staticmethod
    def _custom_args(message: OutboundMessage) -> dict[str, str]:
        # Tags first so that no tag can overwrite the ledger key.
        custom_args = {str(k): str(v) for k, v in message.tags.items()}
        custom_args[LEDGER_KEY_ARG] = message.key
        return custom_args

    def build_mail(self, message: OutboundMessage) -> dict[str, Any]:
        """The v3 request body for a message (exposed for tests and the dry-run view)."""
        mail = self._envelope()
        mail.add_to(To(message.destination))
        mail.subject = message.subject
        mail.add_content(Content("text/plain", message.body_text))
        if message.body_html:
            mail.add_content(Content("text/html", message.body_html))
        mail.custom_arg = [CustomArg(k, v) for k, v in self._custom_args(message).items()]
        body: dict[str, Any] = mail.get()
        return body

    def build_batch(self, messages: Sequence[OutboundMessage]) -> dict[str, Any]:
        """One v3 request body for several emails of the same shape (``_shape``)."""
        shape = _shape(messages[0])
        if any(_shape(m) != shape for m in messages):
            raise ValueError("a batch mixes emails of different shapes")
        body: dict[str, Any] = self._envelope().get()
        body["content"] = [
            {"type": kind, "value": _template(kind, tags)}
            for kind, tags in zip(("text/plain", "text/html"), shape, strict=False)
            if tags is not None
        ]
        body["personalizations"] = [
            {
                "to": [{"email": m.destination}],
                "subject": m.subject,
                "custom_args": self._custom_args(m),
                "substitutions": _substitutions(m),
            }
            for m in messages
        ]
        return body

    def _refusal(self, message: OutboundMessage) -> PermanentError | None:
        """Why this message can never be sent as it is, or None."""
        if message.channel != self.kind:
            return PermanentError(
                f"sendgrid adapter was given a {message.channel!r} message", code="wrong_channel"
            )
        if not message.subject:
            return PermanentError("an email needs a subject", code="no_subject")
        return None

    def send(self, message: OutboundMessage) -> SendResult:
        if (refusal := self._refusal(message)) is not None:
            raise refusal
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

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Send ``messages`` in as few requests as fit, one outcome per message, in order.

        A request's outcome is every one of its messages' outcome: accepted, or a transient or
        uncertain error for all of them. Messages that cannot be batched (refused, too large
        for substitutions, a different shape) and a batch refused as a bad request are sent
        one by one.
        """
        outcomes: dict[int, SendResult | ChannelError] = {}
        batches: dict[tuple[tuple[str, ...] | None, ...], list[int]] = {}
        for i, m in enumerate(messages):
            if (refusal := self._refusal(m)) is not None:
                outcomes[i] = refusal
            elif _substitution_bytes(m) > MAX_SUBSTITUTION_BYTES:
                outcomes[i] = self._send_caught(m)
            else:
                batches.setdefault(_shape(m), []).append(i)
        for indexes in batches.values():
            for j in range(0, len(indexes), self.max_batch):
                chunk = indexes[j : j + self.max_batch]
                for i, outcome in zip(chunk, self._send_chunk([messages[i] for i in chunk]), strict=True):
                    outcomes[i] = outcome
        return [outcomes[i] for i in range(len(messages))]

    def _send_chunk(self, chunk: list[OutboundMessage]) -> list[SendResult | ChannelError]:
        if len(chunk) == 1:
            return [self._send_caught(chunk[0])]
        label = f"sendgrid batch of {len(chunk)} emails, first key {chunk[0].key[:16]}"
        body = self.build_batch(chunk)
        try:
            result = call_with_retry(
                lambda: self._post(body), policy=self._policy, sleep=self._sleep, label=label
            )
        except PermanentError as err:
            if err.code not in _SPLIT_ON:
                return [err] * len(chunk)
            log.warning("%s refused (%s): sending each alone", label, err.code)
            return [self._send_caught(m) for m in chunk]
        except ChannelError as err:
            return [err] * len(chunk)
        log.info("%s accepted as %s", label, result.provider_id)
        return [result] * len(chunk)

    def _send_caught(self, message: OutboundMessage) -> SendResult | ChannelError:
        try:
            return self.send(message)
        except ChannelError as err:
            return err

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


def _shape(message: OutboundMessage) -> tuple[tuple[str, ...] | None, ...]:
    """The unsubscribe tags of the text body and of the HTML body (None: no HTML)."""
    html = message.body_html
    return (
        tuple(_ASM_TAG.findall(message.body_text)),
        None if html is None else tuple(_ASM_TAG.findall(html)),
    )


def _placeholder(kind: str, i: int) -> str:
    return f"-outreach-{kind.removeprefix('text/')}-{i}-"


def _template(kind: str, tags: tuple[str, ...]) -> str:
    """The shared content: placeholders around the unsubscribe tags."""
    return "".join(_placeholder(kind, i) + tag for i, tag in enumerate(tags)) + _placeholder(
        kind, len(tags)
    )


def _substitutions(message: OutboundMessage) -> dict[str, str]:
    """This email's pieces of body, by placeholder."""
    subs: dict[str, str] = {}
    for kind, body in (("text/plain", message.body_text), ("text/html", message.body_html)):
        if body is not None:
            for i, piece in enumerate(_ASM_TAG.split(body)):
                subs[_placeholder(kind, i)] = piece
    return subs


def _substitution_bytes(message: OutboundMessage) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in _substitutions(message).items())
