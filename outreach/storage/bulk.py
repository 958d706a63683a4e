"""Bulk reads and writes on the DBAPI cursor, for the planner's hot path.

SQLAlchemy's per-row parameter and result processing costs more than SQLite itself at a million
rows; here rows are tuples, placeholders are written as ``?`` and rewritten for the dialect, and
the dialect's own type processors (SQLite stores dates and datetimes as text) are applied once
per column. It runs inside the caller's SQLAlchemy transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.types import TypeEngine

_PLACEHOLDER = re.compile(r"\?")


def _sql_for(conn: Connection, sql: str) -> str:
    style = conn.dialect.paramstyle
    if style == "qmark":
        return sql
    if style in ("format", "pyformat"):
        return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
    raise NotImplementedError(f"paramstyle {style} is not supported by outreach.storage.bulk")


def column_types(model: Any, columns: Sequence[str], as_given: Sequence[str] = ()
                 ) -> tuple[TypeEngine[Any] | None, ...]:
    """The model's column types in ``columns`` order, for bind processing; ``None`` for the
    columns in ``as_given`` (values already in stored form)."""
    table = model.__table__
    return tuple(None if name in as_given else table.c[name].type for name in columns)


def _processors(conn: Connection, types: Sequence[TypeEngine[Any] | None]) -> list[Any]:
    dialect = conn.dialect
    return [
        t.dialect_impl(dialect).bind_processor(dialect) if t is not None else None for t in types
    ]


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The same dates and windows recur across thousands of rows: convert each once."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        out = seen.get(value)
        if out is None:
            out = seen[value] = process(value)
        return out

    return convert


def executemany(
    conn: Connection,
    sql: str,
    rows: Iterable[Sequence[Any]],
    types: Sequence[TypeEngine[Any] | None] = (),
) -> None:
    """Run ``sql`` (``?`` placeholders) once per row, in the connection's transaction."""
    procs = [_memo(p) if p is not None else None for p in _processors(conn, types)]
    if any(procs):
        rows = [
            tuple(
                p(v) if p is not None and v is not None else v
                for p, v in zip(procs, row, strict=True)
            )
            for row in rows
        ]
    elif not isinstance(rows, list):
        rows = list(rows)
    if not rows:
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_sql_for(conn, sql), rows)
    finally:
        cursor.close()


def fetchall(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples; values as the driver gives them (SQLite: text dates, floats)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_sql_for(conn, sql), tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def bind(conn: Connection, type_: TypeEngine[Any], value: Any) -> Any:
    """One parameter in the form the dialect stores it (for ``fetchall`` parameters)."""
    proc = type_.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return proc(value) if proc is not None and value is not None else value


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    types: Sequence[TypeEngine[Any] | None],
) -> None:
    """Append rows: COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    executemany(
        conn,
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        rows,
        types,
    )


def upsert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    types: Sequence[TypeEngine[Any] | None],
    on_conflict: str,
) -> None:
    """Insert or update rows with ``on_conflict`` (an ``ON CONFLICT ... DO ...`` clause naming
    ``excluded`` and ``table``). PostgreSQL: COPY into a session temp table, then one
    INSERT ... SELECT; elsewhere executemany."""
    if not rows:
        return
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        stage = f"stage_{table}"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.exec_driver_sql(f"TRUNCATE {stage}")
        _copy(conn, stage, columns, rows)
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {on_conflict}".replace(
                "%", "%%"
            )
        )
        return
    executemany(
        conn,
        f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))}) {on_conflict}",
        rows,
        types,
    )


def _copy(
    conn: Connection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
