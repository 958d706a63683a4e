"""The configuration is validated whole, with its YAML path in every error, before a run acts.

Every file operations edit (config/channels.yaml, config/policy.yaml, config/agencies.yaml, the
ladder) and the OUTREACH_* environment refuse unknown keys and wrong types; one broken section
stops the whole run (every channel), never after some channels have dispatched.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text

from contact_channels.outbox import count_outbox
from outreach import settings
from outreach.entry.cli import main
from outreach.planning.kinds import channel_settings
from outreach.services import daily as service
from outreach.services.config import ConfigInvalid, load_config
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
LADDER = "ladders/default.yaml"


@pytest.fixture
def config_dir(app_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of config/ that the test may break, and a migrated app database."""
    f.database(settings.database_url())
    target = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(target))
    for name in ("OUTREACH_POLICY", "OUTREACH_AGENCIES", "OUTREACH_LADDER"):
        monkeypatch.delenv(name, raising=False)
    return target


def edit(config_dir: Path, name: str, change: Callable[[Any], Any]) -> None:
    path = config_dir / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed = change(data)
    path.write_text(yaml.safe_dump(data if changed is None else changed), encoding="utf-8")


def planned_day(config_dir: Path) -> Engine:
    """Two accounts planned for DAY with the good configuration: SMS and email are due."""
    engine = f.database(settings.database_url())
    for _ in range(2):
        f.add_account(
            engine, as_of=DAY, dpd=5, validation_notice_sent_on=DAY - dt.timedelta(days=20)
        )
    assert main(["plan", "--as-of", str(DAY)]) == 0
    states = _states(engine)
    assert states.get(("sms", "planned")) and states.get(("email", "planned")), states
    return engine


def _states(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT channel, state, COUNT(*) FROM contact GROUP BY channel, state")
        ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def nothing_dispatched(engine: Engine, before: dict[tuple[str, str], int]) -> None:
    assert _states(engine) == before
    assert count_outbox(settings.outbox_url()) == 0
    with engine.connect() as conn:
        send_decisions = conn.execute(
            text("SELECT COUNT(*) FROM policy_decision WHERE phase <> 'plan'")
        ).scalar()
    assert send_decisions == 0


# --- the incident: a typo silently fell back to the outbox ---------------------------------------


def test_a_typo_in_a_channel_key_is_refused_and_nothing_is_dispatched(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = planned_day(config_dir)
    before = _states(engine)
    edit(config_dir, "channels.yaml", lambda d: d.update(sms={"backnd": "twilio"}))

    code = main(["dispatch", "--as-of", str(DAY), "--channel", "sms", "--clock", "logical"])
    err = capsys.readouterr().err
    assert code != 0
    assert "channels.sms.backnd" in err and "unknown key" in err
    assert "known keys: backend, concurrency, conn_id" in err
    nothing_dispatched(engine, before)

    with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backnd"):
        service.dispatch_batch(DAY, "sms", 0, 10**9, clock="logical")
    with pytest.raises(ValueError, match=r"channels\.sms\.backnd"):
        channel_settings("sms")
    nothing_dispatched(engine, before)


def test_a_broken_sms_section_stops_an_email_dispatch(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = planned_day(config_dir)
    before = _states(engine)
    edit(config_dir, "channels.yaml", lambda d: d["sms"].update(backend="sendgrid"))

    code = main(["dispatch", "--as-of", str(DAY), "--channel", "email", "--clock", "logical"])
    err = capsys.readouterr().err
    assert code != 0 and "channels.sms.backend" in err and "cannot send sms" in err
    nothing_dispatched(engine, before)

    # What the DAG's dispatch tasks call: both the ranges and the sends refuse.
    with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backend"):
        service.dispatch_batches(DAY, "email", 100)
    with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backend"):
        service.dispatch_batch(DAY, "email", 0, 10**9, clock="logical")
    with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backend"):
        service.redrive(DAY, "email")
    nothing_dispatched(engine, before)


def test_the_run_fails_at_its_first_task_before_ingesting(config_dir: Path, app_data: Path) -> None:
    inbox = app_data / "inbox"
    inbox.mkdir()
    waiting = inbox / "portfolio.jsonl"
    waiting.write_text("", encoding="utf-8")
    edit(config_dir, "channels.yaml", lambda d: d["sms"].update(backnd="twilio"))
    edit(config_dir, "agencies.yaml", lambda d: d["agencies"][0].update(capacity=-1))

    with pytest.raises(ConfigInvalid) as caught:
        service.ingest()
    message = str(caught.value)
    # One error for the whole configuration, every broken file in it.
    assert "channels.sms.backnd" in message
    assert "agencies[0].capacity" in message
    assert waiting.exists() and not (inbox / "done").exists()
    for call in (
        lambda: service.recall_placements(DAY),
        lambda: service.score(DAY),
        lambda: service.plan_batches(DAY, 100),
        lambda: service.plan_batch(DAY, 0, 10),
        lambda: service.close_day(DAY, "letter"),
    ):
        with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backnd"):
            call()


# --- unknown keys at every level, wrong types and values, each with its YAML path ---------------


def _set(*path: Any, value: Any = "x") -> Callable[[Any], None]:
    def change(data: Any) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


UNKNOWN_KEYS = [
    # channels.yaml
    ("channels.yaml", _set("sm", value={"backend": "outbox"}), "channels.sm"),
    ("channels.yaml", _set("sms", "backnd"), "channels.sms.backnd"),
    (
        "channels.yaml",
        _set("email", "rate_limit", value={"per_second": 5, "brust": 2}),
        "channels.email.rate_limit.brust",
    ),
    ("channels.yaml", _set("letter", "mailhouse"), "channels.letter.mailhouse"),
    ("channels.yaml", _set("call", "drop"), "channels.call.drop"),
    # policy.yaml
    ("policy.yaml", _set("rol"), "rol"),
    # agencies.yaml
    ("agencies.yaml", _set("agency"), "agency"),
    ("agencies.yaml", _set("agencies", 0, "capcity"), "agencies[0].capcity"),
    ("agencies.yaml", _set("allocation", "strategi"), "allocation.strategi"),
    ("agencies.yaml", _set("allocation", "bands", 0, "agency"), "allocation.bands[0].agency"),
    ("agencies.yaml", _set("law_firms", 1, "jurisdiction"), "law_firms[1].jurisdiction"),
    # the ladder
    (LADDER, _set("stage"), "stage"),
    (LADDER, _set("stages", 0, "action"), "stages[0].action"),
    (LADDER, _set("stages", 0, "entry", "dpd_mn"), "stages[0].entry.dpd_mn"),
    (LADDER, _set("stages", 0, "actions", 1, "chanel"), "stages[0].actions[1].chanel"),
    (
        LADDER,
        _set("stages", 0, "actions", 1, "cadence", "every_day"),
        "stages[0].actions[1].cadence.every_day",
    ),
    (LADDER, _set("stages", 7, "requires", 0, "min_time"), "stages[7].requires[0].min_time"),
]


@pytest.mark.parametrize(("name", "change", "where"), UNKNOWN_KEYS)
def test_an_unknown_key_at_any_level_is_refused_with_its_path(
    config_dir: Path, name: str, change: Callable[[Any], None], where: str
) -> None:
    edit(config_dir, name, change)
    with pytest.raises(ConfigInvalid) as caught:
        load_config()
    lines = [line for line in str(caught.value).splitlines() if f": {where}" in line]
    assert lines, str(caught.value)
    assert lines[0].startswith(str(config_dir / name) + ": ")
    assert "unknown key" in lines[0] and "known keys: " in lines[0]


WRONG_VALUES = [
    ("channels.yaml", _set("sms", value=["twilio"]), "channels.sms", "mapping"),
    ("channels.yaml", _set("sms", "backend", value="smtp"), "channels.sms.backend", "smtp"),
    (
        "channels.yaml",
        _set("call", "backend", value="twilio"),
        "channels.call.backend",
        "cannot send call",
    ),
    (
        "channels.yaml",
        _set("sms", "concurrency", value="many"),
        "channels.sms.concurrency",
        "integer",
    ),
    (
        "channels.yaml",
        _set("sms", "concurrency", value=True),
        "channels.sms.concurrency",
        "integer",
    ),
    (
        "channels.yaml",
        _set("email", "group_size", value=0),
        "channels.email.group_size",
        "greater than or equal to 1",
    ),
    (
        "channels.yaml",
        _set("sms", "max_segments", value=0),
        "channels.sms.max_segments",
        "greater than or equal to 1",
    ),
    ("channels.yaml", _set("sms", "help_text", value=42), "channels.sms.help_text", "string"),
    (
        "channels.yaml",
        _set("email", "rate_limit", value={"per_second": 5, "store": "disk"}),
        "channels.email.rate_limit.store",
        "'file', 'redis' or 'local'",
    ),
    (
        "channels.yaml",
        _set("email", "rate_limit", value={"per_second": 0}),
        "channels.email.rate_limit.per_second",
        "greater than 0",
    ),
    ("policy.yaml", _set("role", value="lender"), "role", "'creditor' or 'collector'"),
    ("policy.yaml", _set("approved_agencies", value="acme"), "approved_agencies", "must be a list"),
    (
        "agencies.yaml",
        _set("agencies", 0, "capacity", value=-1),
        "agencies[0].capacity",
        "greater than or equal to 0",
    ),
    (
        "agencies.yaml",
        _set("agencies", 0, "approved", value="maybe"),
        "agencies[0].approved",
        "boolean",
    ),
    (
        "agencies.yaml",
        _set("allocation", "bands", 0, "agencies", 0, value="nobody"),
        "allocation.bands[0].agencies[0]",
        "unknown agency",
    ),
    (
        LADDER,
        _set("stages", 0, "actions", 1, "cadence", "every_days", value=True),
        "stages[0].actions[1].cadence.every_days",
        "integer",
    ),
    (
        LADDER,
        _set("stages", 0, "entry", "dpd_min", value="five"),
        "stages[0].entry.dpd_min",
        "integer",
    ),
    (
        LADDER,
        _set("stages", 0, "actions", 1, "channel", value="fax"),
        "stages[0].actions[1].channel",
        "'sms'",
    ),
]


@pytest.mark.parametrize(("name", "change", "where", "message"), WRONG_VALUES)
def test_a_wrong_type_or_value_is_refused_with_its_path(
    config_dir: Path, name: str, change: Callable[[Any], None], where: str, message: str
) -> None:
    edit(config_dir, name, change)
    with pytest.raises(ConfigInvalid) as caught:
        load_config()
    lines = [line for line in str(caught.value).splitlines() if f": {where}" in line]
    assert lines, str(caught.value)
    assert lines[0].startswith(str(config_dir / name) + ": ")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OUTREACH_SENDING_LEASE_SECONDS", "five minutes", "a number of seconds above 0"),
        ("OUTREACH_CALL_LEASE_SECONDS", "-3", "a number of seconds above 0"),
        ("OUTREACH_WEBHOOK_MAX_AGE_SECONDS", "0.000", "a number of seconds above 0"),
        ("OUTREACH_PUBLIC_BASE_URL", "ops.example.org/hooks", "an http(s) URL"),
        ("OUTREACH_SENDNG_LEASE_SECONDS", "300", "unknown setting"),
    ],
)
def test_a_bad_environment_knob_is_refused_by_name(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigInvalid) as caught:
        load_config()
    assert f"environment: {name}: " in str(caught.value)
    assert message in str(caught.value)
    # The value itself may be a secret or an address: it is never echoed.
    assert value not in str(caught.value).replace(name, "")


def test_every_error_of_every_file_is_reported_at_once(config_dir: Path) -> None:
    edit(config_dir, "channels.yaml", _set("sms", "backnd"))
    edit(config_dir, "policy.yaml", _set("role", value="lender"))
    edit(config_dir, "agencies.yaml", _set("allocation", "strategi"))
    edit(config_dir, LADDER, _set("stages", 0, "entry", "dpd_mn"))
    with pytest.raises(ConfigInvalid) as caught:
        load_config()
    assert len(caught.value.errors) == 4
    for name in ("channels.yaml", "policy.yaml", "agencies.yaml", LADDER):
        assert str(config_dir / name) in str(caught.value)


def test_the_shipped_configuration_loads_as_typed_objects(config_dir: Path) -> None:
    config = load_config()
    assert config.channels.sms.backend == "auto"
    assert config.channels.sms.conn_id == "twilio_default"
    assert config.channels.letter.backend == "print"
    assert config.policy.role == "collector"
    assert {a.id for a in config.agencies.agencies} >= {"harbor_recovery"}
    assert config.ladder.stages[0].id == "early_reminder"
    assert config.measurement.attribution.window_days == 14
    # The dispatcher's reader hands plain, validated dicts to contact_channels.
    assert channel_settings("sms") == {"backend": "auto", "conn_id": "twilio_default"}


def test_config_check_all_validates_every_file(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--all"]) == 0
    out = capsys.readouterr().out
    for name in ("channels.yaml", "policy.yaml", "agencies.yaml", "measurement.yaml",
                 "default.yaml"):
        assert name in out
    edit(config_dir, "channels.yaml", _set("sms", "backnd"))
    edit(config_dir, "policy.yaml", _set("colour"))
    assert main(["config", "check", "--all"]) == 1
    err = capsys.readouterr().err
    assert f"{config_dir / 'channels.yaml'}: channels.sms.backnd" in err
    assert f"{config_dir / 'policy.yaml'}: colour" in err
    assert "2 error(s)" in err


def test_the_dag_tasks_refuse_a_broken_sms_section_before_an_email_dispatch(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real DAG task callables, the real service: a broken sms section fails the daily
    run's first task and every email task of both DAGs; nothing is sent."""
    from airflow.dag_processing.dagbag import DagBag

    engine = planned_day(config_dir)
    before = _states(engine)
    edit(config_dir, "channels.yaml", _set("sms", "backnd", value="twilio"))
    dags = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags
    context = {
        "logical_date": dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC),
        "params": {"clock": "logical", "batch_size": 100, "dry_run": False, "channels": [],
                   "stages": [], "accounts": []},
    }  # fmt: skip

    def run(dag_id: str, task_id: str, **kwargs: Any) -> Any:
        function = dags[dag_id].get_task(task_id).python_callable
        monkeypatch.setitem(function.__globals__, "get_current_context", lambda: context)
        return function(**kwargs)

    for dag_id, task_id, kwargs in (
        ("outreach_daily", "ingest", {}),
        ("outreach_daily", "dispatch_batches_email", {"channel": "email"}),
        ("outreach_daily", "dispatch_email", {"channel": "email", "batch": {"lo": 0, "hi": 10**9}}),
        ("outreach_dispatch", "redrive_email", {"channel": "email"}),
        ("outreach_dispatch", "dispatch_batches_email", {"channel": "email"}),
        ("outreach_dispatch", "dispatch_email",
         {"channel": "email", "batch": {"day": DAY.isoformat(), "lo": 0, "hi": 10**9}}),
    ):  # fmt: skip
        with pytest.raises(ConfigInvalid, match=r"channels\.sms\.backnd"):
            run(dag_id, task_id, **kwargs)
    nothing_dispatched(engine, before)


def test_every_environment_knob_the_project_reads_is_known() -> None:
    """A knob added to the code but not to ENV_KNOBS would refuse every run that sets it."""
    import re

    from outreach.services.config import ENV_IGNORED_PREFIXES, ENV_KNOBS

    read: set[str] = set()
    for folder in ("outreach", "contact_channels", "policies", "plugins", "dags"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            read.update(re.findall(r"\bOUTREACH_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    read = {n for n in read if not n.startswith(ENV_IGNORED_PREFIXES)}
    read.discard("OUTREACH_SENDNG_LEASE_SECONDS")  # the typo config.py names as its example
    assert read - set(ENV_KNOBS) == set()


def test_an_empty_public_base_url_is_the_same_as_unset(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-compose.yaml passes `${OUTREACH_PUBLIC_BASE_URL:-}`: empty until ops set it."""
    monkeypatch.setenv("OUTREACH_PUBLIC_BASE_URL", "")
    load_config()


def test_a_key_written_twice_is_refused_with_both_lines(config_dir: Path) -> None:
    """A merge leftover `role: collector` ... `role: creditor` must not silently switch off
    Regulation F: the file is refused, naming the key and where it first stood."""
    path = config_dir / "policy.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nrole: creditor\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_config()
    assert "'role' appears twice" in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Nine aliases a level, eight levels: about 400 bytes that would expand to 43 million
    nodes. Config files never need aliases, so any alias is refused before anything walks it."""
    import time

    from outreach.planning.ladder import check_ladder_text

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    bomb = "\n".join(lines) + "\nname: bomb\nstages: *a8\n"
    assert len(bomb) < 600
    started = time.monotonic()
    model, errors = check_ladder_text(bomb)
    assert model is None
    assert any("aliases" in str(error) for error in errors)
    assert time.monotonic() - started < 2.0
