"""Agency placements' use cases for ``outreach agencies`` (``outreach.media.agency.placement``):
check the config, import an agency's returns, recall what is due back, write placement files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from outreach.media.agency.config import (
    AgencyConfig,
    agency_config_path,
    check_agency_config_text,
)
from outreach.media.agency.files import recall_placements as _recall_placements
from outreach.media.agency.files import write_placement_files as _write_placement_files
from outreach.media.agency.returns import import_agency_returns as _import_agency_returns

__all__ = [
    "AgencyConfig", "agency_config_path", "check_agency_config_text", "import_agency_returns",
    "recall_placements", "write_placement_files",
]  # fmt: skip


def import_agency_returns(engine: Engine, agency: str, path: str | Path, at: dt.datetime
                          ) -> dict[str, Any]:  # fmt: skip
    """Import ``agency``'s returns CSV."""
    return _import_agency_returns(engine, agency, path, at)


def recall_placements(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Recall what is due back on ``day`` and write the recall files."""
    return _recall_placements(engine, day)


def write_placement_files(engine: Engine, day: dt.date) -> dict[str, int]:
    """Write the day's placement file per agency."""
    return _write_placement_files(engine, day)
