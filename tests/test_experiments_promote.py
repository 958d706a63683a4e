"""``outreach experiments``: results from the ledger and payments, and the promotion of a winner
through the ladder's two-person approval, end to end through the command line."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from outreach.entry.cli import main
from outreach.planning.experiment_arms import arm_ladders
from outreach.planning.ladder import load_ladder
from outreach.planning.ladder_versions import ladder_in_force
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f
from tests.test_experiments_planner import write_experiments

DAY = dt.date(2026, 11, 23)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"


@pytest.fixture
def engine(app_data: Path) -> Engine:
    return f.database(f"sqlite:///{app_data / 'outreach.db'}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_results_per_arm_are_computed_from_payments_and_the_ledger(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    write_experiments(tmp_path, monkeypatch)
    accounts = [f.add_account(engine, as_of=DAY, dpd=5, past_due="200.00") for _ in range(12)]
    for _ in iter_plan(engine, load_ladder(DEFAULT), DAY, 1000):
        pass
    with engine.connect() as conn:
        arm = dict(conn.execute(text("SELECT account_id, arm FROM experiment_assignment")).all())
    # Every third account pays 50.00 after it entered; one payment before entry does not count.
    paid: dict[str, Decimal] = {"champion": Decimal(0), "challenger": Decimal(0)}
    for i, acc in enumerate(accounts):
        if i % 3 == 0:
            f.add_payment(engine, acc["account_id"], DAY + dt.timedelta(days=2), "50.00")
            paid[arm[acc["account_id"]]] += Decimal(50)
    f.add_payment(engine, accounts[1]["account_id"], DAY - dt.timedelta(days=3), "10.00")
    code, out, _ = run(capsys, "experiments", "results", "cadence", "--from", "2026-11-23",
                       "--to", "2026-12-01", "--json")  # fmt: skip
    assert code == 0
    found = json.loads(out)
    by_arm = {a["arm"]: a for a in found["arms"]}
    assert set(by_arm) == {"champion", "challenger"}
    for name, row in by_arm.items():
        n = sum(1 for v in arm.values() if v == name)
        owed = Decimal(200) * n  # the snapshot the plan wrote the day it was assigned
        assert row["accounts"] == n
        assert Decimal(row["collected"]) == paid[name]
        assert Decimal(row["past_due_at_entry"]) == owed
        assert row["recovery_rate"]["value"] == pytest.approx(float(paid[name] / owed))
        assert row["contact_rate"]["value"] == 0.0  # planned, nothing sent yet
    assert by_arm["challenger"]["tests"]["recovery_rate"]["p"] is not None
    code, out, _ = run(capsys, "experiments", "results", "cadence", "--from", "2026-11-23",
                       "--to", "2026-12-01")  # fmt: skip
    assert code == 0 and "recovery" in out and "vs champion" in out


def test_a_winner_is_promoted_only_with_a_second_persons_approval(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    write_experiments(tmp_path, monkeypatch)
    challenger = load_ladder(tmp_path / "challenger.yaml")
    code, _, err = run(capsys, "experiments", "promote", "cadence", "champion", "--by", "alice")
    assert code == 2 and "ladder in force: nothing to promote" in err
    code, out, _ = run(capsys, "experiments", "promote", "cadence", "challenger", "--by", "alice")
    assert code == 0 and challenger.version in out
    # Proposed, not in force; the experiment still runs.
    assert ladder_in_force(engine=engine).version != challenger.version
    assert arm_ladders(engine, DAY, ladder_in_force(engine=engine)) is not None
    code, _, err = run(capsys, "config", "approve", challenger.version, "--by", "alice")
    assert code != 0 and "a second person must approve it" in err
    assert ladder_in_force(engine=engine).version != challenger.version
    code, _, _ = run(capsys, "config", "approve", challenger.version, "--by", "bob")
    assert code == 0
    assert ladder_in_force(engine=engine).version == challenger.version
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT action, arm, ladder_version, actor FROM experiment_event ORDER BY id")
        ).all()
    assert [tuple(e) for e in events] == [
        ("winner_proposed", "challenger", challenger.version, "alice"),
        ("promoted", "challenger", challenger.version, "bob"),
    ]
    # Promoted: it no longer assigns or plans; every account plans with the new ladder in force.
    assert arm_ladders(engine, DAY, ladder_in_force(engine=engine)) is None
    code, out, _ = run(capsys, "experiments", "list", "--json")
    assert json.loads(out)[0]["status"] == "promoted"
    code, _, err = run(capsys, "experiments", "promote", "cadence", "challenger", "--by", "carol")
    assert code == 2 and "already promoted" in err


def test_check_reports_the_file_and_the_whole_config_check_includes_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = write_experiments(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "experiments", "check")
    assert code == 0 and "OK" in out
    path.write_text(path.read_text().replace("holdout: 0.0", "holdout: 0.3"))
    code, _, err = run(capsys, "experiments", "check")
    assert code == 1 and "experiments[0].arms (line 6): the shares and the holdout add up" in err
    code, _, err = run(capsys, "config", "check", "--all")
    assert code == 1 and f"{path}: experiments[0].arms (line 6)" in err
