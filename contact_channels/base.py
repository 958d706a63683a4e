"""The contract every channel adapter honours: one message in, one result or one classified error out.

The dispatcher (in ``outreach``) owns the ledger and the exactly-once protocol; an adapter only
talks to its provider or medium. Adapters never log destinations or bodies in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Channel kinds named in ladders. Each maps to one adapter at a time (see registry.py).
CHANNEL_KINDS: tuple[str, ...] = ("sms", "email", "call", "letter", "agency", "legal")


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What one contact would put in front of the consumer.

    ``key`` is the ledger's idempotency key: adapters pass it to the provider where the provider
    can carry it (SendGrid ``custom_args``, a Twilio status-callback query parameter) so that
    callbacks can be matched to the ledger and a provider-side duplicate can be detected.
    ``tags`` carry non-personal routing data only (stage, action, template, language).
    ``fields`` carry the structured content the people and paper channels lay out (address
    lines, amounts, dates, the queue's window, the agency, a case's history); they may hold
    personal data, so adapters never log them.
    """

    key: str
    channel: str
    destination: str
    body_text: str
    subject: str | None = None
    body_html: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message. ``provider_id`` is its reference (Twilio SID, ...)."""

    provider_id: str | None
    provider_status: str = "accepted"


class ChannelError(Exception):
    """Base of the classified errors an adapter raises. ``code`` is the provider's code if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentError(ChannelError):
    """The provider refused and will refuse again (invalid number, unsubscribed, bad request).

    ``destination_invalid`` and ``opted_out`` tell the dispatcher to update the contact point.
    Never retried.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        destination_invalid: bool = False,
        opted_out: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.destination_invalid = destination_invalid
        self.opted_out = opted_out


class TransientError(ChannelError):
    """The provider did not take the message (429, 5xx, refused connection) and retries are spent.

    Nothing reached the consumer, so the contact may be sent again later.
    """


class UncertainError(ChannelError):
    """The request may have reached the provider but no answer came back (timeout after the
    request was written, connection reset mid-response). The contact must not be resent
    automatically: a callback or a person resolves it."""


@runtime_checkable
class Channel(Protocol):
    """One adapter instance per channel kind and run; build it once, send many.

    A backend in LOCAL_BACKENDS is our own medium (the outbox, the agent call queue, files in
    a drop location): it knows for sure every message it took (``lookup`` is authoritative),
    and nothing reaches a person at the moment of sending, so the day's send times may be
    simulated (``clock=logical``)."""

    kind: str
    backend: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one message or raise a ChannelError subclass. Any other exception is a bug and
        the dispatcher treats the contact as uncertain."""
        ...

    def lookup(self, key: str) -> SendResult | None:
        """What the backend knows of a message by our key, for resolving uncertain contacts.
        ``None`` when the backend cannot tell or has no such message."""
        ...

    def close(self) -> None: ...


# Our own media (see ``Channel``): the outbox and the people and paper channels' backends.
LOCAL_BACKENDS = frozenset({"outbox", "agent_queue", "print", "agency_files", "counsel"})


def is_local(channel: Channel) -> bool:
    """Whether ``channel`` is one of our own media (see ``Channel``)."""
    return channel.backend in LOCAL_BACKENDS
