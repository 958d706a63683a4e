"""Compliance scenarios from the regulations' own rules and examples, run end to end through
``outreach import``, ``outreach plan --json`` and ``outreach explain --json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outreach.entry.cli import main
from outreach.entry.scenarios import ScenarioError, run_scenario

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.json"))


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_verdicts_match_the_regulation(path: Path) -> None:
    result = run_scenario(path)
    assert result.ok, "\n".join(result.mismatches)
    assert result.plan, "the scenario planned nothing"


def test_a_wrong_expectation_is_reported_with_its_field(tmp_path: Path) -> None:
    spec = json.loads(SCENARIOS[0].read_text(encoding="utf-8"))
    spec["expect"][0]["verdict"] = "block" if spec["expect"][0]["verdict"] != "block" else "send"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(spec), encoding="utf-8")
    result = run_scenario(wrong)
    assert not result.ok
    assert any(".verdict: expected" in m for m in result.mismatches)
    assert main(["scenario", str(wrong)]) == 1


def test_a_malformed_scenario_names_the_missing_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"as_of": "2026-11-23", "records": [{"record": "account"}],
                               "expect": [{"account_id": "A1"}]}), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"expect\[0\]: needs account_id and action"):
        run_scenario(bad)
