"""The console's experiments page in a real browser (Debian's Chromium via Playwright) against a
real Airflow api-server with the login on: the ops user logs in, reads the arms, their
assignments and results, and proposes the challenger's ladder through the page's form; the
proposal is recorded and the ladder in force is unchanged until a second person approves.

Slow and needs a browser: runs only with OUTREACH_TEST_BROWSER=1 and /usr/bin/chromium, like
tests/test_console_browser.py (whose browser fixture and login it uses).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.airflow_stack_loader import load_stack_module
from tests.test_console_browser import (
    CHROMIUM,
    PASSWORD,
    ROLE,
    TIMEOUT_MS,
    USER,
    _log_in,
    browser,
)

__all__ = ["browser"]  # the fixture, used by name

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("OUTREACH_TEST_BROWSER") != "1" or not CHROMIUM.exists(),
        reason="drives Chromium against a real api-server: set OUTREACH_TEST_BROWSER=1 and "
        "install /usr/bin/chromium",
    ),
]

DAY = dt.date(2026, 11, 23)


@dataclass
class Console:
    base_url: str
    engine: Engine
    challenger_version: str
    in_force_version: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    from outreach.planning.ladder import load_ladder
    from outreach.planning.planner import iter_plan
    from tests import factories as f
    from tests.test_experiments_planner import DEFAULT, challenger_text

    stack_mod = load_stack_module()
    runner = stack_mod.load_airflow_local()
    root = tmp_path_factory.mktemp("experiments-browser")
    data = root / "data"
    data.mkdir()
    (root / "challenger.yaml").write_text(challenger_text(), encoding="utf-8")
    experiments = root / "experiments.yaml"
    experiments.write_text(
        "experiments:\n  - id: cadence\n    status: running\n    start: 2026-11-01\n"
        "    arms:\n      - {name: champion, ladder: in_force, share: 0.5}\n"
        "      - {name: challenger, ladder: challenger.yaml, share: 0.5}\n",
        encoding="utf-8",
    )
    os.environ["OUTREACH_EXPERIMENTS"] = str(experiments)  # for the plan below
    database_url = f"sqlite:///{data / 'outreach.db'}"
    engine = f.database(database_url)
    for _ in range(12):
        f.add_account(engine, as_of=DAY, dpd=5)
    ladder = load_ladder(DEFAULT)
    for _ in iter_plan(engine, ladder, DAY, 100):
        pass
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update({
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": database_url,
        "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
        "OUTREACH_EXPERIMENTS": str(experiments),
    })  # fmt: skip
    home = root / "airflow"
    home.mkdir()
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}) + "\n")
    env = runner.airflow_env(home, base=base)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    with (root / "bootstrap.log").open("w") as log:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300)
    stack = stack_mod.AirflowStack.start(
        env, root / "logs", components=("api-server",), users=f"{USER}:{ROLE}", timeout=120
    )
    try:
        yield Console(stack.api.base_url, engine,
                      load_ladder(root / "challenger.yaml").version, ladder.version)
    except BaseException:
        print(stack.log_tail())
        raise
    finally:
        stack.stop()
        engine.dispose()
        os.environ.pop("OUTREACH_EXPERIMENTS", None)


def test_ops_user_reads_the_experiment_and_proposes_the_challenger(
    console: Console, browser: Any, tmp_path: Path
) -> None:
    with console.engine.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT arm, COUNT(*) FROM experiment_assignment GROUP BY arm")).all())
    assert set(counts) == {"champion", "challenger"}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, console.base_url)
        shown = page.goto(f"{console.base_url}/outreach-console/experiments")
        assert shown is not None and shown.status == 200
        assert "Experiments" in page.inner_text("nav")
        arms = page.locator("#exp-cadence table.arms tr").all_inner_texts()
        for arm, n in counts.items():
            assert any(row.startswith(arm) and row.rstrip().endswith(str(n)) for row in arms), arms
        results = page.locator("#exp-cadence table.results tr").all_inner_texts()
        assert len(results) == 3  # a header and one row per arm
        page.screenshot(path=str(tmp_path / "experiments.png"), full_page=True)
        form = page.locator("form.promote")
        form.locator("select[name=arm]").select_option("challenger")
        with page.expect_navigation():
            form.locator("button").click()
        body = page.inner_text("body")
        assert f"proposed as version {console.challenger_version}" in body
        assert "winner_proposed" in body
    finally:
        context.close()
    with console.engine.connect() as conn:
        state = conn.execute(text("SELECT state, proposed_by FROM ladder_version WHERE version = :v"),
                             {"v": console.challenger_version}).one()  # fmt: skip
        active = conn.execute(text("SELECT COUNT(*) FROM ladder_version WHERE state = 'active'"))
        assert tuple(state) == ("proposed", USER)
        assert active.scalar() == 0  # the ladder in force is still the configured file
