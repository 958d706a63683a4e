"""Ladder config: the default is valid; each kind of mistake is reported with its YAML path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from outreach.entry.cli import main
from outreach.planning.ladder import LadderError, check_ladder_text, ladder_version, load_ladder
from outreach.settings import PROJECT_ROOT

DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"


def errors_of(text: str) -> list[str]:
    model, errors = check_ladder_text(text)
    assert model is None
    return [str(e) for e in errors]


def test_default_ladder_is_valid_and_versioned() -> None:
    ladder = load_ladder(DEFAULT)
    assert len(ladder.version) == 12
    assert [s.id for s in ladder.stages][0] == "early_reminder"


def test_version_ignores_comments_and_layout_but_not_meaning() -> None:
    text = DEFAULT.read_text()
    a, _ = check_ladder_text(text)
    b, _ = check_ladder_text("# a comment\n" + text.replace("{every_days: 3, max_times: 4}",
                                                            "\n          every_days: 3\n          max_times: 4"))
    c, _ = check_ladder_text(text.replace("max_times: 4", "max_times: 5"))
    assert a and b and c
    assert ladder_version(a) == ladder_version(b) != ladder_version(c)


def test_stage_for_picks_first_matching_stage() -> None:
    ladder = load_ladder(DEFAULT)
    assert ladder.stage_for(1, Decimal(100), None, "credit_card").id == "early_reminder"
    assert ladder.stage_for(16, Decimal(100), None, "credit_card").id == "collections_call"
    assert ladder.stage_for(16, Decimal(5), None, "credit_card") is None  # below min balance
    assert ladder.stage_for(300, Decimal(5000), None, "consumer_loan").id == "legal_referral"


BAD_CADENCE = """
name: x
stages:
  - id: s1
    entry: {dpd_min: 1}
    actions:
      - id: a1
        channel: sms
        template: sms/reminder
        cadence: {every_days: 0, max_times: 2}
"""


def test_schema_error_names_path_and_line() -> None:
    [err] = errors_of(BAD_CADENCE)
    assert err.startswith("stages[0].actions[0].cadence.every_days (line 10)")


def test_unknown_channel_and_unknown_key_are_reported() -> None:
    errs = errors_of(BAD_CADENCE.replace("channel: sms", "channel: fax")
                     .replace("every_days: 0", "every_days: 1, often: true"))
    assert any(e.startswith("stages[0].actions[0].channel") for e in errs)
    assert any(e.startswith("stages[0].actions[0].cadence.often") for e in errs)


def test_semantic_errors_missing_template_bad_prerequisite_duplicate_ids() -> None:
    text = """
name: x
stages:
  - id: s1
    entry: {dpd_min: 1, dpd_max: 10}
    actions:
      - {id: a1, channel: sms, template: sms/nope, cadence: {every_days: 1, max_times: 1}}
      - {id: a1, channel: call, cadence: {every_days: 1, max_times: 1}}
  - id: s2
    entry: {dpd_min: 20, dpd_max: 11}
    requires: [{stage: s9, action: a1}]
    actions:
      - {id: b1, channel: email, cadence: {every_days: 1, max_times: 1}}
"""
    errs = errors_of(text)
    assert any(e.startswith("stages[0].actions[0].template") and "sms/nope" in e for e in errs)
    assert any(e.startswith("stages[0].actions[1].id") and "duplicate" in e for e in errs)
    assert any(e.startswith("stages[1].entry.dpd_max") for e in errs)
    assert any(e.startswith("stages[1].requires[0].stage") for e in errs)
    assert any(e.startswith("stages[1].actions[0].template") for e in errs)


def test_broken_yaml_is_an_error_with_a_line() -> None:
    [err] = errors_of("name: x\nstages: [\n  - id: 1\n")
    assert "not valid YAML" in err and "line" in err


def test_load_ladder_raises_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CADENCE)
    with pytest.raises(LadderError) as info:
        load_ladder(path)
    assert "every_days" in str(info.value)


def test_config_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEFAULT)]) == 0
    assert "OK, version" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CADENCE)
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "stages[0].actions[0].cadence.every_days (line 10)" in err
    assert main(["config", "check", str(tmp_path / "missing.yaml")]) == 2
