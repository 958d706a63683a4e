"""config/policy.yaml: the role that decides which packs apply, validated with its path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from outreach.entry.cli import main
from outreach.kernel.policy_settings import PolicySettingsError, parse_policy, policy_settings
from outreach.services.config import ConfigInvalid
from outreach.services.daily import plan_batches


def test_shipped_policy_is_a_collector_with_no_agencies() -> None:
    chosen = policy_settings()
    assert chosen.role == "collector" and chosen.approved_agencies == frozenset()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("role: agency\n", "role (line 1): Input should be 'creditor' or 'collector'"),
        ("role: creditor\ncolour: blue\n",
         "colour (line 2): unknown key; known keys: approved_agencies, householding, role"),
        ("approved_agencies: acme\n", "approved_agencies (line 1): must be a list"),
        ("approved_agencies: [acme, 7]\n", "approved_agencies[1] (line 1): Input should be a valid string"),
        ("- role\n", "(top level) (line 1): must be a mapping"),
    ],
)
def test_bad_policy_names_the_setting(text: str, message: str) -> None:
    with pytest.raises(PolicySettingsError) as caught:
        parse_policy(text, "policy.yaml")
    assert caught.value.lines() == [f"policy.yaml: {message}"]


def test_a_broken_policy_stops_the_run_before_planning(
    app_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("role: lender\n", encoding="utf-8")
    monkeypatch.setenv("OUTREACH_POLICY", str(bad))
    with pytest.raises(ConfigInvalid, match=r"policy.yaml: role \(line 1\): Input should be"):
        plan_batches(dt.date(2026, 11, 23), 100)
    assert main(["policy", "check"]) == 1
    assert "role (line 1): Input should be 'creditor' or 'collector'" in capsys.readouterr().err


def test_policy_check_lists_the_packs_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "--as-of", "2024-06-01"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert " in force on 2024-06-01" in lines["us_tcpa@1992.12.20"]
    assert "not in force on 2024-06-01" in lines["us_tcpa@2025.04.11"]
