"""The outbox records exactly what would be sent, once per key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contact_channels.base import Channel, OutboundMessage, PermanentError, SendResult
from contact_channels.outbox import (
    OutboxChannel,
    count_outbox,
    count_outbox_by_channel,
    dispose_engine,
    get_engine,
    list_outbox,
)

FIXED = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def outbox_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'nested' / 'outbox.db'}"
    yield url
    dispose_engine(url)


def sms(
    key: str, destination: str = "+14155550123", body: str = "Your payment is due"
) -> OutboundMessage:
    return OutboundMessage(
        key=key, channel="sms", destination=destination, body_text=body, tags={"stage": "early"}
    )


def test_records_every_field_of_the_message(outbox_url: str) -> None:
    channel = OutboxChannel("email", outbox_url, clock=lambda: FIXED)
    message = OutboundMessage(
        key="a1b2c3d4e5f6a7b8c9d0",
        channel="email",
        destination="jane.doe@example.com",
        subject="About your account",
        body_text="Please call us",
        body_html="<p>Please call us</p>",
        tags={"stage": "early", "template": "reminder_1", "language": "en"},
    )
    result = channel.send(message)
    assert result == SendResult(provider_id="outbox-a1b2c3d4e5f6a7b8", provider_status="recorded")
    [record] = list_outbox(outbox_url)
    assert record.key == message.key
    assert record.channel == "email"
    assert record.destination == "jane.doe@example.com"
    assert record.subject == "About your account"
    assert record.body_text == "Please call us"
    assert record.body_html == "<p>Please call us</p>"
    assert record.tags == {"stage": "early", "template": "reminder_1", "language": "en"}
    assert record.provider_id == result.provider_id
    assert record.recorded_at == FIXED


def test_sending_the_same_key_twice_records_one_message_and_returns_the_same_result(
    outbox_url: str,
) -> None:
    channel = OutboxChannel("sms", outbox_url)
    first = channel.send(sms("k-1", body="first"))
    second = channel.send(sms("k-1", body="second"))
    assert first == second
    records = list_outbox(outbox_url)
    assert len(records) == 1
    assert records[0].body_text == "first"


def test_concurrent_sends_of_one_key_record_it_once(outbox_url: str) -> None:
    channel = OutboxChannel("sms", outbox_url)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: channel.send(sms("same-key")), range(32)))
    assert len(set(results)) == 1
    assert count_outbox(outbox_url) == 1


def test_lookup_returns_the_stored_result_or_none(outbox_url: str) -> None:
    channel = OutboxChannel("sms", outbox_url)
    sent = channel.send(sms("known"))
    assert channel.lookup("known") == sent
    assert channel.lookup("unknown") is None


def test_a_message_for_another_kind_is_refused(outbox_url: str) -> None:
    channel = OutboxChannel("letter", outbox_url)
    with pytest.raises(PermanentError):
        channel.send(sms("k"))
    assert count_outbox(outbox_url) == 0


def test_unknown_kind_is_rejected(outbox_url: str) -> None:
    with pytest.raises(ValueError, match="unknown channel kind"):
        OutboxChannel("pigeon", outbox_url)


def test_counts_and_lists_by_channel(outbox_url: str) -> None:
    sms_channel = OutboxChannel("sms", outbox_url)
    letters = OutboxChannel("letter", outbox_url)
    for n in range(3):
        sms_channel.send(sms(f"s{n}"))
    letters.send(
        OutboundMessage(key="l0", channel="letter", destination="1 Main St", body_text="x")
    )
    assert count_outbox(outbox_url) == 4
    assert count_outbox(outbox_url, channel="sms") == 3
    assert sms_channel.count() == 3
    assert [r.key for r in letters.records()] == ["l0"]
    assert count_outbox_by_channel(outbox_url) == {"sms": 3, "letter": 1}
    assert len(list_outbox(outbox_url, limit=2)) == 2


def test_the_outbox_is_a_channel(outbox_url: str) -> None:
    channel = OutboxChannel("call", outbox_url)
    assert isinstance(channel, Channel)
    assert (channel.kind, channel.backend) == ("call", "outbox")
    channel.close()


def test_creates_its_directory_and_uses_wal(outbox_url: str, tmp_path: Path) -> None:
    OutboxChannel("sms", outbox_url).send(sms("k"))
    assert (tmp_path / "nested" / "outbox.db").exists()
    with get_engine(outbox_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_channels_on_one_url_share_one_engine(outbox_url: str) -> None:
    assert OutboxChannel("sms", outbox_url)._engine is OutboxChannel("email", outbox_url)._engine


def test_a_batch_is_recorded_at_once_and_only_the_bad_message_is_refused(
    outbox_url: str,
) -> None:
    channel = OutboxChannel("sms", outbox_url, clock=lambda: FIXED)
    channel.send(sms("b-2", body="already there"))
    wrong = OutboundMessage(key="b-x", channel="email", destination="a@example.com",
                            body_text="x")  # fmt: skip
    results = channel.send_batch([sms("b-1"), sms("b-2", body="again"), wrong, sms("b-3")])
    assert [type(r) for r in results] == [SendResult, SendResult, PermanentError, SendResult]
    assert isinstance(results[2], PermanentError) and results[2].code == "wrong_channel"
    assert results[1] == channel.lookup("b-2")
    records = {r.key: r for r in list_outbox(outbox_url)}
    assert sorted(records) == ["b-1", "b-2", "b-3"]
    assert records["b-2"].body_text == "already there"  # a repeat keeps the first
    assert channel.max_batch > 1  # the dispatcher hands it a group's sends at once


def test_a_batch_that_fails_records_none_of_it(outbox_url: str, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:  # fmt: skip
    channel = OutboxChannel("sms", outbox_url)
    calls = {"n": 0}
    real_execute = __import__("sqlalchemy").engine.Connection.execute

    def failing_second(self: object, statement: object, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database gone")
        return real_execute(self, statement, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("sqlalchemy.engine.Connection.execute", failing_second)
    with pytest.raises(RuntimeError):
        channel.send_batch([sms("f-1"), sms("f-2")])
    monkeypatch.undo()
    assert count_outbox(outbox_url) == 0  # one transaction: the first row went back too


def test_records_thousands_of_messages_quickly(outbox_url: str) -> None:
    channel = OutboxChannel("sms", outbox_url)
    started = time.perf_counter()
    for n in range(3000):
        channel.send(sms(f"bulk-{n:05d}"))
    elapsed = time.perf_counter() - started
    assert count_outbox(outbox_url) == 3000
    # Generous bound: a per-message engine or fsync would take far longer.
    assert elapsed < 15, f"3000 messages took {elapsed:.1f}s"


@pytest.mark.postgres
def test_idempotency_on_postgresql(postgres_url: str) -> None:
    channel = OutboxChannel("sms", postgres_url)
    key = f"pg-{uuid.uuid4().hex}"
    try:
        first = channel.send(sms(key))
        assert channel.send(sms(key)) == first
        assert channel.lookup(key) == first
        assert sum(1 for r in list_outbox(postgres_url, channel="sms") if r.key == key) == 1
    finally:
        dispose_engine(postgres_url)


def test_repr_hides_the_database_password() -> None:
    # Built without connecting: only the repr is under test.
    channel = object.__new__(OutboxChannel)
    channel.kind = "sms"
    channel.url = "postgresql+psycopg://user:secret@localhost/outbox"
    assert "secret" not in repr(channel)
