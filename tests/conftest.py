"""Shared test set-up: keep Airflow and the app away from real homes and databases.

- Airflow writes its config and logs under ``AIRFLOW_HOME`` as soon as it is imported, so point
  it at a throwaway directory before any test module imports it.
- Tests marked ``postgres`` skip unless ``OUTREACH_TEST_POSTGRES_URL`` names a database.
- ``app_data`` gives a test its own data dir, SQLite app DB and outbox.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="outreach-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "dags")
# Provider credentials from the developer's shell must never reach a test.
for _name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
    del os.environ[_name]


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("OUTREACH_TEST_POSTGRES_URL"):
        return
    skip = pytest.mark.skip(reason="OUTREACH_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def postgres_url() -> str:
    """The scratch PostgreSQL database for tests marked ``postgres``."""
    url = os.environ.get("OUTREACH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("OUTREACH_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
def app_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data dir with its own SQLite app DB and outbox (set in the environment)."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(data))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{data / 'outreach.db'}")
    monkeypatch.setenv("OUTREACH_OUTBOX_URL", f"sqlite:///{data / 'outbox.db'}")
    yield data


# Who is writing (outreach.kernel.identity) has no default and dispatch refuses to start without it:
# every test runs with this test identity unless it removes it. Never a real company's.
TEST_IDENTITY = {
    "OUTREACH_CREDITOR_NAME": "Testing Creditor Bank",
    "OUTREACH_COLLECTOR_NAME": "Testing Recovery LLC",
    "OUTREACH_COLLECTOR_ADDRESS": "PO Box 4242|Testville, NY 10001",
    "OUTREACH_SERVICE_PHONE": "+1 800 000 0199",
    "OUTREACH_PAY_URL": "https://pay.testing.invalid",
}


# Set at import too: module-scoped fixtures (a whole Airflow stack) build their environment
# before any function-scoped fixture runs.
os.environ.update(TEST_IDENTITY)


@pytest.fixture(autouse=True)
def test_identity(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test identity in the environment (subprocesses inherit it)."""
    for name, value in TEST_IDENTITY.items():
        monkeypatch.setenv(name, value)
    return TEST_IDENTITY


# The set-up the letter, notice and fact tests share (their modules use ``data_dir`` for every
# test with ``pytestmark = pytest.mark.usefixtures("data_dir")``). A module that defines a
# fixture of the same name uses its own.


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch ``OUTREACH_DATA_DIR`` (drops, rejects, quarantine) for the test."""
    data = tmp_path / "data"
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(data))
    return data


@pytest.fixture
def url(tmp_path: Path) -> str:
    """The test's own SQLite application database."""
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def engine(url: str) -> Any:
    """That database, migrated."""
    from tests import factories

    return factories.database(url)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """Where the print channel writes letters and manifests."""
    return tmp_path / "drop" / "mailhouse"


@pytest.fixture
def printer(url: str, drop: Path, tmp_path: Path) -> Iterator[Any]:
    """The real print channel (PDF letters) on the test's database and drop folder."""
    from outreach.media.letters.channel import PrintChannel
    from outreach.planning.kinds import build_channel

    channel = build_channel("letter", {"backend": "print", "drop": drop.as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    assert isinstance(channel, PrintChannel)
    yield channel
    channel.close()
