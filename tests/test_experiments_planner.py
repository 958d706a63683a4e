"""Champion-challenger in the daily plan and at send time, on a real database: each account is
planned with its arm's ladder and its rows carry the arm; assignment is sticky; the gates judge
every arm alike; dispatch judges a contact with its own arm's ladder."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range
from outreach.dispatch.send_rules import send_rules
from outreach.kernel.ledger import DueContact
from outreach.measurement.experiments import assign, load_experiments
from outreach.planning.ladder import Ladder, load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
EMAIL_REMINDER = """      - id: email_reminder
        channel: email
        template: email/reminder
        cadence: {every_days: 5, max_times: 3}
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def ladder() -> Ladder:
    return load_ladder(DEFAULT)


def challenger_text(sms_every_days: int = 3) -> str:
    """The default ladder without the early email reminder (and, optionally, another SMS
    cadence): a challenger whose contacts differ visibly from the champion's."""
    content = DEFAULT.read_text(encoding="utf-8")
    assert EMAIL_REMINDER in content
    content = content.replace(EMAIL_REMINDER, "", 1)
    if sms_every_days != 3:
        content = content.replace(
            "cadence: {every_days: 3, max_times: 4}",
            f"cadence: {{every_days: {sms_every_days}, max_times: 4}}",
            1,
        )
    return content


def write_experiments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, champion: float = 0.5,
                      challenger: float = 0.5, holdout: float = 0.0, status: str = "running",
                      sms_every_days: int = 3) -> Path:  # fmt: skip
    (tmp_path / "challenger.yaml").write_text(challenger_text(sms_every_days), encoding="utf-8")
    path = tmp_path / "experiments.yaml"
    path.write_text(
        f"""experiments:
  - id: cadence
    status: {status}
    start: 2026-11-01
    arms:
      - name: champion
        ladder: in_force
        share: {champion}
      - name: challenger
        ladder: challenger.yaml
        share: {challenger}
    holdout: {holdout}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("OUTREACH_EXPERIMENTS", str(path))
    return path


def plan(engine: Engine, ladder: Ladder, day: dt.date = DAY, batch: int = 1000) -> None:
    for _ in iter_plan(engine, ladder, day, batch):
        pass


def arms(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {
            r[0]: r[1]
            for r in conn.execute(
                text(
                    "SELECT account_id, arm FROM experiment_assignment WHERE experiment_id = 'cadence'"
                )
            )
        }


def test_each_arm_plans_with_its_own_ladder_and_every_row_carries_the_arm(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_experiments(tmp_path, monkeypatch)
    accounts = [f.add_account(engine, as_of=DAY, dpd=5) for _ in range(30)]
    plan(engine, ladder)
    assigned = arms(engine)
    assert set(assigned) == {a["account_id"] for a in accounts}
    assert set(assigned.values()) == {"champion", "challenger"}
    challenger = load_ladder(tmp_path / "challenger.yaml")
    assert challenger.version != ladder.version
    for acc in accounts:
        arm = assigned[acc["account_id"]]
        assert arm == assign("cadence", acc["account_id"], [("champion", 0.5), ("challenger", 0.5)])
        rows = f.contacts(engine, account_id=acc["account_id"])
        channels = {r["channel"] for r in rows}
        assert {r["arm"] for r in rows} == {f"cadence/{arm}"}
        if arm == "challenger":
            assert channels == {"letter", "sms"}  # no email reminder in the challenger's ladder
            assert {r["config_version"] for r in rows} == {challenger.version}
        else:
            assert channels == {"letter", "sms", "email"}
            assert {r["config_version"] for r in rows} == {ladder.version}
    with engine.connect() as conn:
        bad = conn.execute(
            text(
                "SELECT COUNT(*) FROM policy_decision d JOIN contact c ON c.key = d.contact_key "
                "WHERE d.arm IS NULL OR d.arm != c.arm OR d.config_version != c.config_version"
            )
        ).scalar()
    assert bad == 0
    # The day's snapshots (KPIs by arm and ladder version) say the same.
    with engine.connect() as conn:
        snaps = {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT account_id, arm, ladder_version FROM account_snapshot WHERE as_of = :d"),
            {"d": DAY})}  # fmt: skip
    versions = {"champion": ladder.version, "challenger": challenger.version}
    assert snaps == {a: (f"cadence/{arm}", versions[arm]) for a, arm in assigned.items()}


def test_without_a_running_experiment_the_plan_is_exactly_as_before(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dpd in (3, 20, 70, 130):
        f.add_account(engine, as_of=DAY, dpd=dpd, balance="5000.00")
    monkeypatch.setenv("OUTREACH_EXPERIMENTS", str(tmp_path / "absent.yaml"))
    plan(engine, ladder)
    before = sorted((r["key"], r["config_version"], r["verdict"], r["arm"])
                    for r in f.contacts(engine))  # fmt: skip
    write_experiments(tmp_path, monkeypatch, status="draft")
    plan(engine, ladder)
    after = sorted((r["key"], r["config_version"], r["verdict"], r["arm"])
                   for r in f.contacts(engine))  # fmt: skip
    assert after == before and before
    assert {r[3] for r in after} == {None}
    assert arms(engine) == {}


def test_the_holdout_plans_with_the_ladder_in_force_and_is_recorded(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_experiments(tmp_path, monkeypatch, champion=0.0, challenger=0.0, holdout=1.0)
    acc = f.add_account(engine, as_of=DAY, dpd=5)
    plan(engine, ladder)
    assert arms(engine) == {acc["account_id"]: "holdout"}
    rows = f.contacts(engine, account_id=acc["account_id"])
    assert {r["arm"] for r in rows} == {"cadence/holdout"}
    assert {r["config_version"] for r in rows} == {ladder.version}
    assert "email" in {r["channel"] for r in rows}


def test_assignment_is_sticky_when_shares_and_the_ladder_change(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_experiments(tmp_path, monkeypatch)
    for _ in range(40):
        f.add_account(engine, as_of=DAY, dpd=5)
    plan(engine, ladder)
    before = arms(engine)
    assert len(before) == 40
    # Operations change the shares and the challenger's content; new accounts arrive.
    write_experiments(tmp_path, monkeypatch, champion=0.1, challenger=0.9, sms_every_days=2)
    later = [f.add_account(engine, as_of=DAY, dpd=5) for _ in range(40)]
    day2 = DAY + dt.timedelta(days=1)
    plan(engine, ladder, day2, batch=7)
    after = arms(engine)
    assert {a: after[a] for a in before} == before  # nobody moved
    for acc in later:
        assert after[acc["account_id"]] == assign(
            "cadence", acc["account_id"], [("champion", 0.1), ("challenger", 0.9)]
        )
    # The stored arm decides the ladder: old challenger accounts plan with the new content.
    new_version = load_ladder(tmp_path / "challenger.yaml").version
    moved_on = {r["config_version"] for r in f.contacts(engine, plan_date=day2)
                if after[r["account_id"]] == "challenger"}  # fmt: skip
    assert moved_on <= {new_version}
    # And the same again on a rerun: the assignment table does not grow or change.
    plan(engine, ladder, day2)
    assert arms(engine) == after


def test_an_opted_out_consumer_is_blocked_in_every_arm_with_the_same_reason(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_experiments(tmp_path, monkeypatch)
    accounts = [f.add_account(engine, as_of=DAY, dpd=5) for _ in range(20)]
    for acc in accounts:
        f.add_opt_out(engine, acc["person_id"], "sms", "*", dt.datetime(2026, 11, 20, 10))
    plan(engine, ladder)
    assigned = arms(engine)
    assert set(assigned.values()) == {"champion", "challenger"}
    sms = f.contacts(engine, channel="sms")
    assert len(sms) == 20
    by_arm = {(r["arm"], r["verdict"], r["reasons"]) for r in sms}
    assert {v for _, v, _ in by_arm} == {"block"}
    assert len({reasons for _, _, reasons in by_arm}) == 1  # the same reason in both arms
    assert {a for a, _, _ in by_arm} == {"cadence/champion", "cadence/challenger"}


def test_dispatch_judges_each_contact_with_its_arms_ladder_and_records_the_arm(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_experiments(tmp_path, monkeypatch)
    # The challenger's SMS reminder under another id: only its own ladder knows it.
    challenger = challenger_text().replace("id: sms_reminder", "id: sms_nudge", 1)
    (tmp_path / "challenger.yaml").write_text(challenger, encoding="utf-8")
    for _ in range(20):
        f.add_account(engine, as_of=DAY, dpd=5)
    plan(engine, ladder)
    rules = send_rules(engine, DAY)
    nudges = f.contacts(engine, action="sms_nudge")
    assert nudges and {r["arm"] for r in nudges} == {"cadence/challenger"}
    row = nudges[0]
    due = DueContact(row["key"], row["account_id"], row["contact_point_id"], row["template"],
                     row["stage"], row["action"], DAY, row["window_start"], row["window_end"],
                     None, row["config_version"], row["arm"])  # fmt: skip
    action = rules.action(due)
    assert action is not None and action.id == "sms_nudge"
    assert rules.actions.get((row["stage"], "sms_nudge")) is None  # not in the ladder in force
    outbox = OutboxChannel("sms", f"sqlite:///{tmp_path / 'outbox.db'}")
    counts = dispatch_range(engine, DAY, "sms", 0, 10**9, clock="logical", channel_impl=outbox)
    assert counts.sent == 20
    with engine.connect() as conn:
        sent = conn.execute(
            text(
                "SELECT c.arm, d.arm, d.config_version, c.config_version FROM policy_decision d "
                "JOIN contact c ON c.key = d.contact_key WHERE d.phase = 'send'"
            )
        ).all()
    assert len(sent) == 20
    assert all(r[0] == r[1] and r[2] == r[3] for r in sent)
    assert Counter(r[0] for r in sent).keys() == {"cadence/champion", "cadence/challenger"}


def test_the_example_file_is_valid_and_changes_nothing_by_default() -> None:
    config = load_experiments(PROJECT_ROOT / "config" / "experiments.yaml")
    assert config.experiments
    assert not config.running(dt.date(2027, 6, 1))


def test_explain_shows_the_arm_and_judges_with_the_arms_ladder(
    engine: Engine, ladder: Ladder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.entry.cli_accounts import format_explanation
    from outreach.services.accounts import explain

    write_experiments(tmp_path, monkeypatch)
    accounts = [f.add_account(engine, as_of=DAY, dpd=5) for _ in range(10)]
    plan(engine, ladder)
    assigned = arms(engine)
    challenger = load_ladder(tmp_path / "challenger.yaml")
    for acc in accounts:
        arm = assigned[acc["account_id"]]
        found = explain(engine, ladder, acc["account_ref"], DAY)
        assert found is not None
        assert found["experiment_arm"] == f"cadence/{arm}"
        expected = challenger.version if arm == "challenger" else ladder.version
        assert found["ladder_version"] == expected
        assert f"experiment arm cadence/{arm}" in format_explanation(found)
