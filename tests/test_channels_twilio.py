"""The Twilio SMS adapter, with the real twilio SDK talking HTTP to the fake Twilio."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from contact_channels.base import (
    Channel,
    OutboundMessage,
    PermanentError,
    TransientError,
    UncertainError,
)
from contact_channels.credentials import ConnectionInfo
from contact_channels.twilio_sms import TwilioSmsChannel, with_key
from fakes.http import Fault
from fakes.twilio_server import FakeTwilio

PHONE = "+14155550123"
KEY = "3f9a1c0b7e2d4a6f8b1c3e5d7f9a0b2c"
CALLBACK = "https://ops.lender.example/webhooks/twilio/status"
CLIENT_TIMEOUT = 0.5


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connection(fake: FakeTwilio, **extra: Any) -> ConnectionInfo:
    return ConnectionInfo(
        conn_id="twilio_default",
        login=fake.account_sid,
        password=fake.auth_token,
        extra=fake.connection_extra(status_callback_url=CALLBACK, timeout=CLIENT_TIMEOUT, **extra),
    )


@pytest.fixture
def channel(fake: FakeTwilio, sleeps: list[float]) -> Iterator[TwilioSmsChannel]:
    built = TwilioSmsChannel(connection(fake), sleep=sleeps.append)
    yield built
    built.close()


def message(key: str = KEY, to: str = PHONE) -> OutboundMessage:
    return OutboundMessage(
        key=key, channel="sms", destination=to, body_text="Hi, a payment is due on 3 March."
    )


def test_success_sends_the_message_with_a_status_callback_carrying_the_key(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    result = channel.send(message())
    [request] = fake.sends()
    assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert request.form["To"] == PHONE
    assert request.form["Body"] == "Hi, a payment is due on 3 March."
    assert request.form["MessagingServiceSid"] == fake.connection_extra()["messaging_service_sid"]
    callback = urlsplit(request.form["StatusCallback"])
    assert callback._replace(query="").geturl() == CALLBACK
    assert parse_qs(callback.query) == {"key": [KEY]}
    assert result.provider_id is not None and result.provider_id.startswith("SM")
    assert result.provider_status == "queued"
    assert [m["sid"] for m in fake.messages] == [result.provider_id]


def test_from_number_is_used_when_configured(fake: FakeTwilio, sleeps: list[float]) -> None:
    conn = ConnectionInfo(
        conn_id="twilio_default",
        login=fake.account_sid,
        password=fake.auth_token,
        extra={"from_number": "+15005550006", "base_url": fake.base_url, "timeout": "0.5"},
    )
    TwilioSmsChannel(conn, sleep=sleeps.append).send(message())
    [request] = fake.sends()
    assert request.form["From"] == "+15005550006"
    assert "MessagingServiceSid" not in request.form
    assert "StatusCallback" not in request.form


def test_callback_url_keeps_its_own_query() -> None:
    url = with_key("https://hooks.example/twilio?tenant=eu&key=stale", "abc")
    assert parse_qs(urlsplit(url).query) == {"tenant": ["eu"], "key": ["abc"]}


def test_unsubscribed_recipient_is_permanent_opted_out_and_not_retried(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.provider_error(21610))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert raised.value.opted_out and not raised.value.destination_invalid
    assert raised.value.code == "21610"
    assert len(fake.sends()) == 1 and sleeps == []


@pytest.mark.parametrize("code", [21211, 21612, 21614])
def test_invalid_or_unreachable_number_is_permanent_destination_invalid(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float], code: int
) -> None:
    fake.fail_destination(PHONE, Fault.provider_error(code))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert raised.value.destination_invalid and not raised.value.opted_out
    assert len(fake.sends()) == 1 and sleeps == []


def test_an_invalid_number_found_by_the_provider_is_permanent(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    with pytest.raises(PermanentError) as raised:
        channel.send(message(to="0415-not-a-number"))
    assert raised.value.destination_invalid
    assert raised.value.code == "21211"


def test_provider_error_messages_are_scrubbed_of_the_number(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    fake.fail_next(Fault.provider_error(21211))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert PHONE not in str(raised.value)
    assert "+1******0123" in str(raised.value)


def test_other_client_errors_are_permanent_without_contact_point_flags(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    fake.fail_next(Fault.provider_error(21617, message="The concatenated message body is too long"))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert not raised.value.destination_invalid and not raised.value.opted_out
    assert len(fake.sends()) == 1


def test_wrong_credentials_are_permanent(fake: FakeTwilio, sleeps: list[float]) -> None:
    conn = ConnectionInfo(
        conn_id="twilio_default",
        login=fake.account_sid,
        password="wrong-token",
        extra=fake.connection_extra(timeout=CLIENT_TIMEOUT),
    )
    with pytest.raises(PermanentError) as raised:
        TwilioSmsChannel(conn, sleep=sleeps.append).send(message())
    assert raised.value.code == "20003"
    assert fake.messages == []


def test_rate_limit_is_retried_after_waiting_at_least_retry_after(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.rate_limited(retry_after=3))
    result = channel.send(message())
    assert result.provider_id is not None
    assert [r.fault for r in fake.sends()] == ["status:429", None]
    assert len(sleeps) == 1 and sleeps[0] >= 3


@pytest.mark.parametrize("statuses", [(500,), (503,), (500, 503)])
def test_server_errors_are_retried_then_succeed(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float], statuses: tuple[int, ...]
) -> None:
    fake.fail_next(*[Fault.server_error(s) for s in statuses])
    result = channel.send(message())
    assert result.provider_id is not None
    assert len(fake.sends()) == len(statuses) + 1
    assert len(sleeps) == len(statuses)
    assert len(fake.messages) == 1


def test_persistent_server_errors_end_transient_after_bounded_attempts(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float]
) -> None:
    fake.fail_destination(PHONE, Fault.server_error(503))
    with pytest.raises(TransientError) as raised:
        channel.send(message())
    assert not isinstance(raised.value, UncertainError)
    assert len(fake.sends()) == 4 and len(sleeps) == 3
    assert fake.messages == []


def test_timeout_after_the_request_was_received_is_uncertain_and_not_retried(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.timeout(seconds=5))
    started = time.monotonic()
    with pytest.raises(UncertainError):
        channel.send(message())
    assert time.monotonic() - started < 3, "the client timeout was not applied"
    [request] = fake.sends()
    assert request.fault == "timeout" and request.form["To"] == PHONE
    assert sleeps == []


def test_connection_reset_after_sending_is_uncertain_and_not_retried(
    fake: FakeTwilio, channel: TwilioSmsChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.reset())
    with pytest.raises(UncertainError):
        channel.send(message())
    assert [r.fault for r in fake.sends()] == ["reset"]
    assert sleeps == []
    # The pooled connection was dropped; the next send opens a fresh one.
    assert channel.send(message(key="next")).provider_id is not None


def test_slow_reply_within_the_timeout_succeeds(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    fake.fail_next(Fault.slow(0.2))
    assert channel.send(message()).provider_id is not None


def test_connection_refused_is_transient_after_retries(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    conn = ConnectionInfo(
        conn_id="twilio_default",
        login="AC00000000000000000000000000000001",
        password="token",
        extra={
            "messaging_service_sid": "MG1",
            "base_url": f"http://127.0.0.1:{closed_port}",
            "timeout": CLIENT_TIMEOUT,
        },
    )
    with pytest.raises(TransientError) as raised:
        TwilioSmsChannel(conn, sleep=sleeps.append).send(message())
    assert not isinstance(raised.value, UncertainError)
    assert raised.value.code == "net:connect"
    assert len(sleeps) == 3


def test_logs_never_carry_the_number_or_the_body(
    fake: FakeTwilio, channel: TwilioSmsChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(Fault.rate_limited(1), Fault.provider_error(21211))
    with pytest.raises(PermanentError):
        channel.send(message())
    channel.send(message(key="ok"))
    assert "+1******0123" in caplog.text
    assert PHONE not in caplog.text
    assert "payment is due" not in caplog.text


def test_concurrent_sends_from_a_thread_pool(fake: FakeTwilio, channel: TwilioSmsChannel) -> None:
    keys = [f"key-{n:02d}" for n in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: channel.send(message(key=k)), keys))
    assert len({r.provider_id for r in results}) == len(keys)
    sent_keys = {parse_qs(urlsplit(r.form["StatusCallback"]).query)["key"][0] for r in fake.sends()}
    assert sent_keys == set(keys)


def test_lookup_cannot_tell_and_says_so(channel: TwilioSmsChannel) -> None:
    assert channel.lookup(KEY) is None


def test_is_a_channel(channel: TwilioSmsChannel) -> None:
    assert isinstance(channel, Channel)
    assert (channel.kind, channel.backend) == ("sms", "twilio")
    assert "token" not in repr(channel)


def test_a_connection_without_sender_is_rejected(fake: FakeTwilio) -> None:
    conn = ConnectionInfo(
        conn_id="twilio_default", login="AC1", password="t", extra={"base_url": fake.base_url}
    )
    with pytest.raises(ValueError, match="messaging_service_sid"):
        TwilioSmsChannel(conn)


def test_a_message_for_another_kind_is_refused_before_sending(
    fake: FakeTwilio, channel: TwilioSmsChannel
) -> None:
    email = OutboundMessage(key="k", channel="email", destination="a@b.example", body_text="x")
    with pytest.raises(PermanentError):
        channel.send(email)
    assert fake.requests == []
