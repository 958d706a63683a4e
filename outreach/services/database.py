"""The application database for the entry points: its engine, and the schema brought to head
first (what every CLI command does before it acts)."""

from __future__ import annotations

from sqlalchemy import Engine

from outreach.storage.db import get_engine, migrate


def engine() -> Engine:
    """The application database's engine (``OUTREACH_DATABASE_URL``), opened on first use."""
    return get_engine()


def migrated_engine() -> Engine:
    """Create or upgrade the schema, then the engine."""
    migrate()
    return get_engine()
