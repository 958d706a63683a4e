"""The Alembic revisions build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from outreach.storage.db import make_engine, migrate
from outreach.storage.models import Base

# Tables of others sharing the database (the outbox's, a scratch test's) are not ours.
OURS = set(Base.metadata.tables)


def _drift(url: str) -> list[object]:
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    return [d for d in diffs if not _theirs(d)]


def _theirs(diff: object) -> bool:
    """A table, or an index of a table, that our models do not describe."""
    if not isinstance(diff, tuple):
        return False
    if diff[0] == "remove_table":
        return diff[1].name not in OURS
    if diff[0] == "remove_index":
        return diff[1].table.name not in OURS
    return False


def test_the_migrated_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert _drift(url) == []
    engine = make_engine(url)
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("contact_point")}
    engine.dispose()
    assert "ix_contact_point_value" in indexes


@pytest.mark.postgres
def test_the_migrated_postgres_schema_matches_the_models(postgres_url: str) -> None:
    assert _drift(postgres_url) == []
