"""Run the real Airflow components (api-server, scheduler, dag-processor with the LocalExecutor)
as child processes for one AIRFLOW_HOME, wait for them to be healthy, and talk to the REST API.

The home is bootstrapped with ``scripts/airflow_local.py`` (config, metadata DB, pools,
serialized DAGs); this module only adds what a running deployment needs on top: a port on
127.0.0.1 chosen at runtime, the execution API URL the workers report to, one JWT secret
shared by every component, and no cron scheduling (runs are triggered through the API).

    stack = AirflowStack.start(env, log_dir)       # env from airflow_local.airflow_env(...)
    try:
        stack.api.trigger_run("outreach_daily", run_id, logical_date, conf)
        stack.api.wait_for_run("outreach_daily", run_id, {"failed", "success"})
    finally:
        stack.stop()

Each component runs in its own process group, so ``stop`` also ends the task processes the
LocalExecutor forked. The REST API is used as admin through the SimpleAuthManager with
``simple_auth_manager_all_admins``: this is for local test stacks only. With ``users`` (for
example ``"ops:admin"``) that shortcut is off and the SimpleAuthManager's real login applies
(passwords from ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE`` or the generated file);
``components=("api-server",)`` starts the api-server alone (a UI or console test).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def load_airflow_local() -> Any:
    """``scripts/airflow_local.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("airflow_local", HERE / "airflow_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stack_env(env: dict[str, str], port: int, *, users: str | None = None) -> dict[str, str]:
    """``env`` (from ``airflow_local.airflow_env``) plus what running components share.

    ``users``: SimpleAuthManager users as ``name:role[,name:role]``; given, the all-admins
    shortcut is off and those users must log in. None keeps everyone admin without a login."""
    base_url = f"http://127.0.0.1:{port}"
    out = dict(env)
    out.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            # Every component signs or checks task tokens: they must agree on the secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": env.get(
                "AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32)
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True" if users is None else "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Only runs triggered through the API: no cron run for "today" in between.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        }
    )
    if users is not None:
        out["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = users
    return out


class ApiError(RuntimeError):
    """The REST API answered with an error status."""


@dataclass
class RestApi:
    """A few verbs of Airflow's REST API v2 (stdlib HTTP: no client library needed)."""

    base_url: str
    timeout: float = 30

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc.code} {exc.read().decode()[:500]}") from exc
        return json.loads(text) if text else None

    def healthy(self) -> dict[str, str]:
        """Component -> status from ``/api/v2/monitor/health`` (empty if not answering)."""
        try:
            health = self.request("GET", "/api/v2/monitor/health")
        except (OSError, ApiError):
            return {}
        return {name: str((part or {}).get("status")) for name, part in health.items()}

    def dag(self, dag_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v2/dags/{dag_id}")
        return result

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger_run(
        self, dag_id: str, run_id: str, logical_date: dt.datetime, conf: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": conf},
        )
        return result

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
                f"?limit=100&offset={len(items)}",
            )
            items.extend(page["task_instances"])
            if not page["task_instances"] or len(items) >= page["total_entries"]:
                return items

    def clear_failed(
        self, dag_id: str, run_id: str, task_ids: list[str], *, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Clear the failed instances of ``task_ids`` in one run, and their downstream, as
        ops staff do from the grid view ("Clear", "Only failed", "Downstream")."""
        result = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": dry_run,
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "only_failed": True,
                "include_downstream": True,
                "reset_dag_runs": True,
            },
        )
        cleared: list[dict[str, Any]] = result["task_instances"]
        return cleared

    def wait_for_run(
        self, dag_id: str, run_id: str, states: Iterable[str], timeout: float = 300
    ) -> str:
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in wanted:
                return state
            time.sleep(1)
        raise TimeoutError(f"run {run_id} still {state} after {timeout:.0f}s (wanted {wanted})")


@dataclass
class AirflowStack:
    """The running components of one Airflow home."""

    env: dict[str, str]
    log_dir: Path
    api: RestApi
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        log_dir: Path,
        *,
        timeout: float = 180,
        components: Iterable[str] = COMPONENTS,
        users: str | None = None,
    ) -> AirflowStack:
        """Start ``components`` (default api-server, scheduler and dag-processor); return once
        the API says each of them is healthy. ``users``: see ``stack_env``. On any failure the
        started processes are stopped before raising."""
        names = tuple(components)
        unknown = set(names) - set(COMPONENTS)
        if "api-server" not in names or unknown:
            raise ValueError(f"components must include api-server and be among {COMPONENTS}")
        port = free_port()
        full = stack_env(env, port, users=users)
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = cls(full, log_dir, RestApi(f"http://127.0.0.1:{port}"))
        airflow = Path(sys.executable).parent / "airflow"
        try:
            for name in names:
                args = [str(airflow), name]
                if name == "api-server":
                    args += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
                log = (log_dir / f"{name}.log").open("ab")
                stack._logs.append(log)
                # A new session per component: its process group holds its workers and the
                # task processes they fork, so stop() can end all of them.
                stack.processes[name] = subprocess.Popen(
                    args, env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            stack.wait_healthy(timeout)
        except BaseException:
            stack.stop()
            raise
        return stack

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"airflow {name} exited with {proc.returncode}; see "
                        f"{self.log_dir / (name + '.log')}"
                    )
            health = self.api.healthy()
            # The health parts of what was started (the api-server answers for the DB).
            wanted = ["metadatabase"] + [
                part for name, part in (("scheduler", "scheduler"),
                                        ("dag-processor", "dag_processor"))
                if name in self.processes
            ]
            if health and all(health.get(part) == "healthy" for part in wanted):
                return
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout:.0f}s: {health}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the dag-processor has parsed ``dag_id`` (the API knows it, unpaused)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api.dag(dag_id)
                self.api.unpause(dag_id)
                return
            except ApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes.values():
            # The group may outlive its leader (forked task processes): kill it regardless.
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(5)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in self.processes or COMPONENTS:
            path = self.log_dir / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(out)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the pid is its group's id (start_new_session)
    except ProcessLookupError:
        pass
