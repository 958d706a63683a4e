"""The Alembic revisions build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from outreach.db import make_engine, migrate
from outreach.models import Base


def _drift(url: str) -> list[object]:
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


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
