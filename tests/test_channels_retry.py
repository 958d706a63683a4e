"""The shared outcome table and retry helper: transient retried with bounded backoff, never the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contact_channels.base import PermanentError, TransientError, UncertainError
from contact_channels.retry import (
    OUTCOMES,
    Outcome,
    RetryableError,
    RetryPolicy,
    call_with_retry,
    classify,
    http_error,
    parse_retry_after,
)

FAST = RetryPolicy(max_attempts=4, initial_wait=0.5, max_wait=30.0, jitter=0.5, max_total=60.0)


class Flaky:
    """Fails with the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    ("provider", "status", "code", "outcome", "invalid", "opted_out"),
    [
        ("twilio", 400, 21610, Outcome.PERMANENT, False, True),
        ("twilio", 400, 21211, Outcome.PERMANENT, True, False),
        ("twilio", 400, 21612, Outcome.PERMANENT, True, False),
        ("twilio", 400, 21614, Outcome.PERMANENT, True, False),
        ("twilio", 429, 20429, Outcome.TRANSIENT, False, False),
        ("twilio", 400, 21602, Outcome.PERMANENT, False, False),
        ("twilio", 500, 20500, Outcome.TRANSIENT, False, False),
        ("sendgrid", 429, None, Outcome.TRANSIENT, False, False),
        ("sendgrid", 500, None, Outcome.TRANSIENT, False, False),
        ("sendgrid", 502, None, Outcome.TRANSIENT, False, False),
        ("sendgrid", 503, None, Outcome.TRANSIENT, False, False),
        ("sendgrid", 504, None, Outcome.UNCERTAIN, False, False),
        ("sendgrid", 400, None, Outcome.PERMANENT, False, False),
        ("sendgrid", 401, None, Outcome.PERMANENT, False, False),
        ("sendgrid", 403, None, Outcome.PERMANENT, False, False),
        ("sendgrid", 413, None, Outcome.PERMANENT, False, False),
        ("sendgrid", 302, None, Outcome.UNCERTAIN, False, False),
    ],
)
def test_outcome_table_classifies_provider_replies(
    provider: str,
    status: int,
    code: int | None,
    outcome: Outcome,
    invalid: bool,
    opted_out: bool,
) -> None:
    verdict = classify(provider, status=status, code=code)
    assert verdict.outcome is outcome
    assert verdict.destination_invalid is invalid
    assert verdict.opted_out is opted_out


def test_provider_codes_only_apply_to_their_provider() -> None:
    assert classify("sendgrid", status=400, code=21610).opted_out is False


def test_every_table_row_says_why() -> None:
    assert all(verdict.why for verdict in OUTCOMES.values())


def test_http_error_builds_the_contract_exception() -> None:
    opted_out = http_error("twilio", status=400, code=21610, detail="unsubscribed")
    assert isinstance(opted_out, PermanentError) and opted_out.opted_out
    assert opted_out.code == "21610"
    limited = http_error("sendgrid", status=429, retry_after=7)
    assert isinstance(limited, RetryableError) and limited.retry_after == 7
    assert limited.code == "http:429"
    assert isinstance(http_error("sendgrid", status=504), UncertainError)


def test_http_error_scrubs_personal_data_from_the_detail() -> None:
    error = http_error("twilio", status=400, code=21211, detail="The 'To' number +14155550123 bad")
    assert "+14155550123" not in str(error)


def test_success_needs_no_retry() -> None:
    sleeps: list[float] = []
    assert call_with_retry(Flaky(), policy=FAST, sleep=sleeps.append) == "ok"
    assert sleeps == []


def test_permanent_error_is_never_retried() -> None:
    attempt = Flaky(PermanentError("no"))
    sleeps: list[float] = []
    with pytest.raises(PermanentError):
        call_with_retry(attempt, policy=FAST, sleep=sleeps.append)
    assert attempt.calls == 1 and sleeps == []


def test_uncertain_error_is_never_retried() -> None:
    attempt = Flaky(UncertainError("maybe"))
    sleeps: list[float] = []
    with pytest.raises(UncertainError):
        call_with_retry(attempt, policy=FAST, sleep=sleeps.append)
    assert attempt.calls == 1 and sleeps == []


def test_transient_errors_are_retried_with_growing_jittered_waits() -> None:
    attempt = Flaky(RetryableError("a"), RetryableError("b"), RetryableError("c"))
    sleeps: list[float] = []
    assert call_with_retry(attempt, policy=FAST, sleep=sleeps.append) == "ok"
    assert attempt.calls == 4
    # initial * 2**n plus up to `jitter` seconds of jitter.
    for n, wait in enumerate(sleeps):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.5


def test_attempts_are_bounded_and_the_last_transient_error_is_raised() -> None:
    attempt = Flaky(*[RetryableError(f"fail {n}") for n in range(10)])
    sleeps: list[float] = []
    with pytest.raises(TransientError, match="fail 3") as raised:
        call_with_retry(attempt, policy=FAST, sleep=sleeps.append, label="sms key abc")
    assert attempt.calls == 4 and len(sleeps) == 3
    assert raised.value.attempts == 4  # type: ignore[attr-defined]
    assert "gave up after 4 attempt(s)" in raised.value.__notes__[0]


def test_retry_after_is_waited_at_least() -> None:
    attempt = Flaky(RetryableError("slow down", retry_after=7.0))
    sleeps: list[float] = []
    call_with_retry(attempt, policy=FAST, sleep=sleeps.append)
    assert sleeps == [7.0]


def test_backoff_wins_over_a_shorter_retry_after() -> None:
    attempt = Flaky(RetryableError("a"), RetryableError("b", retry_after=0.1))
    sleeps: list[float] = []
    call_with_retry(attempt, policy=FAST, sleep=sleeps.append)
    assert sleeps[1] >= 1.0


def test_retry_after_beyond_the_cap_gives_up_instead_of_resending_early() -> None:
    attempt = Flaky(RetryableError("come back in an hour", retry_after=3600))
    sleeps: list[float] = []
    with pytest.raises(TransientError):
        call_with_retry(attempt, policy=FAST, sleep=sleeps.append)
    assert attempt.calls == 1 and sleeps == []


def test_total_time_is_bounded() -> None:
    policy = RetryPolicy(
        max_attempts=10, initial_wait=1.0, max_wait=30.0, jitter=0.0, max_total=4.0
    )
    attempt = Flaky(*[RetryableError("x") for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(TransientError):
        call_with_retry(attempt, policy=policy, sleep=sleeps.append)
    # 1 + 2 fits in 4 s; adding the next 4 s wait would not.
    assert sleeps == [1.0, 2.0]
    assert attempt.calls == 3


def test_a_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_wait=-1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 02 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 02 Mar 2026 11:00:00 GMT", now=now) == 0.0


def test_the_docs_table_matches_the_outcome_table() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "channels.md").read_text()
    for key, verdict in OUTCOMES.items():
        assert f"| `{key}` | {verdict.outcome} |" in docs, f"docs/channels.md lacks {key}"
