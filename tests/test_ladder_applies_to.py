"""Issue 13 item 4: stages and actions by jurisdiction (``applies_to``): checked by config check
with the YAML path, used by the planner (an action that does not apply is not planned and is no
missing prerequisite), shown by explain and by the ladder diff; the default ladder sends the US
validation notice to US collector accounts only, and China and the UK their own early notices."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text

from outreach.dispatch.dispatcher import dispatch_range
from outreach.kernel.facts import AccountRecord, Destination
from outreach.media.letters.channel import PrintChannel
from outreach.operations.ladder_diff import LadderDiff, diff_accounts
from outreach.planning.explain import explain_account
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import (
    LANGUAGES,
    Ladder,
    check_ladder_text,
    ladder_version,
    load_ladder,
)
from outreach.planning.planner import iter_plan, plan_account
from outreach.planning.templates_lint import lint_template
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
LADDER = load_ladder(DEFAULT)
EARLY_NOTICES = ("validation_notice", "cn_early_notice", "uk_arrears_notice")


def ladder_of(yaml_text: str) -> Ladder:
    model, errors = check_ladder_text(yaml_text)
    assert model is not None, [str(e) for e in errors]
    return Ladder(model, ladder_version(model), "test.yaml")


def account(country: str, region: str | None, *, dpd: int = 5, account_id: int = 1,
            zone: str = "America/New_York") -> AccountRecord:  # fmt: skip
    postal = Destination(account_id * 10, "postal", None, (), True, False, False, False, False,
                         False, False, "self")  # fmt: skip
    return AccountRecord(
        id=account_id, account_ref=f"A{account_id}", product="credit_card",
        balance=Decimal("1000.00"), past_due=Decimal("100.00"),
        due_date=DAY - dt.timedelta(days=dpd), segment=None, country=country, region=region,
        language="en", address_zones=(zone,), destinations=[postal],
    )  # fmt: skip


def planned_actions(ladder: Ladder, acc: AccountRecord, role: str = "collector") -> list[str]:
    _, _, steps = plan_account(ladder, acc, DAY, role=role)
    return [s.action.id for s in steps]


# --- config check -----------------------------------------------------------------------------

BAD = """
name: x
stages:
  - id: s1
    entry: {dpd_min: 1}
    applies_to: {countries: [US, XX]}
    actions:
      - id: a1
        channel: letter
        template: letter/payment_reminder
        cadence: {every_days: 30, max_times: 1}
        applies_to: {countries: [US], regions: [US-CA, US-ZZ, CN-SH], role: collector}
"""


def test_config_check_names_the_path_of_unknown_countries_regions_and_products() -> None:
    model, errors = check_ladder_text(BAD)
    assert model is None
    by_path = {e.path: e.message for e in errors}
    assert "'XX' is not an ISO 3166-1" in by_path["stages[0].applies_to.countries[1]"]
    assert by_path["stages[0].actions[0].applies_to.regions[1]"] == "'ZZ' is not a region of US"
    assert "not in the countries listed (US)" in by_path["stages[0].actions[0].applies_to.regions[2]"]
    assert "stages[0].actions[0].applies_to.regions[0]" not in by_path  # US-CA is fine
    assert all(e.line is not None for e in errors)
    # Unknown products and roles are schema errors, with their path too.
    _, errors = check_ladder_text(BAD.replace("role: collector", "role: agent").replace(
        "applies_to: {countries: [US, XX]}", "applies_to: {products: [mortgage]}"))
    paths = [e.path for e in errors]
    assert "stages[0].applies_to.products[0]" in paths or "stages[0].applies_to.products.0" in paths
    assert "stages[0].actions[0].applies_to.role" in paths


def test_a_ladder_without_applies_to_keeps_its_version() -> None:
    # The version is the hash of the ladder's meaning: a key nobody uses does not change it.
    model, _ = check_ladder_text(DEFAULT.read_text())
    assert model is not None
    with_key = ladder_version(model)
    plain = DEFAULT.read_text().replace("        applies_to: {countries: [US], role: collector}\n", "")
    other, _ = check_ladder_text(plain)
    assert other is not None and ladder_version(other) != with_key
    import hashlib
    import json

    dump = other.model_dump(mode="json")
    loop_keys = ("promise", "broken_promise_within_days", "arrangement", "hardship", "any_of",
                 "score_band")  # fmt: skip

    def unset_loop_keys(entry: dict[str, object]) -> None:
        # The resolution loop's entry keys and the score band (added later) are left out while
        # unset, likewise.
        for key in loop_keys:
            if entry.get(key, 0) is None:
                del entry[key]
        for condition in entry.get("any_of") or ():
            unset_loop_keys(condition)  # type: ignore[arg-type]

    for stage in dump["stages"]:
        for a in stage["actions"]:
            if a["applies_to"] is None:
                del a["applies_to"]
        del stage["applies_to"]
        unset_loop_keys(stage["entry"])
    for a in dump["resolution_actions"]:
        if a["applies_to"] is None:
            del a["applies_to"]
    old_way = hashlib.sha256(json.dumps(dump, sort_keys=True, separators=(",", ":")).encode())
    assert ladder_version(other) == old_way.hexdigest()[:12]


# --- the default ladder -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "region", "zone", "role", "notice"),
    [
        ("US", "NY", "America/New_York", "collector", "validation_notice"),
        ("US", "GU", "Pacific/Guam", "collector", "validation_notice"),
        ("US", "NY", "America/New_York", "creditor", None),
        ("CN", "SH", "Asia/Shanghai", "collector", "cn_early_notice"),
        ("CN", "HB", "Asia/Shanghai", "creditor", "cn_early_notice"),
        ("GB", None, "Europe/London", "creditor", "uk_arrears_notice"),
    ],
)
def test_the_default_ladder_sends_each_jurisdiction_its_own_early_notice(
    country: str, region: str | None, zone: str, role: str, notice: str | None
) -> None:
    acc = account(country, region, zone=zone)
    early = [a for a in planned_actions(LADDER, acc, role) if a in EARLY_NOTICES]
    assert early == ([notice] if notice else [])


def test_the_new_early_notices_render_and_pass_the_template_lint() -> None:
    for name in ("cn_early_notice", "uk_arrears_notice"):
        assert lint_template("letter", f"letter/{name}", LANGUAGES, (".txt",),
                             reaches_us=False) == []  # China and the UK only (applies_to)
        for lang in LANGUAGES:
            assert (PROJECT_ROOT / "templates" / lang / "letter" / f"{name}.txt").is_file()


# --- prerequisites, stages ------------------------------------------------------------------------

REQUIRES = """
name: x
stages:
  - id: notice
    entry: {dpd_min: 1, dpd_max: 10}
    actions:
      - id: us_notice
        channel: letter
        template: letter/payment_reminder
        cadence: {every_days: 365, max_times: 1}
        applies_to: {countries: [US]}
  - id: later
    entry: {dpd_min: 11}
    requires:
      - {stage: notice, action: us_notice}
    actions:
      - id: reminder
        channel: letter
        template: letter/payment_reminder
        cadence: {every_days: 30, max_times: 3}
"""


def test_a_required_step_that_does_not_apply_is_not_missing() -> None:
    ladder = ladder_of(REQUIRES)
    # A US account that never had the US notice catches up at it.
    us = account("US", "NY", dpd=20)
    _, _, steps = plan_account(ladder, us, DAY)
    assert [(s.stage.id, s.action.id, s.catch_up is not None) for s in steps] == [
        ("notice", "us_notice", True)]
    # A Chinese account is not required to have it: its own stage's actions go.
    cn = account("CN", "SH", dpd=20, zone="Asia/Shanghai")
    _, _, steps = plan_account(ladder, cn, DAY)
    assert [(s.stage.id, s.action.id, s.catch_up) for s in steps] == [("later", "reminder", None)]
    # And the notice's own stage plans nothing for it.
    assert planned_actions(ladder, account("CN", "SH", dpd=5, zone="Asia/Shanghai")) == []


def test_a_stage_that_does_not_apply_is_passed_by_for_the_next_that_matches() -> None:
    ladder = ladder_of(REQUIRES.replace(
        "  - id: notice\n    entry: {dpd_min: 1, dpd_max: 10}\n",
        "  - id: notice\n    entry: {dpd_min: 1, dpd_max: 10}\n    applies_to: {regions: [US-CA]}\n",
    ).replace("entry: {dpd_min: 11}", "entry: {dpd_min: 1}"))  # fmt: skip
    stage, _, _ = plan_account(ladder, account("US", "CA", zone="America/Los_Angeles"), DAY)
    assert stage is not None and stage.id == "notice"
    stage, _, steps = plan_account(ladder, account("US", "NY"), DAY)
    assert stage is not None and stage.id == "later"
    assert [(s.action.id, s.catch_up) for s in steps] == [("reminder", None)]


# --- explain and the ladder diff -------------------------------------------------------------------


def test_explain_says_why_an_action_does_not_apply() -> None:
    out = explain_account(LADDER, account("CN", "SH", zone="Asia/Shanghai"), DAY)
    [skipped] = [x for x in out["actions_not_applicable"] if x["action"] == "validation_notice"]
    assert skipped["why"] == (
        "action validation_notice applies_to: country CN is not in US")
    assert skipped["applies_to"] == {"countries": ["US"], "role": "collector"}
    assert "validation_notice" not in [a["action"] for a in out["actions"]]
    assert "cn_early_notice" in [a["action"] for a in out["actions"]]

    creditor = explain_account(LADDER, account("US", "NY"), DAY, role="creditor")
    [why] = [x["why"] for x in creditor["actions_not_applicable"]
             if x["action"] == "validation_notice"]  # fmt: skip
    assert why == "action validation_notice applies_to: role creditor is not collector"


def test_the_ladder_diff_shows_the_steps_that_stop_applying() -> None:
    # The ladder before item 4: the validation notice for everyone, no early notices of China
    # and the UK.
    current = DEFAULT.read_text()
    start, end = current.index("      # China's and the UK's"), current.index("      - id: sms_reminder")
    old = ladder_of((current[:start] + current[end:]).replace(
        "        applies_to: {countries: [US], role: collector}\n", ""))
    diff = LadderDiff(DAY, old, LADDER)
    accounts = {1: account("CN", "SH", zone="Asia/Shanghai"), 2: account("US", "NY", account_id=2)}
    diff_accounts(diff, accounts, role="collector", step_hook=lambda step, _acc: step)
    rows = {(r["stage"], r["action"]): r for r in diff.as_dict()["contacts"]}
    assert rows[("early_reminder", "validation_notice")]["moves"] == {"send->not_applicable": 1}
    assert rows[("early_reminder", "validation_notice")]["removed"] == 1
    assert rows[("early_reminder", "cn_early_notice")]["moves"] == {"none->send": 1}
    assert ("early_reminder", "uk_arrears_notice") not in rows  # applies to neither account


# --- end to end: plan and print ------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def printer(engine: Engine, tmp_path: Path) -> Iterator[PrintChannel]:
    channel = build_channel("letter", {"backend": "print", "drop": (tmp_path / "drop").as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=str(engine.url))  # fmt: skip
    assert isinstance(channel, PrintChannel)
    yield channel
    channel.close()


@f.needs_cjk_font
def test_a_chinese_account_is_mailed_the_china_notice_not_the_us_validation_notice(
    engine: Engine, printer: PrintChannel, tmp_path: Path
) -> None:
    cn = f.add_account(engine, as_of=DAY, dpd=5, country="CN", region="SH",
                       address_zones="Asia/Shanghai", language="zh-CN",
                       phones=[{"value": "+8613800138000", "zones": "Asia/Shanghai"}])  # fmt: skip
    us = f.add_account(engine, as_of=DAY, dpd=5)
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    with engine.connect() as conn:
        sent = dict(conn.execute(text(
            "SELECT account_id, action FROM contact WHERE channel = 'letter' AND state = 'sent'")).all())  # fmt: skip
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND state = 'sent' "
                                "AND channel = 'letter'"), {"a": cn["account_id"]}).scalar_one()  # fmt: skip
    assert sent == {cn["account_id"]: "cn_early_notice", us["account_id"]: "validation_notice"}
    pdf = (tmp_path / "drop" / DAY.isoformat() / "letters" / f"{key}.pdf").read_bytes()
    words = "".join("".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "逾期还款提醒" in words and "您的权利" in words
    assert "cfpb" not in words.lower() and "Regulation" not in words


def test_explain_text_names_the_action_that_does_not_apply(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from outreach.entry.cli import main

    cn = f.add_account(engine, as_of=DAY, dpd=5, country="CN", region="SH",
                       address_zones="Asia/Shanghai",
                       phones=[{"value": "+8613800138000", "zones": "Asia/Shanghai"}])  # fmt: skip
    monkeypatch.setenv("OUTREACH_DATABASE_URL", str(engine.url))
    assert main(["explain", cn["account_ref"], "--as-of", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert ("- validation_notice via letter: not planned, action validation_notice applies_to: "
            "country CN is not in US") in out


@f.needs_cjk_font
def test_a_row_planned_before_the_ladder_said_it_does_not_apply_is_not_sent(
    engine: Engine, printer: PrintChannel
) -> None:
    # Planned under a ladder that sent the validation notice to everyone; the ladder in force
    # at send time (the default) says it is for US collector accounts only.
    old = ladder_of(DEFAULT.read_text().replace(
        "        applies_to: {countries: [US], role: collector}\n", ""))
    cn = f.add_account(engine, as_of=DAY, dpd=5, country="CN", region="SH",
                       address_zones="Asia/Shanghai",
                       phones=[{"value": "+8613800138000", "zones": "Asia/Shanghai"}])  # fmt: skip
    for _ in iter_plan(engine, old, DAY, 1000):
        pass
    counts = dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=printer)
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT action, state FROM contact WHERE account_id = :a AND channel = 'letter'"),
            {"a": cn["account_id"]}).all())  # fmt: skip
        reasons = conn.execute(text(
            "SELECT d.reasons FROM policy_decision d JOIN contact c ON c.key = d.contact_key "
            "WHERE d.phase = 'send' AND c.action = 'validation_notice'")).scalar_one()  # fmt: skip
    assert rows["validation_notice"] == "suppressed" and reasons == "ladder.not_applicable"
    assert rows["cn_early_notice"] == "sent" and counts.sent == 1


def test_regulation_f_disclosures_are_linted_only_where_an_action_can_reach_a_us_consumer(
) -> None:
    """The China and UK early notices go only to accounts in those countries (applies_to), so a
    collector's ladder does not need Regulation F's debt-collector disclosure in them; the same
    template on an action that can reach the US does."""
    from outreach.planning.templates_lint import lint_template

    for template in ("letter/cn_early_notice", "letter/uk_arrears_notice"):
        abroad = lint_template("letter", template, ("en", "zh-CN"), (".txt",), role="collector",
                               reaches_us=False)  # fmt: skip
        assert abroad == []
        at_home = lint_template("letter", template, ("en", "zh-CN"), (".txt",), role="collector")
        assert any("1006.18(e)" in problem for problem in at_home)
