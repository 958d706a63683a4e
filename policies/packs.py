"""Rule packs: which rules are in force for an account on a day, and the checks on pack data.

A pack is one jurisdiction's (or the house's) rules, as data: each rule names its check (a pure
function in ``policies.checks``), its parameters, its channels, its citation and the dates it is
in force. A pack version applies to an account by country, region (``US-MA``), city, product and
the user's role (first-party creditor or third-party collector), and only from its
``effective_from`` to its ``effective_to`` (exclusive): the version in force on the run's logical
date is the one applied. A rule may supersede another pack's rule (Regulation F's hours replace
the house default for US accounts). The pack data itself lives in ``policies.rulepacks``, its
shapes (``Pack``, ``Rule``, ``Applies``, ``Jurisdiction``) in ``policies.pack_model``.

A version is the law's effective date (``2023.01.01``); when the project corrects its reading of
the same law, the version takes a revision suffix (``2023.01.01-r2``) and keeps its dates, so a
decision's ``pack_versions`` shows which reading decided it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from policies.checks.frequency import CAP_PER, CAP_SCOPES
from policies.checks.registry import CHECK_PARAMS, CHECKS
from policies.codes import REASON_CODES
from policies.model import ROLES
from policies.pack_model import ALL_CHANNELS, Jurisdiction, Pack, Rule
from policies.rulepacks import PACKS


def jurisdiction(
    country: str, region: str | None, city: str | None, product: str, role: str
) -> Jurisdiction:
    return Jurisdiction(
        country, (region or "").upper() or None, (city or "").strip().casefold() or None,
        product, role,
    )  # fmt: skip


def all_packs() -> tuple[Pack, ...]:
    return PACKS


@lru_cache(maxsize=4096)
def packs_for(j: Jurisdiction, day: dt.date) -> tuple[Pack, ...]:
    """The pack versions in force on ``day`` that cover ``j``, in registry order."""
    return tuple(p for p in all_packs() if p.in_force(day) and p.applies.covers(j))


@lru_cache(maxsize=4096)
def pack_versions(j: Jurisdiction, day: dt.date) -> str:
    return ",".join(p.label for p in packs_for(j, day))


@lru_cache(maxsize=16384)
def rules_for(j: Jurisdiction, channel: str, day: dt.date) -> tuple[tuple[Rule, str], ...]:
    """The rules in force for ``j`` and ``channel`` on ``day``, each with its pack's label."""
    packs = packs_for(j, day)
    live = [(r, p) for p in packs for r in p.rules if r.in_force(day)]
    superseded = {s for r, _ in live for s in r.supersedes}
    return tuple(
        (r, p.label)
        for r, p in live
        if r.rule_id not in superseded and (r.channels is None or channel in r.channels)
    )


# --- validation ---------------------------------------------------------------------------------

def _check_params(rule: Rule) -> list[str]:
    """Problems with one rule's parameters, by check."""
    p, problems = rule.params, []
    required = CHECK_PARAMS.get(rule.check, ())
    for name in required:
        if name not in p:
            problems.append(f"{rule.rule_id}: parameter '{name}' is missing")
    for name in p:
        if name not in required and name not in CHECK_PARAMS.get(rule.check + "?", ()):
            problems.append(f"{rule.rule_id}: unknown parameter '{name}' for check '{rule.check}'")
    if rule.check == "hours":
        start, end = p.get("start_hour"), p.get("end_hour")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24):
            problems.append(f"{rule.rule_id}: hours need 0 <= start_hour < end_hour <= 24")
    for name in ("max_attempts", "days", "max_age_days", "receipt_business_days", "period_days",
                 "default_days"):  # fmt: skip
        if name in p and not (isinstance(p[name], int) and p[name] >= 1):
            problems.append(f"{rule.rule_id}: '{name}' must be a whole number of at least 1")
    if "days_after_end" in p and not (isinstance(p["days_after_end"], int) and p["days_after_end"] >= 0):
        problems.append(f"{rule.rule_id}: 'days_after_end' must be a whole number of at least 0")
    if rule.check == "contact_cap":
        scope = p.get("scope", "account")
        if scope not in CAP_SCOPES:
            problems.append(
                f"{rule.rule_id}: unknown scope {scope!r} (one of {', '.join(CAP_SCOPES)})"
            )
        per = p.get("per", "debt")
        if per not in CAP_PER:
            problems.append(f"{rule.rule_id}: unknown per {per!r} (one of {', '.join(CAP_PER)})")
    return problems


def validate_packs(packs: tuple[Pack, ...] | None = None) -> list[str]:
    """Problems with the pack data: unknown checks or channels, duplicate or misnamed ids,
    bad parameters, dates that run backwards, overlapping versions of one pack, dangling
    supersedes, reason codes missing from ``policies.codes``."""
    packs = all_packs() if packs is None else packs
    problems: list[str] = []
    ids = {r.rule_id for p in packs for r in p.rules}
    by_name: dict[str, list[Pack]] = {}
    for pack in packs:
        by_name.setdefault(pack.name, []).append(pack)
        where = pack.label
        if pack.effective_to is not None and pack.effective_to <= pack.effective_from:
            problems.append(f"{where}: effective_to must be after effective_from")
        if pack.applies.roles is not None and not pack.applies.roles <= set(ROLES):
            problems.append(f"{where}: roles must be among {', '.join(ROLES)}")
        seen: set[str] = set()
        for rule in pack.rules:
            if rule.rule_id in seen:
                problems.append(f"{where}: {rule.rule_id}: duplicate rule id")
            seen.add(rule.rule_id)
            if not rule.rule_id.startswith(pack.name + "."):
                problems.append(f"{where}: {rule.rule_id}: id must start with '{pack.name}.'")
            if rule.rule_id not in REASON_CODES:
                problems.append(f"{where}: {rule.rule_id}: no entry in policies.codes")
            if not rule.citation.strip():
                problems.append(f"{where}: {rule.rule_id}: citation is empty")
            if rule.check not in CHECKS:
                problems.append(f"{where}: {rule.rule_id}: unknown check '{rule.check}'")
            else:
                problems.extend(f"{where}: {x}" for x in _check_params(rule))
            if rule.channels is not None and not rule.channels <= ALL_CHANNELS:
                problems.append(f"{where}: {rule.rule_id}: unknown channel in {sorted(rule.channels)}")
            for target in rule.supersedes:
                if target not in ids:
                    problems.append(f"{where}: {rule.rule_id}: supersedes unknown rule {target}")
            if (
                rule.effective_from is not None
                and rule.effective_to is not None
                and rule.effective_to <= rule.effective_from
            ):
                problems.append(f"{where}: {rule.rule_id}: effective_to must be after effective_from")
    for name, versions in by_name.items():
        ordered = sorted(versions, key=lambda p: p.effective_from)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.effective_to is None or a.effective_to > b.effective_from:
                problems.append(
                    f"{name}: versions {a.version} and {b.version} are both in force on "
                    f"{b.effective_from}"
                )
    return problems


class PackError(ValueError):
    pass


def assert_valid(packs: tuple[Pack, ...] | None = None) -> None:
    """Refuse to plan or send with a broken pack: called before every run."""
    problems = validate_packs(packs)
    if problems:
        raise PackError("rule packs are invalid:\n" + "\n".join(problems))
