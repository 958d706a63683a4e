"""config/experiments.yaml and the assignment of accounts to arms: errors with YAML path and line,
the hash, arm shares within tolerance, stability across processes, eligibility and priority."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from outreach.kernel.facts import AccountRecord
from outreach.measurement.experiments import (
    HOLDOUT,
    ExperimentsError,
    arms_for,
    assign,
    check_experiments_text,
    parse_experiments,
    position,
)
from outreach.services.experiments import check
from outreach.settings import PROJECT_ROOT

GOOD = """experiments:
  - id: cadence
    status: running
    start: 2026-11-01
    arms:
      - name: champion
        share: 0.45
      - name: challenger
        ladder: ladders/default.yaml
        share: 0.45
    holdout: 0.10
"""


def errors_of(text_: str) -> list[tuple[str, int | None, str]]:
    model, errors, _ = check_experiments_text(text_)
    assert model is None
    return [(e.path, e.line, e.message) for e in errors]


def test_a_good_file_loads_with_its_shares_and_champion() -> None:
    config = parse_experiments(GOOD, str(PROJECT_ROOT / "config" / "experiments.yaml"))
    exp = config.experiments[0]
    assert exp.shares() == [("champion", 0.45), ("challenger", 0.45)]
    assert exp.champion_arm == "champion"
    assert (
        config.ladder_path("ladders/default.yaml")
        == PROJECT_ROOT / "config" / "ladders" / "default.yaml"
    )
    assert exp.runs_on(dt.date(2026, 11, 1)) and not exp.runs_on(dt.date(2026, 10, 31))


def test_shares_that_do_not_add_up_name_the_path_and_line() -> None:
    found = errors_of(GOOD.replace("holdout: 0.10", "holdout: 0.20"))
    assert found == [("experiments[0].arms", 6, "the shares and the holdout add up to 1.1, not 1")]


def test_an_unknown_key_names_its_path_line_and_the_known_keys() -> None:
    found = errors_of(
        GOOD.replace(
            "        share: 0.45\n      - name: challenger",
            "        share: 0.45\n        weight: 2\n      - name: challenger",
        )
    )
    assert len(found) == 1
    path, line, message = found[0]
    assert (path, line) == ("experiments[0].arms[0].weight", 8)
    assert message.startswith("unknown key; known keys: ladder, name, share")


def test_semantic_errors_each_with_path_and_line() -> None:
    bad = (
        GOOD.replace("status: running", "status: live")
        .replace("name: challenger", "name: champion")
        .replace("start: 2026-11-01", "start: 2026-11-01\n    end: 2026-10-01")
    )
    found = errors_of(bad)
    assert ("experiments[0].status", 3, "must be one of draft, running, stopped") in found
    assert ("experiments[0].end", 5, "end is before start") in found
    assert ("experiments[0].arms[1].name", 9, "'champion' appears twice") in found


def test_holdout_is_not_an_arm_name_and_a_bad_arm_ladder_is_reported(tmp_path: Path) -> None:
    found = errors_of(GOOD.replace("name: challenger", "name: holdout"))
    assert found[0][0] == "experiments[0].arms[1].name" and "holdout" in found[0][2]
    (tmp_path / "broken.yaml").write_text("name: x\nstages: []\nbogus: 1\n", encoding="utf-8")
    path = tmp_path / "experiments.yaml"
    path.write_text(GOOD.replace("ladders/default.yaml", "broken.yaml"), encoding="utf-8")
    problems = check(path)
    assert problems[0].startswith(f"{path}: experiments[0].arms[1].ladder (line 9): the ladder")
    assert any(p.startswith(f"{tmp_path / 'broken.yaml'}: bogus") for p in problems[1:])
    with pytest.raises(ExperimentsError):
        parse_experiments(GOOD.replace("0.10", "0.5"), str(path))


def test_assignment_is_the_documented_hash() -> None:
    for account_id in (1, 2, 99, 123456):
        digest = hashlib.sha256(f"cadence:{account_id}".encode()).hexdigest()
        u = int(digest[:16], 16) / 2**64
        assert position("cadence", account_id) == u
        expected = "a" if u < 0.3 else ("b" if u < 0.9 else HOLDOUT)
        assert assign("cadence", account_id, [("a", 0.3), ("b", 0.6)]) == expected


def test_arm_shares_are_within_four_sigma_over_20000_accounts() -> None:
    shares = [("champion", 0.45), ("challenger", 0.35), ("third", 0.1)]
    n = 20_000
    counts = Counter(assign("exp-1", i, shares) for i in range(1, n + 1))
    expected = dict(shares) | {HOLDOUT: 0.1}
    for arm, share in expected.items():
        sigma = math.sqrt(n * share * (1 - share))
        assert abs(counts[arm] - n * share) <= 4 * sigma, (arm, counts[arm])
    # Another experiment id shuffles accounts independently of this one.
    other = [assign("exp-2", i, shares) for i in range(1, 2001)]
    same = sum(a == b for a, b in zip(other, (assign("exp-1", i, shares) for i in range(1, 2001)),
                                      strict=True))  # fmt: skip
    assert same < 0.5 * 2000


def test_assignment_is_the_same_in_another_process() -> None:
    ids = list(range(1, 400, 7))
    here = [assign("cadence", i, [("a", 0.5), ("b", 0.4)]) for i in ids]
    code = (
        "from outreach.measurement.experiments import assign;"
        f"print(','.join(assign('cadence', i, [('a', 0.5), ('b', 0.4)]) for i in {ids}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert out.stdout.strip().split(",") == here


def _account(account_id: int, country: str = "US", product: str = "credit_card",
             segment: str | None = None) -> AccountRecord:  # fmt: skip
    return AccountRecord(
        id=account_id,
        account_ref=f"A{account_id}",
        product=product,
        balance=0,
        past_due=0,
        due_date=None,
        segment=segment,  # type: ignore[arg-type]
        country=country,
        region="NY",
        language="en",
        address_zones=(),
    )


class _NoRows:
    """A connection with no stored assignment (arms_for's only query)."""

    def execute(self, *_: object, **__: object) -> list[tuple[int, str, str]]:
        return []


def test_eligibility_and_the_first_listed_experiment_takes_an_account() -> None:
    text_ = """experiments:
  - id: loans-only
    status: running
    arms: [{name: a, share: 1.0}]
    eligibility: {products: [consumer_loan], jurisdictions: [US-NY, GB]}
  - id: everyone
    status: running
    arms: [{name: b, share: 1.0}]
"""
    config = parse_experiments(text_, "experiments.yaml")
    running = config.running(dt.date(2026, 11, 23))
    accounts = [
        _account(1, product="consumer_loan"),
        _account(2),
        _account(3, "CN", "consumer_loan"),
    ]
    found = arms_for(_NoRows(), running, accounts)  # type: ignore[arg-type]
    assert {a: (arm.experiment_id, arm.arm) for a, arm in found.arms.items()} == {
        1: ("loans-only", "a"),
        2: ("everyone", "b"),
        3: ("everyone", "b"),
    }
    assert sorted(found.new) == [("everyone", 2, "b"), ("everyone", 3, "b"), ("loans-only", 1, "a")]
    assert config.running(dt.date(2026, 11, 23), promoted=["loans-only"])[0].id == "everyone"
