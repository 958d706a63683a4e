"""The production topology: compose and Helm files agree with the project; the CeleryExecutor run.

The deployment files cannot be run here (no Docker engine, no cluster), so they are checked for
what would break a deployment silently: the services, the executor, our image, the pools
(the one list in ``scripts/airflow_local.py``) and the connections created at start. The
Celery run itself (``scripts/celery_stack.py``: PostgreSQL, Redis, scheduler, dag-processor,
api-server, a Celery worker) needs those servers and takes about a minute; it runs with
``OUTREACH_TEST_CELERY=1`` (marker ``celery``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yaml"
HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses look their module up in sys.modules.
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def pool_slots() -> dict[str, int]:
    slots: dict[str, int] = _load_script("airflow_local").POOL_SLOTS
    return slots


def _pools_set(script: str) -> dict[str, int]:
    """``airflow pools set <name> <slots> ...`` lines in a shell script, as {name: slots}."""
    return {
        name: int(slots) for name, slots in re.findall(r"airflow pools set (\w+) (\d+)", script)
    }


def test_compose_runs_every_airflow_component_from_our_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["command"] == command, name
        assert service["build"]["dockerfile"] == "Dockerfile", name
        assert (REPO / service["build"]["context"] / "Dockerfile").is_file()
        assert service["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_compose_configures_the_celery_executor_on_postgres_and_redis(
    compose: dict[str, Any],
) -> None:
    env = compose["services"]["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://")
    # psycopg v3 is the driver we ship; asyncpg (Airflow's derived async driver) is not.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith(
        "postgresql+psycopg_async://"
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert env["OUTREACH_DATABASE_URL"].startswith("postgresql+psycopg://")
    # No provider secret is written into the compose file.
    assert not any(
        k in env for k in ("AIRFLOW_CONN_TWILIO_DEFAULT", "AIRFLOW_CONN_SENDGRID_DEFAULT")
    )


def test_compose_requires_every_secret_and_defaults_none() -> None:
    """Secrets have no default in the compose file: a missing one stops `docker compose` with
    a message, instead of starting PostgreSQL with a password anyone can read here."""
    text = COMPOSE.read_text()
    secrets = ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET")
    for name in secrets:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, name
        # `${NAME:?message}` only: no `${NAME}` (empty when unset) and no `${NAME:-default}`.
        assert all(use.startswith(":?") for use in uses), (name, uses)


def test_compose_init_creates_the_dispatch_pools_and_redis_connection(
    compose: dict[str, Any], pool_slots: dict[str, int]
) -> None:
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert _pools_set(script) == {f"{channel}_dispatch": n for channel, n in pool_slots.items()}
    assert "airflow connections add redis_default" in script
    assert "outreach db upgrade" in script


def test_helm_values_name_our_image_the_celery_executor_and_the_pools(
    pool_slots: dict[str, int],
) -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["executor"] == "CeleryExecutor"
    assert values["images"]["airflow"]["repository"].endswith("/outreach-orchestrator")
    assert values["defaultAirflowRepository"] == values["images"]["airflow"]["repository"]
    assert values["airflowVersion"] == "3.3.2"
    assert values["postgresql"]["enabled"] is False
    assert values["redis"]["enabled"] is True
    assert values["dagProcessor"]["enabled"] is True
    init = values["scheduler"]["extraInitContainers"][0]
    assert init["image"].startswith(values["images"]["airflow"]["repository"] + ":")
    assert _pools_set(init["args"][0]) == {
        f"{channel}_dispatch": n for channel, n in pool_slots.items()
    }
    assert "backend" in values["config"]["secrets"]


def test_stack_config_selects_celery_with_redis_broker_and_postgres_backend(
    tmp_path: Path,
) -> None:
    import configparser

    stack = _load_script("celery_stack")
    path = stack.write_airflow_cfg(
        tmp_path,
        metadata_url="postgresql+psycopg://postgres@127.0.0.1:5432/meta",
        result_backend="db+postgresql+psycopg://postgres@127.0.0.1:5432/meta",
        broker="redis://127.0.0.1:6379/14",
        api_port=18080,
        concurrency=2,
    )
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path)
    assert cfg["core"]["executor"] == "CeleryExecutor"
    assert cfg["core"]["execution_api_server_url"] == "http://127.0.0.1:18080/execution/"
    assert cfg["database"]["sql_alchemy_conn_async"] == (
        "postgresql+psycopg_async://postgres@127.0.0.1:5432/meta"
    )
    assert cfg["celery"]["broker_url"] == "redis://127.0.0.1:6379/14"
    assert cfg["celery"]["result_backend"].startswith("db+postgresql+psycopg://")
    assert cfg["scheduler"]["use_job_schedule"] == "False"


def test_outbox_config_sends_every_channel_kind_to_the_outbox_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contact_channels.base import CHANNEL_KINDS
    from outreach.planning.kinds import channel_settings

    stack = _load_script("celery_stack")
    project_file = (REPO / "config" / "channels.yaml").read_text()
    original = yaml.safe_load(project_file)
    target = stack.outbox_config(tmp_path / "config")
    assert (REPO / "config" / "channels.yaml").read_text() == project_file  # untouched
    # As the app reads it (the stack points OUTREACH_CONFIG_DIR at the copy).
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(target))
    for kind in CHANNEL_KINDS:
        settings = channel_settings(kind)
        assert settings["backend"] == "outbox", kind
        assert "conn_id" not in settings
        kept = {k: v for k, v in (original.get(kind) or {}).items() if k not in ("backend", "conn_id")}
        assert {k: v for k, v in settings.items() if k != "backend"} == kept, kind
    # The ladders, packs and agencies come along: the copy is a whole configuration.
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in (REPO / "config").iterdir()
    )


def test_bench_groups_the_daily_tasks_into_phases() -> None:
    spec = importlib.util.spec_from_file_location(
        "celery_daily", REPO / "bench" / "celery_daily.py"
    )
    assert spec is not None and spec.loader is not None
    sys.path.insert(0, str(REPO / "bench"))
    try:
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(REPO / "bench"))
    t = {"instances": 1, "task_seconds": 2.0, "first_start": 0.0, "last_end": 2.0}
    tasks = {
        "ingest": t,
        "plan_batches": {**t, "first_start": 3.0, "last_end": 4.0},
        "plan_batch": {**t, "instances": 3, "task_seconds": 9.0, "first_start": 4.0,
                       "last_end": 8.0},
        "dispatch_batches_sms": {**t, "first_start": 8.0, "last_end": 9.0},
        "dispatch_sms": {**t, "instances": 2, "task_seconds": 10.0, "first_start": 9.0,
                         "last_end": 20.0},
        "close_letter": {**t, "first_start": 20.0, "last_end": 21.0},
        "summary": {**t, "first_start": 21.0, "last_end": 22.0},
    }  # fmt: skip
    phases = {p["phase"]: p for p in bench.phases(tasks)}
    assert list(phases) == [
        "ingest (import the portfolio)",
        "plan",
        "dispatch",
        "close the day (print manifest, placement files)",
        "call-queue refresh, summary",
    ]
    assert phases["plan"]["instances"] == 4 and phases["plan"]["task_seconds"] == 11.0
    assert (phases["plan"]["first_start"], phases["plan"]["last_end"]) == (3.0, 8.0)
    assert phases["dispatch"]["instances"] == 3 and phases["dispatch"]["last_end"] == 20.0


@pytest.mark.celery
def test_daily_run_through_celery_workers_succeeds_and_records_each_send() -> None:
    if os.environ.get("OUTREACH_TEST_CELERY") != "1":
        pytest.skip("set OUTREACH_TEST_CELERY=1 (needs PostgreSQL and Redis on 127.0.0.1)")
    server = os.environ.get(
        "OUTREACH_TEST_CELERY_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "celery_stack.py"),
            "--pg",
            server,
            "--accounts",
            "500",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"run celery_stack__\S+: success, \d+ task instances", output), output
    assert "Celery stack finished" in output
