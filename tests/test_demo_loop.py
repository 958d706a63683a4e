"""The demo's two days of the resolution loop, through the services: a generated portfolio is
imported and settled on the first day, the payment processor pays some of what falls due over
the week (one payment comes back), and the later day's settling judges the rest; the days'
summaries count promises made, kept, partly kept and broken, instalments paid and missed."""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text

from outreach.kernel import clock
from outreach.operations.reporting import day_summary, format_summary
from outreach.portfolio.generator import generate
from outreach.services import daily as service
from outreach.storage.db import get_engine

REPO = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 11, 20)
LATER = DAY + dt.timedelta(days=7)


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("demo-loop") / "data"
    data.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OUTREACH_DATA_DIR", str(data))
        patch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{data / 'outreach.db'}")
        patch.setenv("OUTREACH_OUTBOX_URL", f"sqlite:///{data / 'outbox.db'}")
        demo = _demo()
        # The first day's import and settling happen on that day (the demo runs it today).
        with clock.use(dt.datetime.combine(DAY, dt.time(9))):
            service.setup_database()
            generated = generate(2500, seed=7, out=data / "inbox" / "portfolio.jsonl", as_of=DAY)
            imported = service.ingest()
            settled = service.settle(DAY)
            paid = demo._pay_between_days(DAY, LATER)
            later = service.settle(LATER, clock="logical")
        engine = get_engine()
        yield {
            "demo": demo,
            "generated": generated,
            "imported": imported,
            "settled": settled,
            "paid": paid,
            "later": later,
            "first": day_summary(engine, DAY)["resolution"],
            "last": day_summary(engine, LATER)["resolution"],
            "between": [
                day_summary(engine, DAY + dt.timedelta(days=n))["resolution"] for n in range(1, 7)
            ],
            "engine": engine,
        }


def _total(days: list[dict[str, dict[str, int]]], subject: str, state: str) -> int:
    return sum(d.get(subject, {}).get(state, 0) for d in days)


def test_the_first_day_imports_the_loop_and_settles_what_is_due(loop: dict[str, Any]) -> None:
    generated, first = loop["generated"], loop["first"]
    assert loop["imported"]["rejected"] == 0
    # Each promise is recorded as made when the consumer made it (days before the import).
    made = [day_summary(loop["engine"], DAY - dt.timedelta(days=n))["resolution"]
            for n in range(31)]  # fmt: skip
    assert _total(made, "promise", "open") == generated.promises
    assert first["arrangement"]["active"] >= generated.arrangements
    assert first["payment"]["posted"] == generated.payments
    assert first["payment"]["reversed"] == generated.payment_reversals
    # Paid in full on the day: kept; past their date and grace unpaid: broken.
    assert first["promise"]["kept"] > 0 and first["promise"]["broken"] > 0
    assert first["instalment"]["missed"] > 0
    assert loop["settled"]["promises_kept"] == first["promise"]["kept"]


def test_payments_between_the_days_keep_promises_and_pay_instalments(
    loop: dict[str, Any],
) -> None:
    paid, between = loop["paid"], loop["between"]
    assert paid["promise_full"] > paid["promise_part"] > 0 and paid["promise_unpaid"] > 0
    assert paid["instalment_paid"] > 0 and paid["returned"] == 1
    # Each payment in full keeps its promise on its day; the returned one takes it back.
    assert _total(between, "promise", "kept") == paid["promise_full"]
    assert _total(between, "payment", "reversed") == 1
    assert _total(between, "instalment", "paid") >= paid["instalment_paid"]
    with loop["engine"].connect() as conn:
        back = conn.execute(text(
            "SELECT p.status FROM payment y JOIN payment_allocation l ON l.payment_id = y.id "
            "JOIN promise p ON p.id = l.target_id AND l.target = 'promise' "
            "WHERE y.status = 'reversed' AND y.payment_ref LIKE 'DEMO-%'"
        )).scalar_one()  # fmt: skip
    assert back in ("open", "broken")  # what the returned payment had kept is kept no more


def test_the_later_day_judges_what_was_not_paid(loop: dict[str, Any]) -> None:
    last = loop["last"]
    assert last["promise"].get("broken", 0) > 0 and last["promise"].get("partly_kept", 0) > 0
    assert loop["later"]["promises_broken"] == last["promise"]["broken"]
    text_summary = format_summary(day_summary(loop["engine"], LATER))
    assert "Resolution loop" in text_summary and "partly kept" in text_summary
    with loop["engine"].connect() as conn:
        overdue = conn.execute(
            text("SELECT COUNT(*) FROM promise WHERE status = 'open' AND pause_until < :d"),
            {"d": LATER},
        ).scalar_one()
    assert overdue == 0  # every promise past its date and grace is judged


def test_the_demo_prints_the_loop_between_the_days(
    loop: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    loop["demo"]._print_loop(DAY + dt.timedelta(days=1), LATER)
    printed = capsys.readouterr().out
    assert f"from {DAY + dt.timedelta(days=1)} to {LATER}" in printed
    assert f"kept {loop['paid']['promise_full']:,}" in printed
    examples = loop["demo"]._loop_examples()
    assert set(examples) == {"promise kept", "promise broken", "instalment missed"}
