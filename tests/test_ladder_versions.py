"""A ladder version becomes active only when a second person approves it; from then on the
active version is the ladder in force, and every decision records it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from outreach.dispatch.send_rules import send_rules
from outreach.entry.cli import main
from outreach.planning.ladder import load_ladder
from outreach.planning.ladder_versions import (
    VersionError,
    approve,
    history,
    ladder_in_force,
    propose,
)
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import get_engine
from tests import factories as f

DAY = dt.date(2026, 12, 1)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"


@pytest.fixture
def engine(app_data: Path) -> Engine:
    return f.database(str(get_engine().url))


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    """The default ladder with the SMS reminder every 2 days instead of 3."""
    path = tmp_path / "draft.yaml"
    text_ = DEFAULT.read_text().replace("cadence: {every_days: 3, max_times: 4}",
                                        "cadence: {every_days: 2, max_times: 4}")  # fmt: skip
    assert text_ != DEFAULT.read_text()
    path.write_text(text_)
    return path


def test_before_any_approval_the_configured_file_is_in_force(engine: Engine) -> None:
    assert ladder_in_force(engine=engine).version == load_ladder(DEFAULT).version


def test_the_proposer_cannot_approve_their_own_version(engine: Engine, draft: Path) -> None:
    version = propose(draft, "alice", engine=engine)
    with pytest.raises(VersionError, match="a second person must approve it"):
        approve(version, "alice", engine=engine)
    assert ladder_in_force(engine=engine).version == load_ladder(DEFAULT).version


def test_a_second_persons_approval_makes_it_the_ladder_in_force_everywhere(
    engine: Engine, draft: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = propose(DEFAULT, "alice", engine=engine)
    approve(first, "bob", engine=engine)
    second = propose(draft, "carol", engine=engine)
    record = approve(second, "bob", engine=engine)
    assert (record.state, record.proposed_by, record.approved_by) == ("active", "carol", "bob")
    states = {r.version: r.state for r in history(engine=engine)}
    assert states == {first: "retired", second: "active"}
    # The file in config/ is a draft now: editing it changes nothing in force.
    edited = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", edited)
    (edited / "ladders" / "default.yaml").write_text("name: broken\n")
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(edited))
    assert ladder_in_force(engine=engine).version == second
    assert send_rules(engine).actions  # the dispatcher judges with the approved version


def test_every_decision_records_the_approved_version(engine: Engine, draft: Path) -> None:
    f.add_account(engine, as_of=DAY, dpd=3)
    version = propose(draft, "alice", engine=engine)
    approve(version, "bob", engine=engine)
    for _ in iter_plan(engine, ladder_in_force(engine=engine), DAY, 100):
        pass
    with engine.connect() as conn:
        versions = set(conn.execute(text(
            "SELECT config_version FROM contact UNION SELECT config_version FROM policy_decision"
        )).scalars())
    assert versions == {version}


def test_bad_proposals_and_approvals_are_refused_with_why(
    engine: Engine, draft: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nstages: []\n")
    from outreach.planning.ladder import LadderError

    with pytest.raises(LadderError):
        propose(broken, "alice", engine=engine)
    version = propose(draft, "alice", engine=engine)
    with pytest.raises(VersionError, match="already on record"):
        propose(draft, "dave", engine=engine)
    with pytest.raises(VersionError, match="no proposed version"):
        approve("000000000000", "bob", engine=engine)
    with pytest.raises(VersionError, match="say who you are"):
        approve(version, "  ", engine=engine)
    approve(version, "bob", engine=engine)
    with pytest.raises(VersionError, match="is active, not proposed"):
        approve(version, "erin", engine=engine)


def test_the_commands_propose_approve_and_list(
    engine: Engine, draft: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "propose", str(draft), "--by", "alice"]) == 0
    version = capsys.readouterr().out.split("version ")[1].split(";")[0]
    assert main(["config", "approve", version, "--by", "alice"]) == 1
    assert "second person" in capsys.readouterr().err
    assert main(["config", "approve", version, "--by", "bob"]) == 0
    assert main(["config", "versions"]) == 0
    out = capsys.readouterr().out
    assert f"in force: {version}" in out and "approved by bob" in out
