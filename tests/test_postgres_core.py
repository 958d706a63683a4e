"""The planner and dispatcher tests again, on the real PostgreSQL server (CI sets the URL).

The test functions are copied from their SQLite modules (copies, so that the ``postgres`` mark
stays on these and never reaches the originals); this module's ``engine`` fixture gives them a
freshly migrated PostgreSQL schema instead.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outreach.storage.db import make_engine, migrate
from tests import test_dispatch, test_household, test_planner
from tests.test_dispatch import outbox  # noqa: F401  (fixture)
from tests.test_household import policy  # noqa: F401  (fixture)
from tests.test_planner import ladder  # noqa: F401  (fixture)

SHARED = {
    test_planner: [
        "test_cadence_waits_every_days_and_stops_at_max_times",
        "test_early_stage_account_gets_validation_notice_sms_and_email_with_windows",
        "test_eighth_call_in_seven_days_is_deferred_in_the_ledger",
        "test_every_decision_carries_versions_and_evidence",
        "test_plan_is_deterministic_and_a_rerun_changes_nothing",
        "test_prerequisite_unmet_is_a_recorded_block",
        "test_replanning_a_deferred_contact_keeps_its_key",
    ],
    test_dispatch: [
        "test_claim_left_by_a_killed_worker",
        "test_crash_after_the_provider_accepted_is_not_resent",
        "test_dispatch_failing_midway_then_rerun_sends_each_remaining_contact_once",
        "test_dispatch_sends_each_planned_contact_once_and_a_rerun_sends_nothing",
        "test_dispute_after_planning_is_caught_at_send_time",
        "test_every_channel_kind_dispatches_to_its_outbox",
        "test_permanent_error_fails_once_and_marks_the_number",
        "test_transient_error_is_retried_in_a_later_window_then_fails",
        "test_uncertain_contact_with_a_provider_is_never_resent",
    ],
    test_household: [
        "test_a_rerun_of_the_day_after_dispatch_keeps_the_winner",
        "test_send_time_recheck_defers_a_sibling_whose_contact_went_today",
        "test_the_other_account_goes_the_next_day_after_dispatch",
        "test_the_winner_is_the_same_whatever_the_batches",
    ],
}


def _copy(fn: Callable[..., Any]) -> Callable[..., Any]:
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                               fn.__closure__)
    clone.__kwdefaults__ = fn.__kwdefaults__
    return pytest.mark.postgres(clone)


for _module, _names in SHARED.items():
    for _name in _names:
        globals()[_name] = _copy(getattr(_module, _name))


@pytest.fixture
def engine(postgres_url: str) -> Engine:
    scratch = make_engine(postgres_url)
    with scratch.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    scratch.dispose()
    migrate(postgres_url)
    return make_engine(postgres_url)
