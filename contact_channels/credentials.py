"""Provider credentials, read only from Airflow Connections through Airflow's secrets backends.

Works inside a task (Task SDK, via the supervisor) and outside one (our CLI: environment
variables ``AIRFLOW_CONN_<ID>`` first, then the metastore when it is reachable).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """The parts of an Airflow Connection an adapter needs. The password never appears in repr.

    ``extra`` values are strings when the connection was given in URI form, so read them with
    the typed accessors below.
    """

    conn_id: str
    conn_type: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def extra_str(self, name: str, default: str | None = None) -> str | None:
        value = self.extra.get(name)
        if value is None or value == "":
            return default
        return str(value)

    def extra_float(self, name: str, default: float | None = None) -> float | None:
        value = self.extra.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {self.conn_id}: extra {name!r} must be a number"
            ) from None

    def extra_int(self, name: str, default: int | None = None) -> int | None:
        value = self.extra.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {self.conn_id}: extra {name!r} must be an integer"
            ) from None

    def extra_bool(self, name: str, default: bool = False) -> bool:
        value = self.extra.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"connection {self.conn_id}: extra {name!r} must be true or false")


def _in_task() -> bool:
    """True inside a running Airflow 3 task, where connections come through the supervisor."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _fetch(conn_id: str) -> Any:
    """The Airflow connection object, or raise AirflowNotFoundException."""
    if _in_task():
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    # Outside a task the Task SDK only searches environment variables and external backends;
    # the core model also searches the metastore (and swallows its errors when unreachable).
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def _extra_of(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if isinstance(extra, Mapping):
        return dict(extra)
    raw = getattr(conn, "extra", None)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return dict(parsed) if isinstance(parsed, Mapping) else {}


def get_connection(conn_id: str) -> ConnectionInfo | None:
    """The Airflow Connection ``conn_id``, or None when no secrets backend defines it.

    Other failures (a secrets backend that is misconfigured or denies access) propagate: falling
    back to the outbox because a vault was down would record messages instead of sending them.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = _fetch(conn_id)
    except AirflowNotFoundException:
        log.debug("connection %s is not defined", conn_id)
        return None
    if conn is None:
        return None
    port = getattr(conn, "port", None)
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=getattr(conn, "conn_type", None),
        login=getattr(conn, "login", None) or None,
        password=getattr(conn, "password", None) or None,
        host=getattr(conn, "host", None) or None,
        port=int(port) if port else None,
        schema=getattr(conn, "schema", None) or None,
        extra=_extra_of(conn),
    )
