"""The checks a rule may name, by name: each a pure function in one of the modules of
``policies.checks`` (standing, validation, time_of_day, frequency), with the parameters it
requires and accepts, and which of them read the account's own history."""

from __future__ import annotations

from policies.checks.base import Check
from policies.checks.frequency import _after_conversation, _call_cap, _contact_cap, _household
from policies.checks.standing import (
    _agency_approved,
    _agency_assigned,
    _consent,
    _destination,
    _final_notice_wait,
    _hold,
    _hold_period,
    _min_balance,
    _needs_hold,
    _not_delinquent,
    _opted_out,
    _scra,
    _third_party,
    _time_barred,
    _time_barred_disclosure,
    _workplace_calls,
    _workplace_email,
)
from policies.checks.time_of_day import _hours, _stated_times
from policies.checks.validation import (
    _credit_report,
    _itemization,
    _validation_dispute,
    _validation_notice,
    _validation_period,
)

CHECKS: dict[str, Check] = {
    "hold": _hold,
    "hold_period": _hold_period,
    "needs_hold": _needs_hold,
    "not_delinquent": _not_delinquent,
    "opted_out": _opted_out,
    "destination": _destination,
    "third_party": _third_party,
    "consent": _consent,
    "workplace_email": _workplace_email,
    "workplace_calls": _workplace_calls,
    "agency_approved": _agency_approved,
    "agency_assigned": _agency_assigned,
    "min_balance": _min_balance,
    "final_notice_wait": _final_notice_wait,
    "time_barred": _time_barred,
    "time_barred_disclosure": _time_barred_disclosure,
    "scra": _scra,
    "validation_notice": _validation_notice,
    "itemization": _itemization,
    "validation_dispute": _validation_dispute,
    "validation_period": _validation_period,
    "credit_report": _credit_report,
    "hours": _hours,
    "stated_times": _stated_times,
    "call_cap": _call_cap,
    "contact_cap": _contact_cap,
    "after_conversation": _after_conversation,
    "household": _household,
}

# Parameters each check requires; under "<check>?" the ones it also accepts.
CHECK_PARAMS: dict[str, tuple[str, ...]] = {
    "hold": ("holds",),
    "hold?": ("except_relations", "except_purposes"),
    "hold_period": ("holds",),
    "needs_hold": ("holds", "purposes"),
    "hold_period?": ("default_days", "days_after_end"),
    "third_party": ("allowed_purposes",),
    "consent": ("phone_types",),
    "consent?": ("dialers",),
    "scra": ("max_age_days",),
    "min_balance": ("min_balance",),
    "final_notice_wait": ("days",),
    "validation_notice": ("days",),
    "validation_notice?": ("except_purposes",),
    "validation_dispute": ("holds", "receipt_business_days", "period_days"),
    "validation_dispute?": ("except_purposes",),
    "validation_period": ("receipt_business_days", "period_days"),
    "credit_report": ("days",),
    "hours": ("start_hour", "end_hour"),
    "call_cap": ("max_attempts", "days", "not_counted"),
    "contact_cap": ("max_attempts", "days", "counted_channels"),
    "contact_cap?": ("counted_outcomes", "not_counted", "scope", "per"),
    "after_conversation": ("days",),
}

# Checks that read the account's own history, dates or stated times. Every other check reads
# only the step, the jurisdiction, the zones, the day, and holds or opt-outs (which the plain
# path requires to be absent).
ACCOUNT_CHECKS = frozenset(
    {
        "hold_period",
        "third_party",
        "time_barred",
        "time_barred_disclosure",
        "scra",
        "validation_notice",
        "itemization",
        "validation_dispute",
        "validation_period",
        "credit_report",
        "stated_times",
        "call_cap",
        "contact_cap",
        "after_conversation",
        "min_balance",
        "final_notice_wait",
        "household",
    }
)
