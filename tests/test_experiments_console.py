"""The console's experiments page, behind Airflow's real authentication: every role reads it;
the promote form is for the ladder roles, carries the session's CSRF token and refuses another
site's post; a promotion is only proposed (a second person approves it on the ladder page)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from outreach.entry.console import create_app
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from tests import factories as f
from tests.test_console import EVIL, NOW, SAME, auth_manager, bearer, cookie_client, form_token
from tests.test_experiments_planner import DEFAULT, write_experiments

__all__ = ["auth_manager"]  # the fixture, used by name

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def ledger(app_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    write_experiments(tmp_path, monkeypatch)
    engine = f.database(f"sqlite:///{app_data / 'outreach.db'}")
    for _ in range(10):
        f.add_account(engine, as_of=DAY, dpd=5)
    for _ in iter_plan(engine, load_ladder(DEFAULT), DAY, 1000):
        pass
    return {"engine": engine, "tmp": tmp_path}


def test_every_role_reads_the_page_with_arms_shares_assignments_and_results(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    client = TestClient(create_app(engine=ledger["engine"], now=lambda: NOW))
    viewer = bearer(auth_manager, "vic", "VIEWER")
    assert client.get("/experiments").status_code == 401
    page = client.get("/experiments", headers=viewer)
    assert page.status_code == 200
    with ledger["engine"].connect() as conn:
        counts = dict(
            conn.execute(text("SELECT arm, COUNT(*) FROM experiment_assignment GROUP BY arm")).all()
        )
    assert "cadence" in page.text and "50%" in page.text
    for arm, n in counts.items():
        assert f"<td>{arm}" in page.text and f"<td>{n}</td>" in page.text
    assert "recovery rate" in page.text
    assert 'action="/experiments/promote"' not in page.text  # not for a viewer
    board = client.get("/api/experiments", headers=viewer).json()
    assert board[0]["accounts"] == sum(counts.values())
    assert {a["arm"] for a in board[0]["results"]["arms"]} == set(counts)
    refused = client.post("/experiments/promote", headers=viewer,
                          data={"experiment_id": "cadence", "arm": "challenger"})  # fmt: skip
    assert refused.status_code == 403


def test_the_promote_form_checks_token_and_origin_and_only_proposes(
    auth_manager: Any, ledger: dict[str, Any]
) -> None:
    oli = cookie_client(auth_manager, ledger, "oli", "OP")
    token = form_token(oli, "/experiments")
    form = {"experiment_id": "cadence", "arm": "challenger"}
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}):
        bad = oli.post("/experiments/promote", data={**form, "csrf_token": token},
                       headers=headers, follow_redirects=False)  # fmt: skip
        assert bad.status_code == 403
    assert oli.post("/experiments/promote", data=form, headers={"Origin": SAME},
                    follow_redirects=False).status_code == 403  # no token  # fmt: skip
    with ledger["engine"].connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM experiment_event")).scalar() == 0
    done = oli.post("/experiments/promote", data={**form, "csrf_token": token},
                    headers={"Origin": SAME}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].startswith("/experiments?notice=")
    version = load_ladder(ledger["tmp"] / "challenger.yaml").version
    page = oli.get(done.headers["location"])
    assert f"proposed as version {version}" in page.text and "winner_proposed" in page.text
    # The proposer cannot approve it; another ladder user can, on the ladder page.
    ladder = oli.post("/ladder", data={"action": "approve", "version": version,
                                       "csrf_token": form_token(oli, "/ladder")},
                      headers={"Origin": SAME})  # fmt: skip
    assert "second person" in ladder.text
    ada = cookie_client(auth_manager, ledger, "ada", "ADMIN")
    ok = ada.post("/ladder", data={"action": "approve", "version": version,
                                   "csrf_token": form_token(ada, "/ladder")},
                  headers={"Origin": SAME})  # fmt: skip
    assert f"Version {version} is active." in ok.text
    assert "promoted" in ada.get("/experiments").text
