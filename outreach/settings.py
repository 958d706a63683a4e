"""The environment: every ``OUTREACH_*`` variable the project reads, with its check, and the typed
readers of the ones outreach reads (where the data, config and templates live, which database
it uses, the leases and limits).

Each knob is declared once here, in ``KNOBS``: ``outreach.services.config`` validates every
``OUTREACH_*`` variable set against it before a run acts (an unknown name or a bad value stops
the run, naming it), and a reader reads a knob only through its declaration, so a misspelt name
is an error in the code, never a default taken silently. ``contact_channels`` (which imports
nothing of outreach) and ``outreach.kernel.identity`` (whose readers take the environment as a
mapping) read their own knobs; they are declared here all the same.

The readers read ``os.environ`` at each call, never a copy taken once: the tests and
``outreach scenario`` (``outreach/entry/scenarios.py``) set variables in the running process
between calls, and a reader must see what they set.

This module sits below every layer (the storage reads the database URL): it imports nothing of
outreach.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


# --- the checks -----------------------------------------------------------------------------


def _seconds(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number > 0


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _positive_whole(value: str) -> bool:
    return value.strip().isdigit() and int(value) > 0


def _empty_or(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: not value.strip() or check(value)


def _database_url(value: str) -> bool:
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        return False
    return True


def _text(value: str) -> bool:
    return bool(value.strip())


def _file(value: str) -> bool:
    return Path(value).is_file()


def _directory(value: str) -> bool:
    return Path(value).is_dir()


# --- the knobs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Knob:
    """One ``OUTREACH_*`` variable: its name, the check a set value must pass, and what it must
    be (the words of the error that refuses it)."""

    name: str
    check: Callable[[str], bool]
    must_be: str

    def get(self, default: T) -> str | T:
        """The variable's text now, or ``default`` when it is not set (an empty value is set)."""
        return os.environ.get(self.name, default)


DATA_DIR = Knob("OUTREACH_DATA_DIR", _text, "a directory path")
CONFIG_DIR = Knob("OUTREACH_CONFIG_DIR", _directory, "an existing directory")
TEMPLATES_DIR = Knob("OUTREACH_TEMPLATES_DIR", _directory, "an existing directory")
LADDER = Knob("OUTREACH_LADDER", _file, "an existing ladder file")
POLICY = Knob("OUTREACH_POLICY", _file, "an existing file")
AGENCIES = Knob("OUTREACH_AGENCIES", _file, "an existing file")
ARRANGEMENTS = Knob("OUTREACH_ARRANGEMENTS", _file, "an existing file")
# Measurement (issue 16): KPI attribution, unit costs, targets and score bands; experiments;
# the simulator's behavioural model; where the weekly report is dropped.
MEASUREMENT = Knob("OUTREACH_MEASUREMENT", _file, "an existing file")
EXPERIMENTS = Knob("OUTREACH_EXPERIMENTS", _file, "an existing file")
SCORE = Knob("OUTREACH_SCORE", _file, "an existing file")
SIMULATION = Knob("OUTREACH_SIMULATION", _file, "an existing file")
REPORT_DROP = Knob("OUTREACH_REPORT_DROP", _text, "a directory path or object-storage URL")
DATABASE_URL = Knob(
    "OUTREACH_DATABASE_URL", _database_url,
    "a database URL (postgresql+psycopg://..., sqlite:///...)",
)  # fmt: skip
OUTBOX_URL = Knob(
    "OUTREACH_OUTBOX_URL", _database_url,
    "a database URL (sqlite:///..., postgresql+psycopg://...)",
)  # fmt: skip
SENDING_LEASE_SECONDS = Knob("OUTREACH_SENDING_LEASE_SECONDS", _seconds, "a number of seconds above 0")
CALL_LEASE_SECONDS = Knob("OUTREACH_CALL_LEASE_SECONDS", _seconds, "a number of seconds above 0")
WEBHOOK_MAX_AGE_SECONDS = Knob(
    "OUTREACH_WEBHOOK_MAX_AGE_SECONDS", _seconds, "a number of seconds above 0"
)
PUBLIC_BASE_URL = Knob(
    "OUTREACH_PUBLIC_BASE_URL",
    _empty_or(_http_url),  # empty: not set (docker-compose.yaml passes it through empty)
    "an http(s) URL such as https://ops.example.com/outreach",
)
WEBHOOK_MAX_BODY_BYTES = Knob(
    "OUTREACH_WEBHOOK_MAX_BODY_BYTES", _positive_whole, "a whole number of bytes above 0"
)
CALL_MAX_OPEN_TASKS = Knob("OUTREACH_CALL_MAX_OPEN_TASKS", _positive_whole, "a whole number above 0")
CONSOLE_AGENT_ROLES = Knob("OUTREACH_CONSOLE_AGENT_ROLES", _text, "a comma-separated list of roles")
CONSOLE_CSRF_SECRET = Knob("OUTREACH_CONSOLE_CSRF_SECRET", _text, "not blank")
CONSOLE_TRUSTED_ORIGINS = Knob(
    "OUTREACH_CONSOLE_TRUSTED_ORIGINS", _text, "a comma-separated list of origins"
)
CONSOLE_PII_ROLES = Knob("OUTREACH_CONSOLE_PII_ROLES", _text, "a comma-separated list of roles")
CONSOLE_LADDER_ROLES = Knob("OUTREACH_CONSOLE_LADDER_ROLES", _text, "a comma-separated list of roles")
SELF_SERVICE_BASE_URL = Knob(
    "OUTREACH_SELF_SERVICE_BASE_URL",
    _empty_or(_http_url),  # empty: not set; messages then carry no self-service link
    "an http(s) URL such as https://pay.example.com (where the self-service app is served)",
)
CONSOLE_RESOLVE_ROLES = Knob(
    "OUTREACH_CONSOLE_RESOLVE_ROLES", _text, "a comma-separated list of roles"
)

# Every OUTREACH_* variable the project reads, with its check and what it must be. A name not
# here is refused: a typo (OUTREACH_SENDNG_LEASE_SECONDS) would otherwise leave the default in
# force without a word. A new knob is added here and in the docs page of its area. The order is
# the order the refusal of an unknown name lists them in.
KNOBS: tuple[Knob, ...] = (
    DATA_DIR,
    CONFIG_DIR,
    TEMPLATES_DIR,
    LADDER,
    POLICY,
    AGENCIES,
    ARRANGEMENTS,
    MEASUREMENT,
    EXPERIMENTS,
    SCORE,
    SIMULATION,
    REPORT_DROP,
    DATABASE_URL,
    OUTBOX_URL,
    SENDING_LEASE_SECONDS,
    CALL_LEASE_SECONDS,
    WEBHOOK_MAX_AGE_SECONDS,
    PUBLIC_BASE_URL,
    WEBHOOK_MAX_BODY_BYTES,
    CALL_MAX_OPEN_TASKS,
    CONSOLE_AGENT_ROLES,
    CONSOLE_CSRF_SECRET,
    CONSOLE_TRUSTED_ORIGINS,
    # Who is writing: read by outreach.kernel.identity.
    Knob("OUTREACH_PAY_URL", _http_url, "an http(s) URL"),
    Knob("OUTREACH_CREDITOR_NAME", _text, "not blank"),
    Knob("OUTREACH_SERVICE_PHONE", _text, "not blank"),
    Knob("OUTREACH_COLLECTOR_NAME", _text, "not blank"),
    Knob("OUTREACH_COLLECTOR_ADDRESS", _text, "not blank"),
    Knob("OUTREACH_CREDITOR_NAME_ZH", _text, "not blank"),
    Knob("OUTREACH_COLLECTOR_NAME_ZH", _text, "not blank"),
    Knob("OUTREACH_CN_SERVICE_PHONE", _text, "not blank"),
    # Read by contact_channels (the letters' fonts, the rate limiter's Redis keys).
    Knob("OUTREACH_LETTER_FONT", _text, "not blank"),
    Knob("OUTREACH_LETTER_CJK_FONT", _text, "not blank"),
    Knob("OUTREACH_RATELIMIT_PREFIX", _text, "not blank"),
    CONSOLE_PII_ROLES,
    CONSOLE_LADDER_ROLES,
    CONSOLE_RESOLVE_ROLES,
    Knob("OUTREACH_IMAGE", _text, "an image name"),  # docker-compose.yaml's image tag
    SELF_SERVICE_BASE_URL,
)


_BY_NAME = {knob.name: knob for knob in KNOBS}


def knob(name: str) -> Knob:
    """The declared knob of that name; KeyError for a name not declared in ``KNOBS``."""
    return _BY_NAME[name]


# --- where things live ----------------------------------------------------------------------


def data_dir() -> Path:
    """The directory for the embedded SQLite databases, outbox, rejects and reports."""
    path = Path(DATA_DIR.get(PROJECT_ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The application database: ``OUTREACH_DATABASE_URL`` or a SQLite file in the data dir."""
    url = DATABASE_URL.get(None)
    if url:
        return url
    return f"sqlite:///{data_dir() / 'outreach.db'}"


def outbox_url() -> str:
    """The outbox backend's own database (it stands in for a provider, so it is kept apart)."""
    return OUTBOX_URL.get(None) or f"sqlite:///{data_dir() / 'outbox.db'}"


def config_dir() -> Path:
    return Path(CONFIG_DIR.get(PROJECT_ROOT / "config"))


def templates_dir() -> Path:
    return Path(TEMPLATES_DIR.get(PROJECT_ROOT / "templates"))


def ladder_path() -> Path:
    return Path(LADDER.get(config_dir() / "ladders" / "default.yaml"))


# --- leases and limits ----------------------------------------------------------------------


def sending_lease_seconds() -> float:
    """How long a claim is trusted before its worker is presumed dead (default 300)."""
    return float(SENDING_LEASE_SECONDS.get("300"))


def call_lease_seconds() -> float | None:
    """``OUTREACH_CALL_LEASE_SECONDS``, or None when unset or empty."""
    seconds = CALL_LEASE_SECONDS.get(None)
    return float(seconds) if seconds else None


def call_max_open_tasks() -> int | None:
    """``OUTREACH_CALL_MAX_OPEN_TASKS`` (at least 1), or None when unset or empty."""
    raw = CALL_MAX_OPEN_TASKS.get(None)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"OUTREACH_CALL_MAX_OPEN_TASKS: a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"OUTREACH_CALL_MAX_OPEN_TASKS: at least 1, got {value}")
    return value


def webhook_max_body_bytes() -> int | None:
    """``OUTREACH_WEBHOOK_MAX_BODY_BYTES``, or None when unset or blank. A value that is not a
    positive whole number is an error."""
    raw = WEBHOOK_MAX_BODY_BYTES.get("").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{WEBHOOK_MAX_BODY_BYTES.name}: expected a positive whole number of bytes, got {raw!r}"
        )
    return int(raw)


def webhook_max_age_seconds(default: float) -> float:
    return float(WEBHOOK_MAX_AGE_SECONDS.get(default))


def public_base_url() -> str | None:
    """``OUTREACH_PUBLIC_BASE_URL``, None when unset or empty."""
    return PUBLIC_BASE_URL.get(None) or None


# --- the console ----------------------------------------------------------------------------


def role_list(knob: Knob, default: str) -> frozenset[str]:
    """A comma-separated list of roles, lower-cased."""
    raw = knob.get(default)
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def console_csrf_secret() -> str:
    return CONSOLE_CSRF_SECRET.get("")


def console_trusted_origins() -> str:
    return CONSOLE_TRUSTED_ORIGINS.get("")


# --- the self-service page ------------------------------------------------------------------


def self_service_base_url() -> str | None:
    """``OUTREACH_SELF_SERVICE_BASE_URL`` without a trailing slash: the public root of the
    self-service app (docs/self-service.md); None when unset or empty (no links are made)."""
    value = SELF_SERVICE_BASE_URL.get("").strip()
    return value.rstrip("/") or None
