"""The SendGrid email adapter, with the real sendgrid SDK talking HTTP to the fake SendGrid."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from contact_channels.base import (
    Channel,
    OutboundMessage,
    PermanentError,
    TransientError,
    UncertainError,
)
from contact_channels.credentials import ConnectionInfo
from contact_channels.sendgrid_email import SendGridEmailChannel
from fakes.http import Fault
from fakes.sendgrid_server import FakeSendGrid

EMAIL = "jane.doe@example.com"
KEY = "9c1e5a7b3d2f4e6a8c0b1d3f5e7a9c2b"
CLIENT_TIMEOUT = 0.5


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connection(fake: FakeSendGrid, **extra: Any) -> ConnectionInfo:
    return ConnectionInfo(
        conn_id="sendgrid_default",
        password=fake.api_key,
        extra=fake.connection_extra(timeout=CLIENT_TIMEOUT, **extra),
    )


@pytest.fixture
def channel(fake: FakeSendGrid, sleeps: list[float]) -> SendGridEmailChannel:
    return SendGridEmailChannel(connection(fake), sleep=sleeps.append)


def message(key: str = KEY, **changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "key": key,
        "channel": "email",
        "destination": EMAIL,
        "subject": "About your account ending 4321",
        "body_text": "Your payment of $120.00 is overdue.",
        "body_html": "<p>Your payment of $120.00 is overdue.</p>",
        "tags": {"stage": "early", "template": "reminder_1"},
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def test_success_sends_text_and_html_with_the_key_and_unsubscribe_group(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    result = channel.send(message())
    [request] = fake.sends()
    assert request.headers["Authorization"] == f"Bearer {fake.api_key}"
    mail = request.json
    assert mail["personalizations"] == [{"to": [{"email": EMAIL}]}]
    assert mail["from"] == {"email": "collections@lender.example", "name": "Lender Collections"}
    assert mail["subject"] == "About your account ending 4321"
    assert mail["content"] == [
        {"type": "text/plain", "value": "Your payment of $120.00 is overdue."},
        {"type": "text/html", "value": "<p>Your payment of $120.00 is overdue.</p>"},
    ]
    assert mail["custom_args"]["ledger_key"] == KEY
    assert mail["custom_args"]["stage"] == "early"
    assert mail["asm"] == {"group_id": 4242}
    assert mail["mail_settings"] == {"sandbox_mode": {"enable": False}}
    assert result.provider_id == fake.messages[0]["_message_id"]
    assert result.provider_status == "accepted"


def test_a_tag_cannot_overwrite_the_ledger_key(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    channel.send(message(tags={"ledger_key": "forged"}))
    assert fake.sends()[0].json["custom_args"]["ledger_key"] == KEY


def test_sandbox_mode_from_a_string_extra_is_sent_as_a_boolean(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    channel = SendGridEmailChannel(connection(fake, sandbox_mode="true"), sleep=sleeps.append)
    result = channel.send(message())
    assert fake.sends()[0].json["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert result.provider_status == "sandbox"


def test_the_http_timeout_is_set_on_the_sdk_client(channel: SendGridEmailChannel) -> None:
    assert channel._client.client.timeout == CLIENT_TIMEOUT


def test_rate_limit_is_retried_after_waiting_at_least_retry_after(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.rate_limited(retry_after=4))
    assert channel.send(message()).provider_id is not None
    assert [r.fault for r in fake.sends()] == ["status:429", None]
    assert len(sleeps) == 1 and sleeps[0] >= 4


@pytest.mark.parametrize("statuses", [(500,), (502,), (503,), (500, 503, 500)])
def test_server_errors_are_retried_then_succeed(
    fake: FakeSendGrid,
    channel: SendGridEmailChannel,
    sleeps: list[float],
    statuses: tuple[int, ...],
) -> None:
    fake.fail_next(*[Fault.server_error(s) for s in statuses])
    assert channel.send(message()).provider_id is not None
    assert len(fake.sends()) == len(statuses) + 1
    assert len(sleeps) == len(statuses)
    assert len(fake.messages) == 1


def test_persistent_rate_limiting_ends_transient(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_destination(EMAIL, Fault.rate_limited(retry_after=2))
    with pytest.raises(TransientError) as raised:
        channel.send(message())
    assert not isinstance(raised.value, UncertainError)
    assert len(fake.sends()) == 4
    assert all(wait >= 2 for wait in sleeps)


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_client_errors_are_permanent_and_not_retried(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float], status: int
) -> None:
    fake.fail_next(Fault.http(status))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert raised.value.code == f"http:{status}"
    assert len(fake.sends()) == 1 and sleeps == []


def test_a_wrong_api_key_is_permanent(fake: FakeSendGrid, sleeps: list[float]) -> None:
    conn = ConnectionInfo(
        conn_id="sendgrid_default",
        password="SG.wrong",
        extra=fake.connection_extra(timeout=CLIENT_TIMEOUT),
    )
    with pytest.raises(PermanentError):
        SendGridEmailChannel(conn, sleep=sleeps.append).send(message())
    assert fake.messages == []


def test_an_error_message_quoting_the_address_is_scrubbed(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    fake.fail_next(Fault.http(400, message=f"{EMAIL} does not contain a valid address."))
    with pytest.raises(PermanentError) as raised:
        channel.send(message())
    assert EMAIL not in str(raised.value)


def test_timeout_after_the_request_was_received_is_uncertain_and_not_retried(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.timeout(seconds=5))
    started = time.monotonic()
    with pytest.raises(UncertainError):
        channel.send(message())
    assert time.monotonic() - started < 3, "the client timeout was not applied"
    [request] = fake.sends()
    assert request.fault == "timeout"
    assert request.json["custom_args"]["ledger_key"] == KEY
    assert sleeps == []


def test_connection_reset_after_sending_is_uncertain_and_not_retried(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.reset())
    with pytest.raises(UncertainError):
        channel.send(message())
    assert [r.fault for r in fake.sends()] == ["reset"]
    assert sleeps == []


def test_gateway_timeout_is_uncertain(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.server_error(504))
    with pytest.raises(UncertainError):
        channel.send(message())
    assert len(fake.sends()) == 1 and sleeps == []


def test_slow_reply_within_the_timeout_succeeds(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    fake.fail_next(Fault.slow(0.2))
    assert channel.send(message()).provider_id is not None


def test_connection_refused_is_transient_after_retries(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    conn = connection(fake, base_url=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransientError) as raised:
        SendGridEmailChannel(conn, sleep=sleeps.append).send(message())
    assert not isinstance(raised.value, UncertainError)
    assert raised.value.code == "net:connect"
    assert len(sleeps) == 3


def test_an_email_without_subject_fails_before_any_request(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    with pytest.raises(PermanentError):
        channel.send(message(subject=None))
    assert fake.requests == []


def test_text_only_email_is_sent(fake: FakeSendGrid, channel: SendGridEmailChannel) -> None:
    channel.send(message(body_html=None))
    assert [c["type"] for c in fake.sends()[0].json["content"]] == ["text/plain"]


def test_logs_never_carry_the_address_the_body_or_the_key(
    fake: FakeSendGrid, channel: SendGridEmailChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(Fault.server_error(500))
    channel.send(message())
    assert "j***@e***.com" in caplog.text
    assert EMAIL not in caplog.text
    assert "overdue" not in caplog.text
    assert fake.api_key not in caplog.text


def test_the_unsubscribe_group_is_required() -> None:
    conn = ConnectionInfo(
        conn_id="sendgrid_default", password="SG.x", extra={"from_email": "a@lender.example"}
    )
    with pytest.raises(ValueError, match="asm_group_id"):
        SendGridEmailChannel(conn)


def test_is_a_channel_and_cannot_look_up(channel: SendGridEmailChannel) -> None:
    assert isinstance(channel, Channel)
    assert (channel.kind, channel.backend) == ("email", "sendgrid")
    assert channel.lookup(KEY) is None


# --- Batches: one request, a personalization per email ----------------------------------------


def batch(n: int, **changes: Any) -> list[OutboundMessage]:
    return [
        message(key=f"{i:032x}", destination=f"person{i}@example.com",
                subject=f"About your account ending {1000 + i}",
                body_text=f"Your payment of ${i}.00 is overdue. Unsubscribe: <%asm_group_unsubscribe_raw_url%>",
                body_html=f"<p>Your payment of ${i}.00 is overdue.</p>", **changes)
        for i in range(n)
    ]


def test_a_batch_is_one_request_with_each_email_in_its_own_personalization(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    messages = batch(5)
    outcomes = channel.send_batch(messages)
    [request] = fake.sends()
    mail = request.json
    assert mail["asm"] == {"group_id": 4242}
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]
    for m, p in zip(messages, mail["personalizations"], strict=True):
        assert p["to"] == [{"email": m.destination}]
        assert p["subject"] == m.subject
        assert p["custom_args"]["ledger_key"] == m.key
        # What the recipient reads: the shared content with this personalization's bodies.
        text_value = mail["content"][0]["value"]
        html_value = mail["content"][1]["value"]
        for tag, value in p["substitutions"].items():
            text_value = text_value.replace(tag, value)
            html_value = html_value.replace(tag, value)
        assert text_value == m.body_text and html_value == m.body_html
    assert fake.accepted_keys() == [m.key for m in messages]
    assert all(o.provider_id == fake.messages[0]["_message_id"] for o in outcomes)  # type: ignore[union-attr]


def test_the_unsubscribe_tag_stays_in_the_shared_content_and_shapes_batch_apart(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    tagged = batch(2)
    untagged = [dataclasses.replace(m, key=f"u{i:031x}", body_text="No link here.")
                for i, m in enumerate(batch(2))]
    channel.send_batch([tagged[0], untagged[0], tagged[1], untagged[1]])
    mails = [r.json for r in fake.sends()]
    assert sorted(len(m["personalizations"]) for m in mails) == [2, 2]
    [with_tag] = [m for m in mails if "<%asm" in m["content"][0]["value"]]
    # SendGrid fills the tag in the content with the group's link; no substitution carries it.
    assert "<%asm_group_unsubscribe_raw_url%>" in with_tag["content"][0]["value"]
    assert all("<%asm" not in v for p in with_tag["personalizations"]
               for v in p["substitutions"].values())
    assert sorted(fake.accepted_keys()) == sorted(m.key for m in tagged + untagged)


def test_a_batch_larger_than_batch_size_is_split(fake: FakeSendGrid, sleeps: list[float]) -> None:
    channel = SendGridEmailChannel(connection(fake, batch_size=3), sleep=sleeps.append)
    assert channel.max_batch == 3
    outcomes = channel.send_batch(batch(7))
    assert [len(r.json["personalizations"]) for r in fake.sends()] == [3, 3, 1]
    assert len(fake.accepted_keys()) == 7 == len(set(fake.accepted_keys()))
    assert all(not isinstance(o, Exception) for o in outcomes)


@pytest.mark.parametrize("size", [0, 1001, "many"])
def test_a_batch_size_out_of_range_is_refused(fake: FakeSendGrid, size: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SendGridEmailChannel(connection(fake, batch_size=size))


def test_a_bad_request_for_the_batch_sends_each_alone_so_only_the_bad_one_fails(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    messages = batch(4)
    messages[2] = dataclasses.replace(messages[2], destination="not-an-address")
    outcomes = channel.send_batch(messages)
    assert isinstance(outcomes[2], PermanentError)
    assert [isinstance(o, Exception) for o in outcomes] == [False, False, True, False]
    assert sorted(fake.accepted_keys()) == sorted(m.key for i, m in enumerate(messages) if i != 2)
    # One refused batch, then at most one request per email, none retried.
    shapes = [len(r.json["personalizations"]) for r in fake.sends()]
    assert shapes[0] == 4 and shapes[1:] in ([1, 1, 1], [1, 1, 1, 1])


def test_a_server_error_on_a_batch_is_retried_for_the_whole_batch(
    fake: FakeSendGrid, channel: SendGridEmailChannel, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.server_error(503))
    outcomes = channel.send_batch(batch(3))
    assert len(fake.sends()) == 2 and len(sleeps) == 1
    assert len(fake.accepted_keys()) == 3
    assert all(not isinstance(o, Exception) for o in outcomes)


def test_a_timeout_on_a_batch_leaves_every_email_of_it_uncertain(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    fake.fail_next(Fault.timeout(2.0))
    outcomes = channel.send_batch(batch(3))
    assert all(isinstance(o, UncertainError) for o in outcomes)
    assert len(fake.sends()) == 1  # never resent


def test_a_refused_email_in_a_batch_fails_alone_before_any_request(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    messages = batch(3)
    messages[1] = message(key="nosubject" + "0" * 23, subject=None)
    outcomes = channel.send_batch(messages)
    assert isinstance(outcomes[1], PermanentError) and outcomes[1].code == "no_subject"
    [request] = fake.sends()
    assert len(request.json["personalizations"]) == 2


def test_an_email_too_large_for_substitutions_goes_alone(
    fake: FakeSendGrid, channel: SendGridEmailChannel
) -> None:
    messages = batch(3)
    messages[0] = message(key="big" + "0" * 29, body_text="x" * 12_000)
    channel.send_batch(messages)
    shapes = sorted(len(r.json["personalizations"]) for r in fake.sends())
    assert shapes == [1, 2]
    [alone] = [r.json for r in fake.sends() if len(r.json["personalizations"]) == 1]
    assert alone["content"][0]["value"] == "x" * 12_000
