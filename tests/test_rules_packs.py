"""Rule packs as data: the shipped packs validate, broken packs are refused with a clear problem,
the version in force on a day is chosen by its effective dates, and packs apply by country,
region, city, product and role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest

import policies.checks.registry
import policies.gate
import policies.pack_model
import policies.packs
from policies.codes import REASON_CODES
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from policies.pack_model import CALL, Applies, Pack, Rule
from policies.packs import (
    PackError,
    all_packs,
    assert_valid,
    jurisdiction,
    pack_versions,
    packs_for,
    rules_for,
    validate_packs,
)
from policies.rulepacks.core import CORE
from policies.windows import local_to_utc

DAY = dt.date(2026, 11, 23)
NY = "America/New_York"


def clear_caches() -> None:
    packs_for.cache_clear()
    policies.packs.pack_versions.cache_clear()
    rules_for.cache_clear()
    policies.gate._evaluate_plain.cache_clear()


@pytest.fixture
def use_packs(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Install a tuple of packs in place of the shipped ones for one test."""

    def install(*packs: Pack) -> None:
        monkeypatch.setattr(policies.packs, "all_packs", lambda: packs)
        clear_caches()

    clear_caches()
    yield install
    monkeypatch.undo()
    clear_caches()


def names(j: policies.pack_model.Jurisdiction, day: dt.date = DAY) -> set[str]:
    return {p.name for p in packs_for(j, day)}


# --- the shipped packs --------------------------------------------------------------------------


def test_shipped_packs_are_valid() -> None:
    assert validate_packs() == []
    assert_valid()


def test_every_rule_id_has_a_reason_code() -> None:
    ids = {r.rule_id for p in all_packs() for r in p.rules}
    assert ids and ids <= set(REASON_CODES), sorted(ids - set(REASON_CODES))
    for code, text in REASON_CODES.items():
        assert text.strip() and "." in code, code


def test_every_rule_of_the_shipped_packs_has_a_citation_and_a_known_check() -> None:
    for pack in all_packs():
        for rule in pack.rules:
            assert rule.citation.strip(), rule.rule_id
            assert rule.check in policies.checks.registry.CHECKS, rule.rule_id


# --- broken packs -------------------------------------------------------------------------------


def pack(*rules: Rule, name: str = "us_ma", version: str = "1", **kw: object) -> Pack:
    base: dict[str, object] = dict(
        name=name, version=version, title="test pack", applies=Applies(countries=frozenset({"US"})),
        effective_from=dt.date(2023, 1, 1), rules=rules,
    )  # fmt: skip
    base.update(kw)
    return Pack(**base)  # type: ignore[arg-type]


CAP = Rule("us_ma.personal_phone_2in7", "contact_cap", "940 CMR 7.04(1)(f)", CALL,
           {"max_attempts": 2, "days": 7, "counted_channels": ("call", "sms"),
            "scope": "personal_phone"})  # fmt: skip
HOURS = Rule("us_ma.other_phone_2in30", "hours", "test", CALL, {"start_hour": 8, "end_hour": 21})


def test_a_valid_test_pack_validates() -> None:
    assert validate_packs((pack(CAP, HOURS),)) == []


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (replace(CAP, check="cap_calls"), "us_ma.personal_phone_2in7: unknown check 'cap_calls'"),
        (replace(CAP, params={"days": 7, "counted_channels": ("call",)}),
         "us_ma.personal_phone_2in7: parameter 'max_attempts' is missing"),
        (replace(CAP, params={**CAP.params, "max_calls": 3}),
         "us_ma.personal_phone_2in7: unknown parameter 'max_calls' for check 'contact_cap'"),
        (replace(CAP, params={**CAP.params, "max_attempts": 0}),
         "us_ma.personal_phone_2in7: 'max_attempts' must be a whole number of at least 1"),
        (replace(CAP, params={**CAP.params, "days": "7"}),
         "us_ma.personal_phone_2in7: 'days' must be a whole number of at least 1"),
        (replace(HOURS, check="scra", params={"max_age_days": "30"}),
         "us_ma.other_phone_2in30: 'max_age_days' must be a whole number of at least 1"),
        (replace(HOURS, check="hold_period", params={"holds": ("x",), "days_after_end": -1}),
         "us_ma.other_phone_2in30: 'days_after_end' must be a whole number of at least 0"),
        (replace(CAP, params={**CAP.params, "scope": "personal"}),
         "us_ma.personal_phone_2in7: unknown scope 'personal'"),
        (replace(HOURS, params={"start_hour": 21, "end_hour": 8}),
         "us_ma.other_phone_2in30: hours need 0 <= start_hour < end_hour <= 24"),
        (replace(HOURS, params={"start_hour": 8, "end_hour": 25}),
         "us_ma.other_phone_2in30: hours need 0 <= start_hour < end_hour <= 24"),
        (replace(HOURS, params={"start_hour": 8}),
         "us_ma.other_phone_2in30: parameter 'end_hour' is missing"),
        (replace(CAP, supersedes=("core.no_such_rule",)),
         "us_ma.personal_phone_2in7: supersedes unknown rule core.no_such_rule"),
        (replace(CAP, rule_id="us_ma.texts_2in7"), "us_ma.texts_2in7: no entry in policies.codes"),
        (replace(CAP, rule_id="core.call_frequency_7in7"),
         "core.call_frequency_7in7: id must start with 'us_ma.'"),
        (replace(CAP, citation="  "), "us_ma.personal_phone_2in7: citation is empty"),
        (replace(CAP, channels=frozenset({"call", "fax"})),
         "us_ma.personal_phone_2in7: unknown channel in ['call', 'fax']"),
        (replace(CAP, effective_from=dt.date(2025, 1, 1), effective_to=dt.date(2024, 1, 1)),
         "us_ma.personal_phone_2in7: effective_to must be after effective_from"),
    ],
)  # fmt: skip
def test_a_broken_rule_is_refused_with_a_clear_problem(broken: Rule, problem: str) -> None:
    packs = (pack(broken, HOURS),)
    problems = validate_packs(packs)
    assert any(p.startswith(f"us_ma@1: {problem}") for p in problems), problems
    with pytest.raises(PackError, match="rule packs are invalid") as raised:
        assert_valid(packs)
    assert problem in str(raised.value)


def test_a_duplicate_rule_id_is_refused() -> None:
    assert "us_ma@1: us_ma.personal_phone_2in7: duplicate rule id" in validate_packs(
        (pack(CAP, CAP),))  # fmt: skip


def test_overlapping_versions_of_one_pack_are_refused() -> None:
    first = pack(CAP, version="2023")  # open-ended
    second = pack(CAP, version="2027", effective_from=dt.date(2027, 1, 1))
    problems = validate_packs((first, second))
    assert problems == ["us_ma: versions 2023 and 2027 are both in force on 2027-01-01"]
    closed_late = replace(first, effective_to=dt.date(2027, 1, 2))
    assert validate_packs((closed_late, second)) == [
        "us_ma: versions 2023 and 2027 are both in force on 2027-01-01"]  # fmt: skip
    closed = replace(first, effective_to=dt.date(2027, 1, 1))
    assert validate_packs((closed, second)) == []
    with pytest.raises(PackError):
        assert_valid((first, second))


def test_a_pack_whose_dates_run_backwards_is_refused() -> None:
    backwards = pack(CAP, effective_to=dt.date(2022, 1, 1))
    assert "us_ma@1: effective_to must be after effective_from" in validate_packs((backwards,))


def test_a_pack_for_an_unknown_role_is_refused() -> None:
    odd = pack(CAP, applies=Applies(roles=frozenset({"servicer"})))
    assert "us_ma@1: roles must be among creditor, collector" in validate_packs((odd,))


# --- the version in force -----------------------------------------------------------------------

BOUNDARY = dt.date(2027, 1, 1)
MA = jurisdiction("US", "MA", None, "credit_card", "collector")


def two_versions() -> tuple[Pack, Pack]:
    old = pack(CAP, version="2023.01.01", applies=Applies(countries=frozenset({"US"}),
                                                          regions=frozenset({"US-MA"})),
               effective_to=BOUNDARY)  # fmt: skip
    new = replace(old, version="2027.01.01", effective_from=BOUNDARY, effective_to=None,
                  rules=(replace(CAP, params={**CAP.params, "max_attempts": 3}),))  # fmt: skip
    return old, new


def test_the_pack_in_force_is_chosen_by_its_effective_dates(use_packs) -> None:  # type: ignore[no-untyped-def]
    old, new = two_versions()
    assert validate_packs((CORE, old, new)) == []
    use_packs(CORE, old, new)
    before = dict((r.rule_id, (r, label)) for r, label in rules_for(MA, "call", BOUNDARY - dt.timedelta(days=1)))
    after = dict((r.rule_id, (r, label)) for r, label in rules_for(MA, "call", BOUNDARY))
    rule_before, label_before = before["us_ma.personal_phone_2in7"]
    rule_after, label_after = after["us_ma.personal_phone_2in7"]
    assert (rule_before.params["max_attempts"], label_before) == (2, "us_ma@2023.01.01")
    assert (rule_after.params["max_attempts"], label_after) == (3, "us_ma@2027.01.01")
    assert pack_versions(MA, BOUNDARY) == "core@2026.12.3,us_ma@2027.01.01"
    assert rules_for(MA, "call", dt.date(2022, 12, 31)) == tuple(
        (r, "core@2026.12.3") for r in CORE.rules
        if r.channels is None or "call" in r.channels)  # fmt: skip


def test_a_verdict_changes_with_the_version_in_force(use_packs) -> None:  # type: ignore[no-untyped-def]
    use_packs(CORE, *two_versions())
    last_old_day = BOUNDARY - dt.timedelta(days=1)
    history = tuple(PastContact(local_to_utc(last_old_day - dt.timedelta(days=d), 10, 0, NY),
                                "call", "no_answer", 10, "mobile") for d in (1, 2))  # fmt: skip
    facts = AccountFacts(1, "US", "MA", 100.0, address_zones=(NY,), history=history)
    step = Step("call", 10, (NY,), phone_type="mobile")
    old = evaluate(step, facts, day=last_old_day)
    assert (old.verdict, old.reasons) == ("defer", ("us_ma.personal_phone_2in7",))
    assert "us_ma@2023.01.01" in old.pack_versions
    new = evaluate(step, facts, day=BOUNDARY)
    assert new.verdict == "send" and "us_ma@2027.01.01" in new.pack_versions


def test_a_rule_can_carry_its_own_effective_dates(use_packs) -> None:  # type: ignore[no-untyped-def]
    dated = replace(CAP, effective_from=dt.date(2026, 6, 1), effective_to=dt.date(2026, 7, 1))
    use_packs(pack(dated, applies=Applies(regions=frozenset({"US-MA"}))))
    ids = lambda day: {r.rule_id for r, _ in rules_for(MA, "call", day)}  # noqa: E731
    assert ids(dt.date(2026, 5, 31)) == set()
    assert ids(dt.date(2026, 6, 1)) == {"us_ma.personal_phone_2in7"}
    assert ids(dt.date(2026, 6, 30)) == {"us_ma.personal_phone_2in7"}
    assert ids(dt.date(2026, 7, 1)) == set()


def test_the_shipped_tcpa_versions_meet_on_the_2025_order() -> None:
    j = jurisdiction("US", "TX", None, "credit_card", "creditor")
    assert "us_tcpa@1992.12.20" in pack_versions(j, dt.date(2025, 4, 10))
    assert "us_tcpa@2025.04.11" in pack_versions(j, dt.date(2025, 4, 11))
    assert "us_tcpa@1992.12.20" not in pack_versions(j, dt.date(2025, 4, 11))


def test_a_pack_is_not_applied_before_it_is_in_force() -> None:
    assert "us_ma" not in names(MA, dt.date(2022, 12, 31))
    assert "us_ma" in names(MA, dt.date(2023, 1, 1))
    assert "us_reg_f" not in names(MA, dt.date(2021, 11, 29))
    assert "us_reg_f" in names(MA, dt.date(2021, 11, 30))


# --- applicability ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("j", "expected", "absent"),
    [
        (jurisdiction("US", "MA", "Boston", "credit_card", "collector"),
         {"core", "us_reg_f", "us_tcpa", "us_scra", "us_ma"}, {"us_nyc", "us_wa", "us_ca"}),
        (jurisdiction("US", "MA", "Boston", "credit_card", "creditor"),
         {"core", "us_tcpa", "us_scra", "us_ma"}, {"us_reg_f"}),
        (jurisdiction("US", "ny", " Brooklyn ", "credit_card", "collector"),
         {"us_reg_f", "us_nyc"}, {"us_ma"}),
        (jurisdiction("US", "NY", "Buffalo", "credit_card", "collector"), {"us_reg_f"}, {"us_nyc"}),
        (jurisdiction("US", "NY", "Brooklyn", "credit_card", "creditor"), {"core"}, {"us_nyc"}),
        (jurisdiction("US", "NJ", "Brooklyn", "credit_card", "collector"), {"core"}, {"us_nyc"}),
        (jurisdiction("US", "WA", "Seattle", "consumer_loan", "collector"), {"us_wa"}, {"us_ca"}),
        (jurisdiction("US", "WA", "Seattle", "consumer_loan", "creditor"), {"core"}, {"us_wa"}),
        (jurisdiction("US", "CA", "Fresno", "credit_card", "creditor"),
         {"us_ca", "us_tcpa"}, {"us_reg_f"}),
        (jurisdiction("US", "CA", "Fresno", "credit_card", "collector"),
         {"us_reg_f", "us_tcpa"}, {"us_ca"}),
        (jurisdiction("CN", "BJ", None, "credit_card", "creditor"), {"core", "cn"}, {"us_tcpa"}),
        (jurisdiction("CN", "SH", None, "consumer_loan", "collector"), {"cn"}, set()),
        (jurisdiction("CN", "BJ", None, "mortgage", "creditor"), {"core"}, {"cn"}),
        (jurisdiction("GB", None, "London", "credit_card", "creditor"), {"core", "gb"}, {"cn"}),
        (jurisdiction("DE", None, None, "credit_card", "collector"), {"core"},
         {"gb", "cn", "us_reg_f"}),
        # A US account with no state: every state pack of the country applies (the strictest
        # reading), but a city pack still needs its city.
        (jurisdiction("US", None, "Springfield", "consumer_loan", "collector"),
         {"us_reg_f", "us_ma", "us_wa"}, {"us_nyc", "cn", "gb"}),
        (jurisdiction("US", None, "New York", "credit_card", "collector"), {"us_ma", "us_nyc"}, set()),
        (jurisdiction("US", None, None, "credit_card", "creditor"), {"us_ca", "us_ma"}, {"us_reg_f"}),
    ],
)  # fmt: skip
def test_packs_apply_by_country_region_city_product_and_role(
    j: policies.pack_model.Jurisdiction, expected: set[str], absent: set[str]
) -> None:
    found = names(j)
    assert expected <= found, found
    assert not absent & found, found


def test_jurisdiction_normalises_region_and_city() -> None:
    j = jurisdiction("US", "ma", "  New York ", "credit_card", "collector")
    assert (j.region, j.city) == ("MA", "new york")
    blank = jurisdiction("US", "", "  ", "credit_card", "collector")
    assert (blank.region, blank.city) == (None, None)


def test_applies_with_no_restriction_covers_everyone() -> None:
    assert Applies().covers(jurisdiction("ZZ", None, None, "anything", "creditor"))


def test_superseding_is_by_rule_and_follows_the_packs_that_apply() -> None:
    collector = {r.rule_id for r, _ in rules_for(MA, "call", DAY)}
    creditor = {r.rule_id for r, _ in rules_for(
        jurisdiction("US", "MA", None, "credit_card", "creditor"), "call", DAY)}  # fmt: skip
    assert {"us_reg_f.inconvenient_time", "us_reg_f.call_frequency_7in7"} <= collector
    assert not {"core.quiet_hours", "core.call_frequency_7in7"} & collector
    assert {"core.quiet_hours", "core.call_frequency_7in7"} <= creditor
