"""What the ladder can actually do next to an account: place it with an agency, refer it for
legal action. A letter states only these (15 U.S.C. 1692e(5): no threat of action that cannot
legally be taken or is not intended); the final notice's template reads them from its context.

Both are judged as the ladder and the gates would judge them later, from what cannot change by
waiting: a stage with such an action whose entry the account can still meet (its balance, product
and segment; a ``dpd_max`` not already passed) and, for a legal referral, the legal rules in force
for the account whose outcome waiting does not change: the balance threshold
(``core.legal_min_balance``, 2,500 by default) and the limitation date (``core.time_barred``)
before the day the referral stage could first be reached; for a placement, an approved agency
where the account's rules require one (``cn.agency_not_approved``) and the list is empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from outreach.kernel.facts import AccountRecord
from outreach.planning.ladder import Ladder, Stage
from policies.packs import jurisdiction, rules_for


@dataclass(frozen=True, slots=True)
class Consequences:
    may_place_with_agency: bool
    may_refer_for_legal_action: bool


def _reachable(stage: Stage, account: AccountRecord, dpd: int) -> bool:
    e = stage.entry
    return (
        account.balance >= e.min_balance
        and (e.dpd_max is None or dpd <= e.dpd_max)
        and (e.segment is None or account.segment == e.segment)
        and (e.products is None or account.product in e.products)
    )


def _legal_rules_allow(account: AccountRecord, role: str, day: dt.date, earliest: dt.date) -> bool:
    j = jurisdiction(account.country, account.region, account.city, account.product, role)
    for rule, _pack in rules_for(j, "legal", day):
        if rule.check == "min_balance" and account.balance < Decimal(str(rule.params["min_balance"])):
            return False
    barred = account.limitation_date is not None and account.limitation_date <= earliest
    return not barred


def _agency_rules_allow(
    account: AccountRecord, role: str, day: dt.date, approved: frozenset[str] | None
) -> bool:
    # Where placements need an agency from the approved list (China) and the list is empty,
    # no placement can ever be made.
    if approved is None or approved:
        return True
    j = jurisdiction(account.country, account.region, account.city, account.product, role)
    return not any(rule.check == "agency_approved" for rule, _ in rules_for(j, "agency", day))


def consequences(
    ladder: Ladder | None,
    account: AccountRecord,
    day: dt.date,
    role: str,
    approved_agencies: frozenset[str] | None = None,
) -> Consequences:
    """What ``ladder`` can still do to ``account`` after ``day``; nothing without a ladder.
    ``approved_agencies``: ``config/policy.yaml``'s list (None: not known, not judged)."""
    if ladder is None:
        return Consequences(False, False)
    dpd = (day - account.due_date).days if account.due_date else 0
    agency = legal = False
    for stage in ladder.stages:
        if not _reachable(stage, account, dpd):
            continue
        channels = {a.channel for a in stage.actions}
        if "agency" in channels:
            agency = agency or _agency_rules_allow(account, role, day, approved_agencies)
        if "legal" in channels:
            start = account.due_date + dt.timedelta(days=stage.entry.dpd_min) if account.due_date else day
            legal = legal or _legal_rules_allow(account, role, day, max(day, start))
    return Consequences(agency, legal)
