"""Where the project keeps its data and which database it uses, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The directory for the embedded SQLite databases, outbox, rejects and reports."""
    path = Path(os.environ.get("OUTREACH_DATA_DIR", PROJECT_ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The application database: ``OUTREACH_DATABASE_URL`` or a SQLite file in the data dir."""
    url = os.environ.get("OUTREACH_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'outreach.db'}"


def outbox_url() -> str:
    """The outbox backend's own database (it stands in for a provider, so it is kept apart)."""
    return os.environ.get("OUTREACH_OUTBOX_URL") or f"sqlite:///{data_dir() / 'outbox.db'}"


def config_dir() -> Path:
    return Path(os.environ.get("OUTREACH_CONFIG_DIR", PROJECT_ROOT / "config"))


TEMPLATES_DIR_ENV = "OUTREACH_TEMPLATES_DIR"


def templates_dir() -> Path:
    return Path(os.environ.get(TEMPLATES_DIR_ENV, PROJECT_ROOT / "templates"))


def ladder_path() -> Path:
    return Path(os.environ.get("OUTREACH_LADDER", config_dir() / "ladders" / "default.yaml"))
