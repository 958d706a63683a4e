"""Dispatch on a real database: exactly once across reruns, crashes, doubt, and send-time gates."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contact_channels.base import (
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    UncertainError,
)
from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


class Recording:
    """Wraps a channel and records every send call, so a duplicate cannot hide behind the
    outbox's own idempotency. ``fault(n, message)`` may raise before or after delegating."""

    def __init__(self, inner, fault: Callable[[int, OutboundMessage], None] | None = None,  # type: ignore[no-untyped-def]
                 backend: str | None = None) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.backend = backend or inner.backend
        self.calls: list[str] = []
        self.fault = fault

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls.append(message.key)
        if self.fault:
            self.fault(len(self.calls), message)
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key) if self.backend == "outbox" else None

    def close(self) -> None:
        pass


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def outbox(tmp_path: Path) -> Callable[[str], OutboxChannel]:
    return lambda kind: OutboxChannel(kind, f"sqlite:///{tmp_path / 'outbox.db'}")


def portfolio(engine: Engine, n: int = 30) -> list[dict]:  # type: ignore[type-arg]
    accounts = [f.add_account(engine, as_of=DAY, dpd=2 + i % 10) for i in range(n)]
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    return accounts


def dispatch_all(engine: Engine, channel_impl, clock: str = "logical", **kw) -> dict[str, int]:  # type: ignore[no-untyped-def]
    totals: Counter[str] = Counter()
    for lo, hi in dispatch_ranges(engine, DAY, channel_impl.kind, 10):
        totals.update(dispatch_range(engine, DAY, channel_impl.kind, lo, hi, clock=clock,
                                     channel_impl=channel_impl, **kw).as_dict())
    return dict(totals)


def states(engine: Engine, channel: str) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(r[0] for r in conn.execute(
            text("SELECT state FROM contact WHERE channel = :c"), {"c": channel}))


def test_dispatch_sends_each_planned_contact_once_and_a_rerun_sends_nothing(
        engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine)
    sms = Recording(outbox("sms"))
    first = dispatch_all(engine, sms)
    assert first["sent"] == 30 and len(sms.calls) == 30 == len(set(sms.calls))
    assert states(engine, "sms") == {"sent": 30}
    again = dispatch_all(engine, sms)
    assert again.get("sent", 0) == 0 and len(sms.calls) == 30
    assert outbox("sms").count() == 30
    with engine.connect() as conn:
        events = conn.execute(text("SELECT COUNT(*) FROM contact_event WHERE source = 'dispatch' "
                                   "AND channel = 'sms'")).scalar()
        send_decisions = conn.execute(text("SELECT COUNT(*) FROM policy_decision "
                                           "WHERE phase = 'send' AND verdict = 'send'")).scalar()
    assert events == 30 and send_decisions == 30


def test_logical_clock_sends_at_the_first_hour_inside_each_window(
        engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 3)
    dispatch_all(engine, Recording(outbox("sms")))
    with engine.connect() as conn:
        sent_at = {r[0] for r in conn.execute(text("SELECT sent_at FROM contact "
                                                   "WHERE channel = 'sms'"))}
    assert {str(x)[:19] for x in sent_at} == {"2026-11-23 13:00:00"}  # 08:00 in New York


def test_logical_clock_walks_on_for_a_contact_deferred_to_later_the_same_day(
        engine: Engine, outbox, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """What the hourly dispatcher does on the wall clock (meet a contact deferred to 15:30 again
    at 16:00), one logical walk does too: nothing is left planned at the end of the day."""
    import outreach.planning.judging as judging
    from policies.model import DEFER, Verdict

    portfolio(engine, 3)
    real = judging.evaluate
    deferred: list[dt.datetime] = []

    def defer_once(step, facts, *, day, at, **kw):  # type: ignore[no-untyped-def]
        if not deferred:
            deferred.append(at)
            return Verdict(DEFER, ("test.later_today",), defer_until=at + dt.timedelta(hours=2, minutes=30))
        return real(step, facts, day=day, at=at, **kw)

    monkeypatch.setattr(judging, "evaluate", defer_once)
    sms = Recording(outbox("sms"))
    totals = dispatch_all(engine, sms)
    assert totals["sent"] == 3 and totals["deferred"] == 1
    assert states(engine, "sms") == {"sent": 3}
    assert len(sms.calls) == 3 == len(set(sms.calls))
    with engine.connect() as conn:
        sent_at = sorted(str(r[0])[:19] for r in conn.execute(
            text("SELECT sent_at FROM contact WHERE channel = 'sms'")))
    # Deferred at 13:00 UTC until 15:30: sent at the next top of the hour after it.
    assert str(deferred[0])[:19] == "2026-11-23 13:00:00"
    assert sent_at == ["2026-11-23 13:00:00", "2026-11-23 13:00:00", "2026-11-23 16:00:00"]


def test_logical_clock_leaves_planned_a_contact_deferred_past_its_window(
        engine: Engine, outbox, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import outreach.dispatch.dispatcher as dispatcher
    import outreach.planning.judging as judging
    from policies.model import DEFER, Verdict

    portfolio(engine, 1)
    calls: list[dt.datetime] = []

    def always_later(step, facts, *, day, at, **kw):  # type: ignore[no-untyped-def]
        calls.append(at)
        return Verdict(DEFER, ("test.later_today",), defer_until=at + dt.timedelta(hours=1))

    monkeypatch.setattr(judging, "evaluate", always_later)
    dispatch_all(engine, Recording(outbox("sms")))
    # Judged once an hour, each time an hour later, until its deferral reached the window's
    # end: then deferred past today, and the walk ends.
    steps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert steps and set(steps) == {dt.timedelta(hours=1)}
    assert len(calls) <= dispatcher.MAX_LOGICAL_PASSES
    assert states(engine, "sms") == {"deferred": 1}


def test_wall_clock_sends_only_what_is_inside_its_window_now(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 5)
    sms = Recording(outbox("sms"))
    early = dispatch_all(engine, sms, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 12, 59))
    assert early.get("sent", 0) == 0 and states(engine, "sms") == {"planned": 5}
    on_time = dispatch_all(engine, sms, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 14))
    assert on_time["sent"] == 5


def test_logical_clock_is_refused_for_a_real_provider(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 1)
    fake_provider = Recording(outbox("sms"), backend="twilio")
    with pytest.raises(ValueError, match="only allowed with the outbox"):
        dispatch_range(engine, DAY, "sms", 0, 10**9, clock="logical", channel_impl=fake_provider)


def crash_on(n: int, after_delegating: bool = False):  # type: ignore[no-untyped-def]
    def fault(call: int, message: OutboundMessage) -> None:
        if call == n and not after_delegating:
            raise RuntimeError("worker crashed")
    return fault


def test_dispatch_failing_midway_then_rerun_sends_each_remaining_contact_once(
        engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine)
    crashing = Recording(outbox("sms"), fault=crash_on(12))
    with pytest.raises(RuntimeError):
        dispatch_all(engine, crashing)
    after_crash = states(engine, "sms")
    assert after_crash["sent"] == 11 and after_crash["uncertain"] == 1
    assert after_crash["planned"] == 18  # released, not lost
    rerun = Recording(outbox("sms"))
    dispatch_all(engine, rerun)
    assert states(engine, "sms") == {"sent": 30}
    # The contact in doubt was checked against the outbox (which never got it) and sent once;
    # nothing sent before the crash went out again.
    assert set(rerun.calls).isdisjoint(crashing.calls[:11])
    assert len(rerun.calls) == 19 == len(set(rerun.calls))
    assert outbox("sms").count() == 30


class CrashAfterSend(Recording):
    """The provider took the message, then the worker died before recording it."""

    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        if len(self.calls) == 5:
            raise RuntimeError("worker crashed after the provider accepted")
        return result


def test_crash_after_the_provider_accepted_is_not_resent(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 10)
    crashing = CrashAfterSend(outbox("sms"))
    with pytest.raises(RuntimeError):
        dispatch_all(engine, crashing)
    rerun = Recording(outbox("sms"))
    dispatch_all(engine, rerun)
    assert crashing.calls[4] not in rerun.calls  # resolved from the outbox as sent
    assert states(engine, "sms") == {"sent": 10}
    assert len(crashing.calls) + len(rerun.calls) == 10


def test_uncertain_contact_with_a_provider_is_never_resent(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 6)

    def timeout_third(call: int, message: OutboundMessage) -> None:
        if call == 3:
            raise UncertainError("read timeout after the request was sent", code="timeout")

    provider = Recording(outbox("sms"), fault=timeout_third, backend="twilio")
    dispatch_all(engine, provider, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 15))
    dispatch_all(engine, provider, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 16))
    assert states(engine, "sms") == {"sent": 5, "uncertain": 1}
    assert Counter(provider.calls).most_common(1)[0][1] == 1


def test_claim_left_by_a_killed_worker(engine: Engine, outbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 4)
    with engine.begin() as conn:  # a worker claimed two rows and was killed with SIGKILL
        conn.execute(text("UPDATE contact SET state = 'sending', claim_token = 'dead', "
                          "claimed_at = :t WHERE channel = 'sms' AND account_id IN "
                          "(SELECT MIN(account_id) FROM contact UNION SELECT MAX(account_id) "
                          "FROM contact)"), {"t": dt.datetime(2026, 11, 23, 13)})
    provider = Recording(outbox("sms"), backend="twilio")
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "3600")
    now = dt.datetime(2026, 11, 23, 13, 30)
    dispatch_all(engine, provider, clock="wall", now=lambda: now)  # lease still running
    assert states(engine, "sms") == {"sent": 2, "sending": 2}
    now = dt.datetime(2026, 11, 23, 15)
    dispatch_all(engine, provider, clock="wall", now=lambda: now)  # lease over: in doubt
    assert states(engine, "sms") == {"sent": 2, "uncertain": 2}
    assert len(provider.calls) == 2


def test_killed_worker_on_the_outbox_is_resolved_by_lookup(engine: Engine, outbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 4)
    with engine.begin() as conn:
        conn.execute(text("UPDATE contact SET state = 'sending', claim_token = 'dead', "
                          "claimed_at = :t WHERE channel = 'sms'"), {"t": dt.datetime(2026, 1, 1)})
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "0")
    sms = Recording(outbox("sms"))
    counts = dispatch_all(engine, sms)
    assert counts["recovered"] == 4 and counts["sent"] == 4
    assert states(engine, "sms") == {"sent": 4}


def test_dispute_after_planning_is_caught_at_send_time(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    accounts = portfolio(engine, 3)
    f.add_hold(engine, accounts[1]["account_id"], "dispute", DAY)
    f.add_opt_out(engine, accounts[2]["person_id"], "sms", "*", dt.datetime(2026, 11, 23, 10))
    sms = Recording(outbox("sms"))
    counts = dispatch_all(engine, sms)
    assert counts["sent"] == 1 and counts["suppressed"] == 2
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT account_id, reasons FROM policy_decision WHERE phase = 'send' "
            "AND verdict = 'block'")).all())
    # No validation notice on record: a dispute is taken as inside the validation period.
    assert rows == {accounts[1]["account_id"]: "us_reg_f.dispute_in_validation_period",
                    accounts[2]["account_id"]: "core.opted_out"}


def test_permanent_error_fails_once_and_marks_the_number(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    accounts = portfolio(engine, 3)

    def invalid_first(call: int, message: OutboundMessage) -> None:
        if call == 1:
            raise PermanentError("invalid number", code="21211", destination_invalid=True)

    provider = Recording(outbox("sms"), fault=invalid_first, backend="twilio")
    dispatch_all(engine, provider, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 15))
    dispatch_all(engine, provider, clock="wall", now=lambda: dt.datetime(2026, 11, 23, 16))
    assert states(engine, "sms") == {"sent": 2, "failed": 1}
    assert len(provider.calls) == 3
    with engine.connect() as conn:
        valid = conn.execute(text("SELECT valid FROM contact_point WHERE id = :i"),
                             {"i": accounts[0]["points"]["phone0"]}).scalar()
    assert not valid


def test_transient_error_is_retried_in_a_later_window_then_fails(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    portfolio(engine, 1)

    def always_busy(call: int, message: OutboundMessage) -> None:
        raise TransientError("503 from provider", code="503")

    provider = Recording(outbox("sms"), fault=always_busy, backend="twilio")
    for hour in (14, 15, 16, 17):
        dispatch_all(engine, provider, clock="wall", now=lambda h=hour: dt.datetime(2026, 11, 23, h))
    assert len(provider.calls) == 3  # MAX_TRANSIENT_ATTEMPTS, then failed for a person or redrive
    assert states(engine, "sms") == {"failed": 1}


def test_every_channel_kind_dispatches_to_its_outbox(engine: Engine, outbox) -> None:  # type: ignore[no-untyped-def]
    early = [f.add_account(engine, as_of=DAY, dpd=dpd) for dpd in (5, 20, 70)][0]
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    sent = {}
    for kind in ("sms", "email", "call", "letter"):
        sent[kind] = dispatch_all(engine, Recording(outbox(kind))).get("sent", 0)
    # Letters: the early account's validation notice and the 70-day account's reminder.
    assert sent == {"sms": 2, "email": 1, "call": 2, "letter": 2}
    with engine.connect() as conn:
        noticed = conn.execute(text(
            "SELECT id, validation_notice_sent_on FROM account WHERE validation_notice_sent_on "
            "IS NOT NULL")).all()
    # Sending the validation notice records its date: the validation period runs from it.
    assert [(r[0], str(r[1])) for r in noticed] == [(early["account_id"], str(DAY))]
    email = outbox("email").records()[0]
    assert email.subject and "past due" in email.subject and email.body_html
    assert "Reply STOP to opt out" in outbox("sms").records()[0].body_text


def test_error_before_the_provider_call_releases_instead_of_doubting(
        engine: Engine, outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from outreach.planning import messages

    portfolio(engine, 5)
    broken = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", broken)
    (broken / "en" / "sms" / "reminder.txt").write_text("Hi {{ no_such_field }}")
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(broken))
    sms = Recording(outbox("sms"))
    with pytest.raises(Exception, match="no_such_field"):
        dispatch_all(engine, sms)
    assert sms.calls == [] and states(engine, "sms") == {"planned": 5}
    monkeypatch.delenv("OUTREACH_TEMPLATES_DIR")
    messages._environment.cache_clear()
    dispatch_all(engine, sms)
    assert states(engine, "sms") == {"sent": 5} and len(sms.calls) == 5
