"""The fake Twilio and SendGrid servers themselves, exercised with plain HTTP (no SDK)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from fakes.http import Fault
from fakes.sendgrid_server import FakeSendGrid
from fakes.twilio_server import FakeTwilio


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


def post_sms(
    fake: FakeTwilio, to: str = "+14155550123", *, token: str | None = None, timeout: float = 2.0
) -> requests.Response:
    return requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": to, "Body": "hello", "MessagingServiceSid": "MG1"},
        auth=(fake.account_sid, token or fake.auth_token),
        timeout=timeout,
    )


def post_mail(
    fake: FakeSendGrid, body: dict[str, Any] | None = None, *, key: str | None = None
) -> requests.Response:
    mail = body or {
        "personalizations": [{"to": [{"email": "a@b.example"}]}],
        "from": {"email": "c@lender.example"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
    }
    return requests.post(
        f"{fake.base_url}/v3/mail/send",
        json=mail,
        headers={"Authorization": f"Bearer {key or fake.api_key}"},
        timeout=2,
    )


def test_listens_on_loopback_with_an_ephemeral_port() -> None:
    with FakeTwilio() as one, FakeTwilio() as two:
        assert one.base_url.startswith("http://127.0.0.1:")
        assert one.port != two.port
    with pytest.raises(RuntimeError):
        _ = one.base_url


def test_twilio_creates_a_queued_message_resource(twilio: FakeTwilio) -> None:
    reply = post_sms(twilio)
    assert reply.status_code == 201
    resource = reply.json()
    assert resource["sid"].startswith("SM") and len(resource["sid"]) == 34
    assert resource["status"] == "queued"
    assert resource["to"] == "+14155550123"
    assert resource["account_sid"] == twilio.account_sid
    fetched = requests.get(
        f"{twilio.base_url}{resource['uri']}",
        auth=(twilio.account_sid, twilio.auth_token),
        timeout=2,
    )
    assert fetched.json() == resource


def test_twilio_checks_basic_auth(twilio: FakeTwilio) -> None:
    reply = post_sms(twilio, token="wrong")
    assert reply.status_code == 401
    assert reply.json()["code"] == 20003
    assert twilio.messages == []
    assert len(twilio.requests) == 1


def test_twilio_validates_the_number(twilio: FakeTwilio) -> None:
    reply = post_sms(twilio, to="12")
    assert reply.status_code == 400
    assert reply.json()["code"] == 21211


def test_twilio_error_body_has_code_message_and_status(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.provider_error(21610))
    error = post_sms(twilio).json()
    assert error["code"] == 21610
    assert error["status"] == 400
    assert "unsubscribed" in error["message"]
    assert error["more_info"].endswith("/21610")


def test_rate_limit_carries_retry_after(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.rate_limited(retry_after=2.5))
    reply = post_sms(twilio)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "3"
    assert reply.json()["code"] == 20429


def test_twilio_counts_its_own_rate_and_the_message_in_segments() -> None:
    # issue 13 item 7: like Twilio, the fake's max_rate is in segments, so a limiter that
    # charged a message one token whatever its length meets 429s in the bench.
    chinese = "您的账户已逾期，请尽快还款。回复TD退订" * 7  # 3 UCS-2 segments
    with FakeTwilio(max_rate=4) as fake:
        data = {"To": "+14155550123", "Body": chinese, "MessagingServiceSid": "MG1"}
        url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
        auth = (fake.account_sid, fake.auth_token)
        first = requests.post(url, data=data, auth=auth, timeout=2)
        second = requests.post(url, data=data, auth=auth, timeout=2)  # 3 more: 1 is left
        assert (first.status_code, second.status_code) == (201, 429)
        assert first.json()["num_segments"] == "3"
        assert fake.stats()["accepted_units_per_second"] == [3]


def test_queued_faults_apply_in_order_one_per_request(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.server_error(500), Fault.server_error(503))
    assert [post_sms(twilio).status_code for _ in range(3)] == [500, 503, 201]
    assert [r.fault for r in twilio.requests] == ["status:500", "status:503", None]


def test_destination_faults_win_and_can_be_limited(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.server_error(500))
    twilio.fail_destination("+14155550000", Fault.provider_error(21211), times=2)
    codes = [post_sms(twilio, to="+14155550000").status_code for _ in range(3)]
    assert codes == [400, 400, 500]
    assert post_sms(twilio, to="+14155550000").status_code == 201


def test_reset_closes_without_reply_but_records_the_request(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.reset())
    with pytest.raises(requests.ConnectionError):
        post_sms(twilio)
    [request] = twilio.requests
    assert request.fault == "reset" and request.form["To"] == "+14155550123"
    assert twilio.messages == []


def test_timeout_fault_records_the_request_and_accepts_it_late(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.timeout(seconds=0.6))
    with pytest.raises(requests.ReadTimeout):
        post_sms(twilio, timeout=0.2)
    # Under load the server's thread may read the request after the client gave up: wait for it.
    deadline = time.monotonic() + 3
    while not twilio.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.fault for r in twilio.requests] == ["timeout"]
    while not twilio.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    # The provider processed it even though nobody heard the answer: that is why it is uncertain.
    assert len(twilio.messages) == 1


def test_stop_does_not_wait_for_a_sleeping_fault() -> None:
    fake = FakeTwilio().start()
    fake.fail_next(Fault.timeout(seconds=30))
    with pytest.raises(requests.ReadTimeout):
        post_sms(fake, timeout=0.3)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 3


def test_slow_fault_delays_then_succeeds(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.slow(0.3))
    started = time.monotonic()
    assert post_sms(twilio).status_code == 201
    assert time.monotonic() - started >= 0.3


def test_concurrent_requests_are_all_recorded(twilio: FakeTwilio) -> None:
    numbers = [f"+1415555{n:04d}" for n in range(60)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda to: post_sms(twilio, to=to).status_code, numbers))
    assert codes == [201] * 60
    assert sorted(str(r.destination) for r in twilio.requests) == sorted(numbers)
    assert len({m["sid"] for m in twilio.messages}) == 60


def test_reset_forgets_everything(twilio: FakeTwilio) -> None:
    twilio.fail_next(Fault.server_error())
    post_sms(twilio)
    post_sms(twilio)
    twilio.reset()
    assert twilio.requests == [] and twilio.messages == []


def test_sendgrid_accepts_mail_with_a_message_id(sendgrid: FakeSendGrid) -> None:
    reply = post_mail(sendgrid)
    assert reply.status_code == 202
    assert reply.content == b""
    assert reply.headers["X-Message-Id"] == sendgrid.messages[0]["_message_id"]
    assert sendgrid.requests[0].destination == "a@b.example"


def test_sendgrid_checks_the_bearer_key(sendgrid: FakeSendGrid) -> None:
    reply = post_mail(sendgrid, key="SG.wrong")
    assert reply.status_code == 401
    assert "errors" in reply.json()
    assert sendgrid.messages == []


def test_sendgrid_validates_the_mail(sendgrid: FakeSendGrid) -> None:
    reply = post_mail(
        sendgrid,
        {
            "personalizations": [{"to": [{"email": "a@b.example"}]}],
            "from": {"email": "c@d.example"},
            "content": [{"type": "text/plain", "value": "x"}],
        },
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["field"] == "subject"


def test_sendgrid_sandbox_mode_answers_200_and_queues_nothing(sendgrid: FakeSendGrid) -> None:
    mail = {
        "personalizations": [{"to": [{"email": "a@b.example"}]}],
        "from": {"email": "c@lender.example"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
        "mail_settings": {"sandbox_mode": {"enable": True}},
    }
    reply = post_mail(sendgrid, mail)
    assert reply.status_code == 200
    assert "X-Message-Id" not in reply.headers


def test_sendgrid_errors_use_the_errors_envelope(sendgrid: FakeSendGrid) -> None:
    sendgrid.fail_next(Fault.rate_limited(retry_after=1))
    reply = post_mail(sendgrid)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "1"
    assert set(reply.json()["errors"][0]) == {"message", "field", "help"}


def test_connection_json_points_at_the_fake(twilio: FakeTwilio, sendgrid: FakeSendGrid) -> None:
    twilio_conn = json.loads(twilio.airflow_conn_json(timeout=1))
    assert twilio_conn["login"] == twilio.account_sid
    assert twilio_conn["extra"]["base_url"] == twilio.base_url
    assert twilio_conn["extra"]["timeout"] == 1
    sendgrid_conn = json.loads(sendgrid.airflow_conn_json())
    assert sendgrid_conn["password"] == sendgrid.api_key
    assert sendgrid_conn["extra"]["asm_group_id"]


def test_unknown_fault_kinds_are_rejected() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
