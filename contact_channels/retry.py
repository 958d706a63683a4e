"""The one place that decides what a provider outcome means and whether to try again.

``OUTCOMES`` classifies provider error codes, HTTP statuses and transport failures;
``call_with_retry`` retries transient failures only, with bounded, jittered backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from contact_channels.base import ChannelError, PermanentError, TransientError, UncertainError
from contact_channels.masking import scrub_text

log = logging.getLogger(__name__)

T = TypeVar("T")


class Outcome(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How to treat one provider outcome, and why (the reason goes into docs/channels.md)."""

    outcome: Outcome
    why: str
    destination_invalid: bool = False
    opted_out: bool = False


_P, _T, _U = Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.UNCERTAIN

# Lookup order: "<provider>:<code>", then "http:<status>", then "http:<class>xx", then "net:*".
# Provider codes win over the HTTP status because Twilio sends 21610 and 21211 both as 400.
OUTCOMES: Mapping[str, Verdict] = {
    "twilio:21610": Verdict(_P, "recipient replied STOP (unsubscribed)", opted_out=True),
    "twilio:21211": Verdict(_P, "invalid 'To' phone number", destination_invalid=True),
    "twilio:21612": Verdict(_P, "'To' number not reachable via SMS", destination_invalid=True),
    "twilio:21614": Verdict(_P, "'To' number is not a mobile number", destination_invalid=True),
    "twilio:20429": Verdict(_T, "too many requests"),
    "http:408": Verdict(_T, "provider timed out reading our request, so did not process it"),
    "http:429": Verdict(_T, "rate limited; honour Retry-After"),
    # A gateway timeout means an upstream may have taken the request and not answered in time:
    # resending could duplicate the message, so it is uncertain, not transient.
    "http:504": Verdict(_U, "gateway timeout: the provider may have accepted it"),
    "http:5xx": Verdict(_T, "provider error reply; both providers document retrying it"),
    "http:4xx": Verdict(_P, "request refused (bad request, auth, payload too large)"),
    "net:connect": Verdict(_T, "connection refused, DNS failure or connect timeout: nothing sent"),
    "net:no_reply": Verdict(_U, "read timeout or reset after the request was written"),
    "net:unknown": Verdict(_U, "unexpected failure while talking to the provider"),
}


def classify(provider: str, *, status: int | None = None, code: int | str | None = None) -> Verdict:
    """Classify an error reply from ``provider`` by its error code and HTTP status."""
    if code is not None and (verdict := OUTCOMES.get(f"{provider}:{code}")) is not None:
        return verdict
    if status is not None:
        if (verdict := OUTCOMES.get(f"http:{status}")) is not None:
            return verdict
        if 500 <= status <= 599:
            return OUTCOMES["http:5xx"]
        if 400 <= status <= 499:
            return OUTCOMES["http:4xx"]
    # A reply that is neither 4xx nor 5xx but still an error (3xx, garbage): we cannot tell
    # whether the provider kept the message.
    return OUTCOMES["net:unknown"]


class RetryableError(TransientError):
    """A transient failure carrying the provider's ``Retry-After`` (seconds), if it sent one."""

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.attempts = 1


def error_for(
    verdict: Verdict,
    message: str,
    *,
    code: str | None = None,
    retry_after: float | None = None,
) -> ChannelError:
    """Build the contract exception for a verdict. ``message`` is scrubbed of PII here."""
    text = scrub_text(f"{message} ({verdict.why})")
    if verdict.outcome is Outcome.PERMANENT:
        return PermanentError(
            text,
            code=code,
            destination_invalid=verdict.destination_invalid,
            opted_out=verdict.opted_out,
        )
    if verdict.outcome is Outcome.TRANSIENT:
        return RetryableError(text, code=code, retry_after=retry_after)
    return UncertainError(text, code=code)


def http_error(
    provider: str,
    *,
    status: int | None,
    code: int | str | None = None,
    detail: str = "",
    retry_after: float | None = None,
) -> ChannelError:
    """The classified exception for an error reply (status and/or provider code)."""
    verdict = classify(provider, status=status, code=code)
    label = f"{provider} refused: HTTP {status}" + (f", code {code}" if code is not None else "")
    if detail:
        label += f": {detail}"
    error_code = str(code) if code is not None else (f"http:{status}" if status else None)
    return error_for(verdict, label, code=error_code, retry_after=retry_after)


def network_error(provider: str, stage: str, exc: BaseException) -> ChannelError:
    """The classified exception for a transport failure; ``stage`` is ``connect`` or ``no_reply``.

    Only the exception type goes into the message: transport errors can quote URLs.
    """
    verdict = OUTCOMES.get(f"net:{stage}", OUTCOMES["net:unknown"])
    return error_for(verdict, f"{provider}: {type(exc).__name__}", code=f"net:{stage}")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds for retrying one send.

    ``max_wait`` caps a single wait. A ``Retry-After`` above it ends the retries (the send fails
    as transient and the dispatcher tries later) rather than resending before the provider asked.
    ``max_total`` bounds the time spent on one message, sleeps included.
    """

    max_attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.5
    max_total: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.initial_wait, self.max_wait, self.jitter, self.max_total) < 0:
            raise ValueError("retry waits must not be negative")


DEFAULT_POLICY = RetryPolicy()


def call_with_retry(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    label: str = "send",
) -> T:
    """Run ``attempt`` until it returns, retrying only ``TransientError``.

    ``attempt`` must already raise the classified exceptions (see ``http_error``). Permanent and
    uncertain errors propagate at once. When retries are spent the last ``TransientError`` is
    raised, with ``attempts`` set on it. ``label`` goes into log lines and must not hold PII.
    """
    backoff = wait_exponential_jitter(
        initial=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
    )

    def wait(state: RetryCallState) -> float:
        delay = float(backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return delay if retry_after is None else max(delay, float(retry_after))

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        if state.upcoming_sleep > policy.max_wait:
            return True
        # idle_for counts the planned sleeps (exact even when ``sleep`` is a test double);
        # seconds_since_start counts real time, including slow attempts.
        if state.idle_for + state.upcoming_sleep > policy.max_total:
            return True
        elapsed = state.seconds_since_start or 0.0
        return elapsed + state.upcoming_sleep > policy.max_total

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: attempt %d failed (%s), retrying in %.2fs",
            label,
            state.attempt_number,
            getattr(exc, "code", None) or type(exc).__name__,
            state.upcoming_sleep,
        )

    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return attempt()

    try:
        return retrying(counted)
    except TransientError as exc:
        exc.attempts = attempts  # type: ignore[attr-defined]
        exc.add_note(f"{label}: gave up after {attempts} attempt(s)")
        raise
