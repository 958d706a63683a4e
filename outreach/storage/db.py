"""Engine and session factory for the application database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from outreach import settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the dispatcher and the planner read while another task writes; NORMAL sync is
    # durable across process crashes (not power loss), which is what reruns rely on.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _without_row_values(context: ExceptionContext) -> None:
    """Keep the values out of a PostgreSQL error's text, which hide_parameters does not cover:
    the server's DETAIL quotes the failing row ("Failing row contains (...)", "Key
    (person_ref)=(...)"), and a data exception (SQLSTATE class 22) ends its message with the
    value (``invalid input syntax for type integer: "..."``)."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return
    if (getattr(diag, "sqlstate", None) or "").startswith("22"):
        primary = primary.split(": ", 1)[0]
    if str(orig) == primary:
        return
    orig.args = (primary,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args:
        wrapped.args = (f"({orig.__class__.__module__}.{orig.__class__.__name__}) {primary}",)


def make_engine(url: str | None = None) -> Engine:
    url = url or settings.database_url()
    # hide_parameters: a database error's text (which reaches logs, task logs and the CLI)
    # never carries the bound values, which are names, addresses and numbers.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    event.listen(engine, "handle_error", _without_row_values)
    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return engine_for(settings.database_url())


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(url: str | None = None) -> None:
    """Bring the schema to the latest Alembic revision (safe to call on every start)."""
    from alembic import command
    from alembic.config import Config

    migrations = Path(__file__).resolve().parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", (url or settings.database_url()).replace("%", "%%"))
    command.upgrade(cfg, "head")
