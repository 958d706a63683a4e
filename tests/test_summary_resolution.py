"""The day's summary reports what changed in the resolution loop that day: promises made, kept,
partly kept and broken, arrangements accepted, missed, broken and completed, payments posted,
allocated and reversed, counted from the resolution events of that day (and only that day)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from outreach.kernel import clock
from outreach.operations.reporting import day_summary, format_summary
from outreach.resolution.events import Transition, record
from outreach.services import daily as service
from outreach.storage.db import get_engine
from tests import factories

DAY = dt.date(2026, 11, 20)


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def _changes(account_id: int, changes: list[tuple[str, str | None, str]]) -> list[Transition]:
    """(subject, from state, to state) as transitions of the account by the system."""
    return [
        Transition(account_id, subject, f"{subject}-{i}", before, after, "system", "test")
        for i, (subject, before, after) in enumerate(changes)
    ]


@pytest.fixture
def hand_made(app_data: Path) -> int:
    """One account with two days of changes: the day before DAY, DAY itself, the day after."""
    service.setup_database()
    engine = get_engine()
    ids = factories.add_account(engine, as_of=DAY)
    account_id = int(ids["account_id"])
    with engine.begin() as conn:
        record(conn, _changes(account_id, [
            ("promise", None, "open"),  # made the day before: not DAY's
        ]), at=_at(DAY - dt.timedelta(days=1), 23))  # fmt: skip
        record(conn, _changes(account_id, [
            ("promise", None, "open"), ("promise", None, "open"),
            ("promise", "open", "kept"), ("promise", "open", "partly_kept"),
            ("promise", "open", "broken"), ("promise", "open", "broken"),
            ("arrangement", None, "active"), ("instalment", "due", "missed"),
            ("arrangement", "active", "broken"), ("arrangement", "active", "completed"),
            ("payment", None, "posted"), ("payment", "posted", "allocated"),
            ("payment", "allocated", "reversed"),
        ]), at=_at(DAY, 0))  # fmt: skip
        record(conn, _changes(account_id, [("promise", "open", "kept")]),
               at=_at(DAY, 23).replace(minute=59))  # fmt: skip
        record(conn, _changes(account_id, [("promise", "open", "broken")]),
               at=_at(DAY + dt.timedelta(days=1), 0))  # fmt: skip
    return account_id


def test_the_summary_counts_the_days_resolution_changes_only(hand_made: int) -> None:
    summary = day_summary(get_engine(), DAY)
    assert summary["resolution"] == {
        "promise": {"open": 2, "kept": 2, "partly_kept": 1, "broken": 2},
        "arrangement": {"active": 1, "broken": 1, "completed": 1},
        "instalment": {"missed": 1},
        "payment": {"allocated": 1, "posted": 1, "reversed": 1},
    }
    assert list(summary["resolution"]) == ["promise", "arrangement", "instalment", "payment"]
    after = day_summary(get_engine(), DAY + dt.timedelta(days=1))["resolution"]
    assert after == {"promise": {"broken": 1}}
    assert day_summary(get_engine(), DAY - dt.timedelta(days=2))["resolution"] == {}


def test_the_printed_summary_shows_the_resolution_loop(hand_made: int) -> None:
    text = format_summary(day_summary(get_engine(), DAY))
    assert "Resolution loop" in text
    assert "  promise        broken 2, kept 2, open 2, partly kept 1" in text
    assert "  arrangement    active 1, broken 1, completed 1" in text
    assert "  payment        allocated 1, posted 1, reversed 1" in text
    quiet = format_summary(day_summary(get_engine(), DAY - dt.timedelta(days=2)))
    assert "Resolution loop" not in quiet


def test_the_cli_summary_prints_the_resolution_counts(
    hand_made: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from outreach.entry.cli import main

    assert main(["summary", "--as-of", DAY.isoformat()]) == 0
    assert "  instalment     missed 1" in capsys.readouterr().out
    assert main(["summary", "--as-of", DAY.isoformat(), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["resolution"]["instalment"] == {"missed": 1}


def test_a_settle_on_the_logical_clock_is_stamped_on_its_day(app_data: Path) -> None:
    """A backfill or the demo's later day settles on the run's day: its changes are counted on
    that day, not on the day the run happened to be started."""
    later = dt.date(2027, 3, 1)
    with clock.use(dt.datetime(2026, 12, 6, 9, 30)):
        with service.on_the_day(later, "logical"):
            assert clock.today() == later and clock.utcnow().time() == dt.time(9, 30)
        with service.on_the_day(later, "wall"):
            assert clock.today() == dt.date(2026, 12, 6)
        assert clock.utcnow() == dt.datetime(2026, 12, 6, 9, 30)
