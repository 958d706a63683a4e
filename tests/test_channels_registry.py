"""Choosing a backend per channel kind, with credentials from Airflow Connections only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from contact_channels.base import CHANNEL_KINDS, Channel, OutboundMessage
from contact_channels.credentials import ConnectionInfo, get_connection
from contact_channels.outbox import OutboxChannel, count_outbox, dispose_engine
from contact_channels.registry import build_channel
from contact_channels.sendgrid_email import SendGridEmailChannel
from contact_channels.twilio_sms import TwilioSmsChannel
from fakes.sendgrid_server import FakeSendGrid
from fakes.twilio_server import FakeTwilio


@pytest.fixture
def outbox_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    yield url
    dispose_engine(url)


@pytest.fixture(autouse=True)
def no_provider_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_TWILIO_DEFAULT", "AIRFLOW_CONN_SENDGRID_DEFAULT"):
        monkeypatch.delenv(name, raising=False)


def sleep_nowhere(_seconds: float) -> None:
    pass


def test_without_connections_sms_and_email_use_the_outbox(outbox_url: str) -> None:
    sms = build_channel(
        "sms", {"backend": "auto", "conn_id": "twilio_default"}, outbox_url=outbox_url
    )
    email = build_channel("email", None, outbox_url=outbox_url)
    assert isinstance(sms, OutboxChannel) and sms.kind == "sms"
    assert isinstance(email, OutboxChannel) and email.kind == "email"
    sms.send(OutboundMessage(key="k1", channel="sms", destination="+14155550123", body_text="x"))
    assert count_outbox(outbox_url, channel="sms") == 1


@pytest.mark.parametrize("kind", ["call", "letter", "agency", "legal"])
def test_other_kinds_use_the_outbox_even_with_provider_connections(
    kind: str, outbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json())
        channel = build_channel(kind, {"backend": "auto"}, outbox_url=outbox_url)
    assert isinstance(channel, OutboxChannel)
    assert channel.kind == kind


def test_every_kind_builds_a_channel(outbox_url: str) -> None:
    for kind in CHANNEL_KINDS:
        channel = build_channel(kind, {}, outbox_url=outbox_url)
        assert isinstance(channel, Channel) and channel.kind == kind


def test_twilio_is_used_when_its_connection_is_set(
    outbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json(timeout=0.5))
        channel = build_channel(
            "sms", {"backend": "auto"}, outbox_url=outbox_url, sleep=sleep_nowhere
        )
        assert isinstance(channel, TwilioSmsChannel)
        result = channel.send(
            OutboundMessage(key="k1", channel="sms", destination="+14155550123", body_text="x")
        )
        channel.close()
        assert [m["sid"] for m in fake.messages] == [result.provider_id]
    assert count_outbox(outbox_url) == 0


def test_sendgrid_is_used_when_its_connection_is_set(
    outbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeSendGrid() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", fake.airflow_conn_json(timeout=0.5))
        channel = build_channel("email", {"backend": "auto"}, outbox_url=outbox_url)
        assert isinstance(channel, SendGridEmailChannel)
        channel.send(
            OutboundMessage(
                key="k1", channel="email", destination="a@b.example", subject="s", body_text="x"
            )
        )
        assert fake.messages[0]["custom_args"]["ledger_key"] == "k1"


def test_a_connection_in_uri_form_works(outbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeTwilio() as fake:
        uri = (
            f"twilio://{fake.account_sid}:{quote(fake.auth_token, safe='')}@"
            f"?messaging_service_sid=MG1&timeout=0.5&base_url={quote(fake.base_url, safe='')}"
        )
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", uri)
        channel = build_channel("sms", None, outbox_url=outbox_url, sleep=sleep_nowhere)
        assert isinstance(channel, TwilioSmsChannel)
        channel.send(
            OutboundMessage(key="k", channel="sms", destination="+14155550123", body_text="x")
        )
        assert len(fake.messages) == 1


def test_a_custom_conn_id_is_honoured(outbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSendGrid() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_EU", fake.airflow_conn_json())
        channel = build_channel(
            "email", {"backend": "sendgrid", "conn_id": "sendgrid_eu"}, outbox_url=outbox_url
        )
    assert isinstance(channel, SendGridEmailChannel)
    assert channel.conn_id == "sendgrid_eu"


def test_outbox_can_be_forced_even_with_a_connection(
    outbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json())
        channel = build_channel("sms", {"backend": "outbox"}, outbox_url=outbox_url)
    assert isinstance(channel, OutboxChannel)


def test_a_forced_provider_without_its_connection_is_an_error(outbox_url: str) -> None:
    with pytest.raises(ValueError, match="AIRFLOW_CONN_TWILIO_DEFAULT"):
        build_channel("sms", {"backend": "twilio"}, outbox_url=outbox_url)


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("fax", {}, "unknown channel kind"),
        ("sms", {"backend": "carrier-pigeon"}, "unknown backend"),
        ("sms", {"backend": "sendgrid"}, "cannot send 'sms'"),
        ("letter", {"backend": "twilio"}, "cannot send 'letter'"),
    ],
)
def test_bad_settings_are_clear_errors(
    kind: str, settings: dict[str, str], message: str, outbox_url: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_channel(kind, settings, outbox_url=outbox_url)


def test_get_connection_returns_none_when_undefined() -> None:
    assert get_connection("no_such_connection_anywhere") is None


def test_get_connection_reads_the_json_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SOME_PROVIDER",
        json.dumps(
            {
                "conn_type": "http",
                "login": "user",
                "password": "s3cret-value",
                "host": "api.example",
                "port": 8443,
                "schema": "v2",
                "extra": {"timeout": 2.5, "sandbox_mode": True},
            }
        ),
    )
    info = get_connection("some_provider")
    assert info is not None
    assert (info.login, info.password, info.host, info.port, info.schema) == (
        "user",
        "s3cret-value",
        "api.example",
        8443,
        "v2",
    )
    assert info.extra_float("timeout") == 2.5
    assert info.extra_bool("sandbox_mode") is True
    assert "s3cret-value" not in repr(info)


def test_typed_extras_from_strings() -> None:
    info = ConnectionInfo(
        conn_id="c", extra={"timeout": "0.5", "group": "12", "flag": "false", "bad": "maybe"}
    )
    assert info.extra_float("timeout") == 0.5
    assert info.extra_int("group") == 12
    assert info.extra_bool("flag") is False
    assert info.extra_bool("missing", True) is True
    assert info.extra_str("missing", "d") == "d"
    with pytest.raises(ValueError, match="bad"):
        info.extra_bool("bad")
    with pytest.raises(ValueError, match="group"):
        ConnectionInfo(conn_id="c", extra={"group": "x"}).extra_int("group")


def test_inside_a_task_the_task_sdk_supplies_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import airflow.sdk.execution_time.task_runner as task_runner
    from airflow.sdk import BaseHook

    asked: list[str] = []
    original = BaseHook.get_connection.__func__  # type: ignore[attr-defined]

    def spy(cls: type[BaseHook], conn_id: str) -> object:
        asked.append(conn_id)
        return original(cls, conn_id)

    # What the task runner sets while a task runs; the env-var backend answers before it is used.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(spy))
    monkeypatch.setenv("AIRFLOW_CONN_IN_TASK", json.dumps({"conn_type": "http", "login": "AC9"}))
    info = get_connection("in_task")
    assert asked == ["in_task"]
    assert info is not None and info.login == "AC9"
