"""Set-based writing: read the stored rows of a chunk's keys, insert what is missing, update
what differs, and say which it was; at the driver where Core's per-row work costs more."""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections import namedtuple
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Date,
    DateTime,
    Numeric,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from outreach.portfolio.rows import INSERTED, UNCHANGED, UPDATED, Item

_IN_BATCH = 5000  # keys per IN (...) list; SQLite allows 32766 parameters, PostgreSQL 65535


@dataclass(slots=True, eq=False)
class Want:
    """A row we want in a table: inserted if missing; updated only when ``full``."""

    key: Any
    values: dict[str, Any]
    full: bool
    source: Item


def _insert_ignoring_conflicts(conn: Connection, table: Table) -> Insert:
    # A concurrent writer (another import, a webhook) may have inserted the same natural key
    # since we looked: skip it rather than fail the whole chunk.
    if conn.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table)


def _execute_many(conn: Connection, table: Table, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """executemany at the driver, with the statement SQLAlchemy compiled for this dialect.

    Core's per-row parameter processing costs more than SQLite's own insert; values here are
    already the right Python types, and SQLite only needs dates, instants and money spelled the
    way SQLAlchemy stores them (ISO text, float), so that Core reads them back unchanged.
    """
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if order is None:  # named parameters (psycopg): the values go as they are
        conn.exec_driver_sql(str(compiled), rows)
        return
    row_values = operator.itemgetter(*order) if len(order) > 1 else lambda r: (r[order[0]],)
    fixes: list[tuple[int, Any]] = []
    if conn.dialect.name == "sqlite":
        # Update parameters are named b_<column>; the column's type says what needs spelling.
        for i, name in enumerate(order):
            column_type = table.c[name.removeprefix("b_")].type
            form = next((f for t, f in _SQLITE_FORMS if isinstance(column_type, t)), None)
            if form is not None:
                fixes.append((i, form))
    if not fixes:
        conn.exec_driver_sql(str(compiled), [row_values(r) for r in rows])
        return
    params: list[tuple[Any, ...]] = []
    for r in rows:
        values = list(row_values(r))
        for i, form in fixes:
            if values[i] is not None:
                values[i] = form(values[i])
        params.append(tuple(values))
    conn.exec_driver_sql(str(compiled), params)


def _iso_instant(value: dt.datetime) -> str:
    return value.isoformat(" ", "microseconds")


# How SQLAlchemy's SQLite dialect stores each column type, and each Python value.
_SQLITE_FORMS: tuple[tuple[type, Any], ...] = (
    (DateTime, _iso_instant),
    (Date, dt.date.isoformat),
    (Numeric, float),
)
_SQLITE_VALUE_FORMS: dict[type, Any] = {
    dt.datetime: _iso_instant,
    dt.date: dt.date.isoformat,
    Decimal: float,
}


def stored(value: Any, sqlite: bool) -> Any:
    """A value as the driver stores and returns it: on SQLite, the spelling SQLAlchemy uses."""
    form = _SQLITE_VALUE_FORMS.get(value.__class__) if sqlite else None
    return form(value) if form is not None else value


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def select_in(
    conn: Connection, columns: Sequence[Column[Any]], key: Column[Any], keys: Collection[Any]
) -> list[Any]:
    """Rows whose ``key`` is in ``keys``, as named tuples of stored values (see stored()).

    Read at the driver for the same reason as _execute_many: converting every date and amount
    of every row read back costs more than the query, and comparing stored forms is exact.
    """
    names = tuple(c.name for c in columns)
    row_type: Any = _ROW_TYPES.get(names)
    if row_type is None:
        row_type = _ROW_TYPES[names] = namedtuple("_Stored", names)  # type: ignore[misc]
    dialect = conn.dialect.name
    rows: list[Any] = []
    values = list(keys)
    args: Any
    for start in range(0, len(values), _IN_BATCH):
        batch = values[start : start + _IN_BATCH]
        # The whole key list as one parameter: no statement with thousands of placeholders to
        # build per call, and the same SQL text every time.
        if dialect == "sqlite":
            sql, args = _keys_query(conn, columns, key), (json.dumps(batch),)
        elif dialect == "postgresql":
            sql, args = _keys_query(conn, columns, key), {"keys": batch}
        else:
            stmt = select(*columns).where(key.in_(batch))
            compiled = stmt.compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            order = compiled.positiontup
            sql = str(compiled)
            args = tuple(compiled.params[n] for n in order) if order else compiled.params
        result = conn.exec_driver_sql(sql, args)
        try:  # the driver's own tuples: wrapping each in a Row costs more than the query
            rows.extend(map(row_type._make, result.cursor.fetchall()))
        finally:
            result.close()
    return rows


_KEY_QUERIES: dict[tuple[str, tuple[str, ...], str], str] = {}


def _keys_query(conn: Connection, columns: Sequence[Column[Any]], key: Column[Any]) -> str:
    cache_key = (conn.dialect.name, tuple(str(c) for c in columns), str(key))
    sql = _KEY_QUERIES.get(cache_key)
    if sql is None:
        where: Any
        if conn.dialect.name == "sqlite":
            listed: Any = select(literal_column("value"))
            listed = listed.select_from(func.json_each(bindparam("keys")))
            where = key.in_(listed.scalar_subquery())
        else:
            where = key == func.any(bindparam("keys", type_=ARRAY(key.type)))
        sql = str(select(*columns).where(where).compile(dialect=conn.dialect))
        _KEY_QUERIES[cache_key] = sql
    return sql


def sync(
    conn: Connection,
    table: Table,
    wants: Iterable[Want],
    existing: Mapping[Any, Any],
    compare: Sequence[str],
    stamp: dt.datetime | None,
) -> dict[Any, str]:
    """Insert missing rows, update rows whose ``compare`` columns differ; return each outcome.

    Comparing first is what makes a re-import a no-op: an unchanged row is not written at all,
    so its ``updated_at`` keeps the time it really changed.
    """
    stored_values = _stored_getter(conn, table, compare)
    stored_old = operator.attrgetter(*compare) if len(compare) > 1 else _one(compare[0])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    outcome: dict[Any, str] = {}
    for want in wants:
        old = existing.get(want.key)
        if old is None:
            row = dict(want.values)
            if stamp is not None:
                row["updated_at"] = stamp
            inserts.append(row)
            outcome[want.key] = INSERTED
        elif want.full and stored_old(old) != stored_values(want.values):
            change = {f"b_{c}": want.values[c] for c in compare}
            change["b_id"] = old.id
            if stamp is not None:
                change["b_updated_at"] = stamp
            updates.append(change)
            outcome[want.key] = UPDATED
        else:
            outcome[want.key] = UNCHANGED
    if inserts:
        _execute_many(conn, table, _insert_ignoring_conflicts(conn, table), inserts)
    if updates:
        names = [*compare, "updated_at"] if stamp is not None else list(compare)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in names})
        )
        _execute_many(conn, table, stmt, updates)
    return outcome


def _one(name: str) -> Any:
    return lambda row: (getattr(row, name),)


def _stored_getter(conn: Connection, table: Table, names: Sequence[str]) -> Any:
    """A function: wanted values -> tuple of their stored forms (see stored()), in ``names`` order.

    Only the columns whose type SQLite spells differently are converted, so comparing a row
    that did not change is one tuple comparison.
    """
    pick = operator.itemgetter(*names) if len(names) > 1 else (lambda v: (v[names[0]],))
    fixes = [
        (i, form)
        for i, name in enumerate(names)
        if conn.dialect.name == "sqlite"
        and (form := next((f for t, f in _SQLITE_FORMS if isinstance(table.c[name].type, t)), None))
    ]
    if not fixes:
        return pick

    def stored(values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = list(pick(values))
        for i, form in fixes:
            if out[i] is not None:
                out[i] = form(out[i])
        return tuple(out)

    return stored


def collapse(wants: Iterable[Want]) -> dict[Any, Want]:
    """One want per key within a chunk, as if the rows had been applied one by one in order.

    A full want replaces what came before; an insert-only want counts only if nothing came
    before (the first one inserts, the rest find the row there).
    """
    chosen: dict[Any, Want] = {}
    for want in wants:
        if want.full or want.key not in chosen:
            chosen[want.key] = want
    return chosen
