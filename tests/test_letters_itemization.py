"""Issue 13 item 12: the validation notice's itemization from an imported reference date, its
interest and fees since, no STOP line, and the English notice before a translation."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select, text

from outreach.dispatch.dispatcher import DispatchCounts, dispatch_range
from outreach.media.letters.channel import PrintChannel
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.portfolio.importer import import_file
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import make_engine, migrate
from outreach.storage.models import Account
from tests import factories as f
from tests.test_import import account, rejects, write

DAY = dt.date(2026, 11, 23)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture
def printer(url: str, drop: Path, tmp_path: Path) -> Any:
    channel = build_channel("letter", {"backend": "print", "drop": drop.as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    assert isinstance(channel, PrintChannel)
    yield channel
    channel.close()


def plan_and_dispatch(engine: Engine, channel: PrintChannel) -> DispatchCounts:
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    return dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=channel)


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(data)).pages)  # fmt: skip


def letter_of(engine: Engine, drop: Path, account_id: int) -> bytes:
    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter' AND state = 'sent'"), {"a": account_id}).scalar_one()  # fmt: skip
    return (drop / DAY.isoformat() / "letters" / f"{key}.pdf").read_bytes()


def test_the_itemization_comes_from_the_imported_reference_date_with_interest_and_fees(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    # Last statement on October 31: 1,100.00 owed; since then 12.34 interest, 25.00 fees and a
    # payment of 137.34 (before the snapshot, so the snapshot balance is 1,000.00); another
    # 40.00 paid since the snapshot.
    acc = f.add_account(engine, as_of=DAY, dpd=5, balance="1000.00", past_due="300.00",
                        itemization_date=dt.date(2026, 10, 31), itemization_kind="last_statement",
                        itemization_amount=Decimal("1100.00"),
                        interest_since_itemization=Decimal("12.34"),
                        fees_since_itemization=Decimal("25.00"))  # fmt: skip
    f.add_payment(engine, acc["account_id"], dt.date(2026, 11, 10), "137.34")
    f.add_payment(engine, acc["account_id"], DAY, "40.00")
    assert plan_and_dispatch(engine, printer).sent == 1
    words = pdf_text(letter_of(engine, drop, acc["account_id"]))
    assert "As of October 31, 2026, you owed: 1,100.00 USD" in words
    assert "Between October 31, 2026 and today:" in words
    assert "interest: + 12.34 USD" in words and "fees: + 25.00 USD" in words
    assert "- 177.34 USD" in words  # both payments since the itemization date
    assert "Total amount of the debt now: 960.00 USD" in words
    # The snapshot date (November 22) is none of the reference dates 1006.34(b)(3) allows.
    assert "November 22, 2026" not in words


@pytest.mark.parametrize("case", ["not imported", "does not add up"])
def test_a_validation_notice_without_a_true_itemization_is_blocked_with_its_reason(
    engine: Engine, printer: PrintChannel, drop: Path, case: str
) -> None:
    columns: dict[str, Any] = (
        {"itemization_date": None, "itemization_kind": None, "itemization_amount": None}
        if case == "not imported"
        else {"itemization_date": dt.date(2026, 10, 31), "itemization_kind": "last_statement",
              "itemization_amount": Decimal("1200.00")}  # 200.00 more than now, no payment
    )  # fmt: skip
    acc = f.add_account(engine, as_of=DAY, dpd=5, balance="1000.00", **columns)
    counts = plan_and_dispatch(engine, printer)
    assert counts.sent == 0
    (row,) = f.contacts(engine, channel="letter", account_id=acc["account_id"])
    assert row["verdict"] == "block" and "us_reg_f.itemization_unknown" in row["reasons"]
    assert not drop.exists() or not list(drop.rglob("*.pdf"))


def test_the_validation_notice_carries_no_stop_instruction(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5)
    assert plan_and_dispatch(engine, printer).sent == 1
    words = pdf_text(letter_of(engine, drop, acc["account_id"]))
    assert "We are a debt collector" in words
    assert "STOP" not in words and "unsubscribe" not in words
    for lang in ("en", "zh-CN"):
        body = (PROJECT_ROOT / "templates" / lang / "letter" / "validation_notice.txt").read_text()
        assert "STOP" not in body and "退订" not in body


@f.needs_cjk_font
def test_a_chinese_speaking_us_consumer_gets_the_english_notice_then_the_chinese_one(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5, language="zh-CN")
    assert plan_and_dispatch(engine, printer).sent == 1
    words = pdf_text(letter_of(engine, drop, acc["account_id"]))
    english = words.find("We are a debt collector")
    chinese = words.find("我们是债务催收方")
    assert 0 <= english < chinese
    # Both carry the itemization, the deadline and the response form.
    assert words.count("Call or write to us by December 31, 2026") == 1
    assert "如需对全部或部分债务提出异议，请于2026年12月31日前致电或致函我们" in words
    assert words.index("How do you want to respond?") < chinese < words.index("您希望如何回复")
    assert "Total amount of the debt now: 1,000.00 USD" in words
    assert "当前欠款总额： 1,000.00 USD" in words or "当前欠款总额：1,000.00 USD" in words


# --- the import ---------------------------------------------------------------------------------


@pytest.fixture
def import_engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'import.db'}"
    migrate(url)
    return make_engine(url)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_itemization_imports_and_a_partial_or_bad_one_is_rejected_with_its_field(
    tmp_path: Path, import_engine: Engine, suffix: str
) -> None:
    good = {"itemization_date": "2026-10-31", "itemization_kind": "Last_Statement",
            "itemization_amount": "1250.50", "interest_since_itemization": "10.00"}  # fmt: skip
    bad = [
        ({"itemization_date": "2026-10-31"}, "itemization_kind", "required with"),
        ({**good, "itemization_amount": None}, "itemization_amount", "required with"),
        ({"fees_since_itemization": "5.00"}, "itemization_date", "required with"),
        ({**good, "itemization_kind": "snapshot"}, "itemization_kind", "is not one of"),
        ({**good, "itemization_date": "2026-11-20"}, "itemization_date", "after balance_as_of"),
        ({**good, "itemization_kind": "charge_off", "charge_off_date": "2026-09-30"},
         "itemization_date", "differs from charge_off_date"),
        ({**good, "interest_since_itemization": "-1.00"}, "interest_since_itemization",
         "negative"),
    ]  # fmt: skip
    records = [account(f"B{n}", f"Q{n}", **changes) for n, (changes, _, _) in enumerate(bad)]
    records += [account("A1", "P1", **good), account("A2", "P2")]
    report = import_file(write(tmp_path / f"p{suffix}", records), engine=import_engine)
    got = rejects(report)
    assert [r["field"] for r in got] == [field for _, field, _ in bad]
    for entry, (_, _, reason) in zip(got, bad, strict=True):
        assert reason in entry["reason"], entry
    with import_engine.connect() as conn:
        stored = {a.account_ref: a for a in conn.execute(select(Account)).all()}
    a1, a2 = stored["A1"], stored["A2"]
    assert (a1.itemization_date, a1.itemization_kind, a1.itemization_amount) == (
        dt.date(2026, 10, 31),
        "last_statement",
        Decimal("1250.50"),
    )
    assert a1.interest_since_itemization == Decimal("10.00") and a1.fees_since_itemization is None
    assert a2.itemization_date is None and a2.itemization_amount is None
