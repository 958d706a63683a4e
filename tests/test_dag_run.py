"""``outreach_daily`` end to end in a real Airflow: a day's run, then the same day again.

Airflow runs in a child process (``scripts/airflow_local.py``) against a temporary SQLite
metadata DB, with its own app DB and outbox, so nothing here depends on in-process Airflow
state. The second run of the same logical date is the exactly-once check: ops clear and rerun
from the UI, and nobody may be contacted twice.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parent.parent
DAY = dt.date(2025, 1, 7)  # a Tuesday, no US federal holiday
LOGICAL_DATE = dt.datetime.combine(DAY, dt.time(0, 0), tzinfo=dt.UTC)
ACCOUNTS = 300
BATCH_SIZE = 100
CONF = {"clock": "logical", "batch_size": BATCH_SIZE}


def _load_airflow_local() -> Any:
    spec = importlib.util.spec_from_file_location(
        "airflow_local", REPO / "scripts/airflow_local.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Site:
    env: dict[str, str]
    data: Path
    airflow_home: Path
    log_path: Path
    database_url: str
    outbox_url: str
    runner: Any

    def run_daily(self) -> dict[str, Any]:
        with self.log_path.open("a") as log:
            return dict(
                self.runner.run_dag(self.env, "outreach_daily", LOGICAL_DATE, CONF, log=log)
            )


@contextmanager
def _scratch_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"outreach_dag_run_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        from outreach.storage.db import engine_for

        engine_for.cache_clear()  # let go of pooled connections before the drop
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# The app database on SQLite always; on PostgreSQL too when CI names a server (marker postgres).
# Airflow's own metadata database stays SQLite in both.
@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def app_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    server_url = os.environ.get("OUTREACH_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("OUTREACH_TEST_POSTGRES_URL is not set")
    with _scratch_postgres_database(server_url) as url:
        yield url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, app_database: str | None) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dag-run")
    data = root / "data"
    data.mkdir()
    app_env = {
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": app_database or f"sqlite:///{data / 'outreach.db'}",
        "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
    }
    runner = _load_airflow_local()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(app_env)
    env = runner.airflow_env(root / "airflow", base=base)
    log_path = root / "airflow.log"
    with log_path.open("w") as log:
        runner.bootstrap(env, log)

    with pytest.MonkeyPatch.context() as patch:
        for name, value in app_env.items():
            patch.setenv(name, value)
        from outreach.portfolio.generator import generate
        from outreach.services import daily as service

        service.setup_database()
        inbox = data / "inbox"
        inbox.mkdir()
        generate(ACCOUNTS, seed=11, out=inbox / "portfolio.jsonl", as_of=DAY)
        # A file the ingest cannot read, sorted before the good one: quarantined, never
        # stopping the day (test_an_unreadable_inbox_file_is_quarantined_and_the_day_goes_on).
        (inbox / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00junk")
        yield Site(
            env=env,
            data=data,
            airflow_home=root / "airflow",
            log_path=log_path,
            database_url=app_env["OUTREACH_DATABASE_URL"],
            outbox_url=app_env["OUTREACH_OUTBOX_URL"],
            runner=runner,
        )


def _ledger_sent_by_channel(site: Site) -> dict[str, int]:
    from outreach.operations.reporting import sent_and_recorded

    return sent_and_recorded(site.database_url, site.outbox_url)[0]


def _outbox_by_channel(site: Site) -> dict[str, int]:
    """What each medium recorded, by channel: the outbox's messages, the call queue's tasks,
    the letters, placements and cases written."""
    from outreach.operations.reporting import sent_and_recorded

    return sent_and_recorded(site.database_url, site.outbox_url)[1]


def _failure_report(site: Site, result: dict[str, Any]) -> str:
    bad = {
        task: states
        for task, states in result.get("tasks", {}).items()
        if set(states) - {"success", "skipped"}
    }
    lines = site.log_path.read_text(errors="replace").splitlines()
    # The first task error with its traceback says more than the end of the log.
    first = next((n for n, line in enumerate(lines) if "Task failed with exception" in line), None)
    excerpt = lines[first : first + 80] if first is not None else lines[-60:]
    return (
        f"run {result.get('state')}: {result.get('error', '')} {bad}\n"
        f"--- {site.log_path} ---\n" + "\n".join(excerpt)
    )


@pytest.fixture(scope="module")
def first_run(site: Site) -> dict[str, Any]:
    result = site.run_daily()
    assert result["state"] == "success", _failure_report(site, result)
    return {
        "result": result,
        "ledger_sent": _ledger_sent_by_channel(site),
        "outbox": _outbox_by_channel(site),
    }


def test_an_unreadable_inbox_file_is_quarantined_and_the_day_goes_on(
    site: Site, first_run: dict[str, Any]
) -> None:
    import json

    from sqlalchemy import create_engine, text

    tasks = first_run["result"]["tasks"]
    assert tasks["ingest"] == {"success": 1} and sum(tasks["plan_batch"].values()) >= 2
    inbox = site.data / "inbox"
    assert (inbox / "done" / "portfolio.jsonl").exists()
    assert (inbox / "quarantine" / "broken.jsonl.gz").exists()
    reason = (inbox / "quarantine" / "broken.jsonl.gz.reason.txt").read_text()
    assert "broken.jsonl.gz: cannot read" in reason
    engine = create_engine(site.database_url)
    try:
        with engine.connect() as conn:
            accounts = conn.execute(text("SELECT COUNT(*) FROM account")).scalar_one()
            planned = conn.execute(
                text("SELECT COUNT(DISTINCT account_id) FROM contact WHERE plan_date = :d"),
                {"d": DAY},
            ).scalar_one()
    finally:
        engine.dispose()
    assert accounts == ACCOUNTS and planned > ACCOUNTS // 2
    with sqlite3.connect(site.airflow_home / "airflow.db") as conn:
        found = {
            task: json.loads(value if isinstance(value, str) else bytes(value).decode())
            for task, value in conn.execute(
                "select task_id, value from xcom where dag_id = ? and run_id = ? "
                "and task_id in ('ingest', 'summary') and key = 'return_value'",
                ("outreach_daily", first_run["result"]["run_id"]),
            )
        }
    assert found["ingest"]["quarantined_files"] == ["broken.jsonl.gz"]
    assert [q["file"] for q in found["summary"]["quarantined_files"]] == ["broken.jsonl.gz"]


def test_daily_run_records_each_sent_contact_once_in_its_medium(first_run: dict[str, Any]) -> None:
    ledger_sent, outbox = first_run["ledger_sent"], first_run["outbox"]
    assert sum(ledger_sent.values()) > 0, "a day's run over a generated portfolio sent nothing"
    assert ledger_sent == outbox


def test_daily_run_maps_one_task_per_batch_not_per_account(first_run: dict[str, Any]) -> None:
    tasks = first_run["result"]["tasks"]
    plan_instances = sum(tasks["plan_batch"].values())
    assert 2 <= plan_instances <= ACCOUNTS // BATCH_SIZE + 1
    assert first_run["result"]["task_instances"] < ACCOUNTS


def test_xcom_carries_counts_and_ranges_only(site: Site, first_run: dict[str, Any]) -> None:
    with sqlite3.connect(site.airflow_home / "airflow.db") as conn:
        values = [
            row[0]
            for row in conn.execute("select value from xcom where dag_id = ?", ("outreach_daily",))
        ]
    assert values
    text = "\n".join(
        v if isinstance(v, str) else bytes(v).decode("utf-8", "replace") for v in values
    )
    assert "@" not in text, "an email address went into XCom"
    assert not re.search(r"\+?\d{10,}", text), "a phone number went into XCom"


def test_logs_carry_no_phone_numbers_emails_or_names(site: Site, first_run: dict[str, Any]) -> None:
    from sqlalchemy import create_engine, select

    from outreach.storage.models import ContactPoint, Person

    engine = create_engine(site.database_url)
    try:
        with engine.connect() as conn:
            secrets = {
                value
                for (value,) in conn.execute(
                    select(ContactPoint.value).where(ContactPoint.kind.in_(["phone", "email"]))
                )
            }
            secrets |= {name for (name,) in conn.execute(select(Person.full_name)) if " " in name}
    finally:
        engine.dispose()
    assert secrets
    logs = [
        site.log_path,
        *(p for p in site.airflow_home.joinpath("logs").rglob("*") if p.is_file()),
    ]
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{len(leaked)} personal values in {path}, e.g. a {_kind(leaked[0])}"


def _kind(value: str) -> str:
    return "email" if "@" in value else "phone number" if value.startswith("+") else "name"


def test_rerun_of_the_same_day_sends_nothing_new(site: Site, first_run: dict[str, Any]) -> None:
    again = site.run_daily()
    assert again["state"] == "success", _failure_report(site, again)
    assert again["run_id"] != first_run["result"]["run_id"]
    assert _outbox_by_channel(site) == first_run["outbox"]
    assert _ledger_sent_by_channel(site) == first_run["ledger_sent"]
