"""Letters as PDFs for the mail house: what they say, exactly once, the print batch, returned mail."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text

import outreach.media.letters.channel as letters_medium
from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.letter_fonts import letter_fonts
from contact_channels.letter_layout import read_manifest_line, render_letter
from contact_channels.letter_wording import format_date
from outreach.dispatch.dispatcher import DispatchCounts, dispatch_range
from outreach.kernel.facts import load_accounts
from outreach.media.letters.batch import MANIFEST_COLUMNS, close_print_batch
from outreach.media.letters.channel import PrintChannel
from outreach.media.letters.mailing import instalment_plans
from outreach.media.letters.returned import import_returned_mail
from outreach.planning.ladder import LANGUAGES, load_ladder
from outreach.planning.planner import iter_plan
from outreach.planning.templates_lint import lint_template
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import Step
from tests import factories as f

DAY = dt.date(2026, 11, 23)  # a Monday; the Thursday after is Thanksgiving
LADDER_PATH = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
LADDER = load_ladder(LADDER_PATH)
LETTER_TEMPLATES = ("validation_notice", "payment_reminder", "final_notice", "instalment_offer")


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


class Recording:
    """Counts the sends that reach the medium, so a duplicate cannot hide behind idempotency."""

    def __init__(self, inner: PrintChannel) -> None:
        self.inner, self.kind, self.backend = inner, inner.kind, inner.backend
        self.calls: list[str] = []
        self.messages: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls.append(message.key)
        self.messages.append(message)
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key)

    def close(self) -> None:
        pass


def plan(engine: Engine, day: dt.date = DAY, ladder: Any = LADDER) -> None:
    for _ in iter_plan(engine, ladder, day, 1000):
        pass


def dispatch(engine: Engine, channel: Any, day: dt.date = DAY) -> DispatchCounts:
    return dispatch_range(engine, day, "letter", 0, 10**9, clock="logical", channel_impl=channel)


def letter_files(drop: Path) -> dict[str, str]:
    """Every file under the drop location -> its sha256."""
    return {str(p.relative_to(drop)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(drop.rglob("*")) if p.is_file()}  # fmt: skip


def pdf_text(data: bytes) -> str:
    """The text of every page, whitespace runs as one space (table cells wrap lines)."""
    return " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(data)).pages)  # fmt: skip


def letter_of(engine: Engine, drop: Path, account_id: int, day: dt.date = DAY) -> bytes:
    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter' AND state = 'sent'"), {"a": account_id}).scalar_one()  # fmt: skip
    return (drop / day.isoformat() / "letters" / f"{key}.pdf").read_bytes()


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


# --- what the letters say -------------------------------------------------------------------------


def test_validation_notice_itemizes_the_debt_and_states_the_gates_own_validation_period_end(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5, balance="1200.00", past_due="300.00",
                        charge_off_date=dt.date(2026, 10, 1), itemization_kind="charge_off",
                        itemization_date=dt.date(2026, 10, 1),
                        itemization_amount=Decimal("1250.00"))  # fmt: skip
    f.add_payment(engine, acc["account_id"], dt.date(2026, 10, 15), "50.00")  # before the snapshot
    f.add_payment(engine, acc["account_id"], DAY, "200.00")  # since the snapshot: nets the balance
    plan(engine)
    assert dispatch(engine, printer).sent == 1
    words = pdf_text(letter_of(engine, drop, acc["account_id"]))

    # Itemization from the charge-off date: what was owed then, the payments since, now.
    assert "As of October 1, 2026, you owed:" in words
    assert "1,250.00 USD" in words  # 1,000.00 now + 250.00 paid since the charge-off
    assert "- 250.00 USD" in words and "+ 0.00 USD" in words
    assert "Total amount of the debt now:" in words and "1,000.00 USD" in words
    assert "Testing Creditor Bank" in words and "Testing Recovery LLC" in words
    assert "**** " + acc["account_ref"][-4:] in words
    assert "Pat Example" in words and "1 Main St" in words and "Town, NY 10001" in words

    # The deadline printed is the end of the validation period as the gate computes it from
    # the sending date the dispatcher recorded (receipt 5 business days on, Thanksgiving
    # skipped, then 30 days).
    with engine.connect() as conn:
        facts = load_accounts(conn, acc["account_id"], acc["account_id"], day=DAY + dt.timedelta(1),
                              cutoff=dt.datetime(2026, 11, 24))[acc["account_id"]]  # fmt: skip
    assert facts.validation_notice_sent_on == DAY
    verdict = evaluate(Step("legal"), facts.gate_facts("collector"), day=DAY + dt.timedelta(1),
                       trace=True)  # fmt: skip
    period = next(r for r in verdict.results if r.rule_id == "us_reg_f.validation_period_open")
    assert period.facts["validation_period_ends"] == "2026-12-31"
    assert f"Call or write to us by {format_date('2026-12-31', 'en')} to dispute" in words
    assert "www.cfpb.gov/debt-collection" in words


@f.needs_cjk_font
def test_zh_cn_validation_notice_prints_extractable_chinese(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5, language="zh-CN")
    plan(engine)
    assert dispatch(engine, printer).sent == 1
    data = letter_of(engine, drop, acc["account_id"])
    words = pdf_text(data)
    assert "尊敬的Pat Example" in words
    assert "我们是债务催收方" in words
    assert "当前欠款总额" in words and "1,000.00 USD" in words
    assert "2026年12月31日" in words  # the dispute deadline, in the Chinese date form
    # The letter's date: the English notice comes first (1006.34(e)), so the page is English.
    assert "November 23, 2026" in words


def test_chinese_text_extracts_from_the_embedded_truetype_font() -> None:
    # Without an embeddable CJK font a Chinese letter is refused (tests/test_letters_cn.py).
    fonts = letter_fonts()
    if not fonts.cjk_embedded:
        pytest.skip("no CJK TrueType font installed (apt-get install fonts-wqy-zenhei)")
    message = OutboundMessage(
        "k" * 32, "letter", "", "尊敬的欧阳诸葛慕容司马上官夏侯：\n\n您的账户已逾期999天。",
        tags={"language": "zh-CN", "template": "letter/payment_reminder"},
        fields={"letter_date": "2026-11-23", "batch_date": "2026-11-23", "language": "zh-CN",
                "account_last4": "4821",
                "recipient": {"name": "欧阳诸葛慕容司马上官夏侯", "lines": ["朝阳区建国路1号", "北京市",
                                                                          "100020"],
                              "postal_code": "100020", "country": "CN"},
                "amounts": {"currency": "CNY", "past_due": "12,345.67", "balance": "123,456.78",
                            "due_date": "2024-03-01", "days_past_due": 999}},
    )  # fmt: skip
    data = render_letter(message, fonts).pdf
    words = pdf_text(data)
    assert "尊敬的欧阳诸葛慕容司马上官夏侯" in words and "朝阳区建国路1号" in words
    assert "逾期金额" in words and "12,345.67 CNY" in words
    assert b"/FontFile2" in data  # embedded


def test_instalment_offer_lists_the_calculators_plans_that_add_up_to_the_balance(
    engine: Engine, printer: PrintChannel, drop: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ladder_file = LADDER_PATH  # the default ladder offers a plan to hardship accounts
    acc = f.add_account(engine, as_of=DAY, dpd=40, past_due="1000.00", balance="5000.00",
                        segment="hardship", validation_notice_sent_on=DAY - dt.timedelta(35))  # fmt: skip
    plan(engine, ladder=load_ladder(ladder_file))
    assert dispatch(engine, printer).sent == 1
    words = pdf_text(letter_of(engine, drop, acc["account_id"]))
    # The offer calculator (config/arrangements.yaml): the whole balance over 3, 6, 12 and 24
    # months (a US credit card's longest), the last payment carrying the cents left over.
    assert "5,000.00 USD" in words
    for amount in ("1,666.66 USD", "1,666.68 USD", "833.33 USD", "833.35 USD", "416.66 USD",
                   "416.74 USD", "208.33 USD", "208.41 USD"):  # fmt: skip
        assert amount in words
    assert "November 30, 2026" in words  # first payment: 7 days after the letter
    assert "October 30, 2028" in words  # the 24-month plan's last payment
    assert "December 7, 2026" in words  # the offer is valid 14 days


@pytest.mark.parametrize("amount", ["1000.00", "999.99", "12345.67", "35.00", "0.05"])
def test_instalment_plans_pay_exactly_the_amount_in_cents(amount: str) -> None:
    from outreach.resolution.offers import instalment_offers
    from outreach.resolution.policy import ResolutionPolicy

    offers = instalment_offers(ResolutionPolicy(), balance=Decimal(amount), product="credit_card",
                               country="US", currency="USD", as_of=dt.date(2026, 1, 24))  # fmt: skip
    options = instalment_plans(offers)
    for o in options:
        months = int(o["months"])
        monthly, final = Decimal(o["monthly"].replace(",", "")), Decimal(o["final"].replace(",", ""))
        assert monthly * (months - 1) + final == Decimal(amount)
        assert Decimal(0) <= final - monthly < Decimal("0.01") * months
        assert monthly >= Decimal("25")  # the default minimum instalment in USD
    if Decimal(amount) >= 300:
        assert [o["months"] for o in options] == [3, 6, 12]  # the default longest term is 12
        assert options[0]["last_due"] == "2026-03-31"  # month ends kept
    if Decimal(amount) < 75:
        assert options == []  # no plan below the minimum instalment


def test_every_letter_template_parses_and_renders_in_every_language() -> None:
    for name in LETTER_TEMPLATES:
        assert lint_template("letter", f"letter/{name}", LANGUAGES, (".txt",)) == []
        for lang in LANGUAGES:
            assert (PROJECT_ROOT / "templates" / lang / "letter" / f"{name}.txt").is_file()


# --- exactly once, deterministic --------------------------------------------------------------------


def portfolio(engine: Engine) -> list[dict[str, Any]]:
    accounts = [
        f.add_account(engine, as_of=DAY, dpd=5),
        f.add_account(engine, as_of=DAY, dpd=5, language="zh-CN"),
        f.add_account(engine, as_of=DAY, dpd=70),
        f.add_account(engine, as_of=DAY, dpd=130, validation_notice_sent_on=dt.date(2026, 8, 1)),
    ]
    plan(engine)
    return accounts


@f.needs_cjk_font
def test_rerunning_the_day_and_closing_the_batch_twice_writes_the_same_bytes_and_no_new_rows(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    accounts = portfolio(engine)
    first = Recording(printer)
    assert dispatch(engine, first).sent == 4
    closed = close_print_batch(engine, DAY, drop_url=drop.as_uri())
    assert closed["letters"] == 4 and closed["in_doubt"] == 0 and closed["document_rows"] == 1
    files = letter_files(drop)
    rows = {t: count(engine, f"SELECT COUNT(*) FROM {t}")
            for t in ("contact", "document", "contact_event", "policy_decision")}  # fmt: skip
    assert count(engine, "SELECT COUNT(*) FROM document WHERE kind = 'letter'") == 4

    again = Recording(printer)
    assert dispatch(engine, again).sent == 0
    reclosed = close_print_batch(engine, DAY, drop_url=drop.as_uri())
    assert again.calls == []
    assert reclosed == {**closed, "manifest_written": 0, "document_rows": 0}
    assert closed["recorded_late"] == 0
    assert letter_files(drop) == files
    assert rows == {t: count(engine, f"SELECT COUNT(*) FROM {t}") for t in rows}

    # The manifest: one sorted line per letter, from the letters as written.
    manifest = (drop / DAY.isoformat() / "manifest.csv").read_text(encoding="utf-8")
    lines = manifest.splitlines()
    assert lines[0] == ",".join(MANIFEST_COLUMNS)
    body = [line.split(",", 8) for line in lines[1:]]
    assert [b[0] for b in body] == sorted(b[0] for b in body) == sorted(first.calls)
    refs = {a["account_ref"] for a in accounts}
    for _key, ref, template, language, pages, sha256, _size, file_name, rest in body:
        assert ref in refs and template.startswith("letter/") and language in LANGUAGES
        assert files[f"{DAY.isoformat()}/{file_name}"] == sha256 and int(pages) >= 1
        assert rest.startswith("Pat Example") and "1 Main St" in rest and "10001,US" in rest
    assert {b[2] for b in body} == {"letter/validation_notice", "letter/payment_reminder",
                                    "letter/final_notice"}  # fmt: skip
    manifest_sha = hashlib.sha256((drop / DAY.isoformat() / "manifest.csv").read_bytes()).hexdigest()
    assert count(engine, "SELECT COUNT(*) FROM document WHERE kind = 'print_manifest' "
                 "AND sha256 = :s", s=manifest_sha) == 1  # fmt: skip


def test_a_letter_file_changed_after_sending_stops_the_batch_from_closing(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    portfolio(engine)
    dispatch(engine, printer)
    pdf = sorted(drop.rglob("*.pdf"))[0]
    pdf.write_bytes(pdf.read_bytes().replace(b"%%EOF", b"%%EOF\n% edited"))
    with pytest.raises(ValueError, match="does not match the recorded sha256"):
        close_print_batch(engine, DAY, drop_url=drop.as_uri())
    assert not (drop / DAY.isoformat() / "manifest.csv").exists()


def test_template_extras_give_letter_templates_the_dates_once_merged(
    engine: Engine, printer: PrintChannel, tmp_path: Path
) -> None:
    """The seam for the dispatcher: a letter template may use the notice's dates and amounts
    once ``template_extras(fields)`` is merged into its context."""
    from outreach.media.letters.mailing import sample_template_extras, template_extras
    from outreach.planning.messages import message_context, sandbox

    f.add_account(engine, as_of=DAY, dpd=5)
    plan(engine)
    seen = Recording(printer)
    dispatch(engine, seen)
    (message,) = seen.messages
    root = tmp_path / "templates"
    (root / "en" / "letter").mkdir(parents=True)
    (root / "en" / "letter" / "t.txt").write_text(
        "Dispute by {{ validation_period_ends }}; owed {{ amount_on_itemization_date }} "
        "on {{ itemization_date }}."
    )
    context = message_context(full_name="Pat", language="en", account_ref="A1",
                              amount_past_due=Decimal(1), balance=Decimal(1), currency="USD",
                              days_past_due=5, address=None)  # fmt: skip
    template = sandbox(root).get_template("en/letter/t.txt")
    rendered = template.render({**context, **template_extras(message.fields)})
    assert rendered == "Dispute by 2026-12-31; owed 1,000.00 on 2026-11-22."
    assert template.render({**context, **sample_template_extras("en")})


def test_the_same_letter_renders_to_the_same_bytes_in_a_fresh_process(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    portfolio(engine)
    dispatch(engine, printer)
    pdf = next(drop.rglob("*.pdf"))
    line = read_manifest_line(pdf.read_bytes())
    assert line is not None and line["pages"] >= 1
    # Another worker process (another hash seed) rendering the same message: same bytes.
    script = (
        "import hashlib, json, sys\n"
        "from contact_channels.base import OutboundMessage\n"
        "from contact_channels.letter_layout import render_letter\n"
        "m = json.loads(sys.stdin.read())\n"
        "msg = OutboundMessage(m['key'], 'letter', '', m['body'], tags=m['tags'], fields=m['fields'])\n"
        "print(hashlib.sha256(render_letter(msg).pdf).hexdigest())\n"
    )
    message = OutboundMessage(
        "a" * 32, "letter", "", "Account ending 0001\n\nDear Pat,\n\nYou owe 1,000.00 USD.",
        tags={"language": "en", "template": "letter/payment_reminder"},
        fields={"letter_date": "2026-11-23", "language": "en", "account_last4": "0001",
                "recipient": {"name": "Pat Example", "lines": ["1 Main St", "Town, NY 10001"],
                              "postal_code": "10001", "country": "US"},
                "amounts": {"currency": "USD", "past_due": "100.00", "balance": "1,000.00",
                            "due_date": "2026-09-14", "days_past_due": 70}},
    )  # fmt: skip
    import json

    payload = json.dumps({"key": message.key, "body": message.body_text, "tags": dict(message.tags),
                          "fields": dict(message.fields)})  # fmt: skip
    here = hashlib.sha256(render_letter(message).pdf).hexdigest()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True,
                             text=True, check=True, cwd=PROJECT_ROOT,
                             env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert out.stdout.strip() == here


def test_an_account_paid_in_full_since_planning_gets_no_letter(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=70)
    plan(engine)
    f.add_payment(engine, acc["account_id"], DAY, "1000.00")  # paid in full this morning
    counts = dispatch(engine, printer)
    assert counts.sent == 0 and counts.suppressed == 1
    (row,) = f.contacts(engine, channel="letter")
    assert row["state"] == "suppressed" and "core.not_delinquent" in row["reasons"]
    assert not drop.exists() or not list(drop.rglob("*.pdf"))
    assert count(engine, "SELECT COUNT(*) FROM document") == 0


class Killed(BaseException):
    """A SIGKILL between writing the PDF and recording it: nothing after it runs."""


def test_a_worker_killed_after_writing_a_pdf_is_resolved_by_lookup_without_a_second_file(
    engine: Engine, printer: PrintChannel, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        f.add_account(engine, as_of=DAY, dpd=70)
    plan(engine)
    recorded = letters_medium.insert_document
    calls: list[str] = []

    def killed_at_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["ledger_key"])
        if len(calls) == 2:
            raise Killed()
        return recorded(*args, **kwargs)

    # The first letter is written and recorded, the second written only; the group's outcomes
    # never reach the ledger: both rows are left `sending`.
    monkeypatch.setattr(letters_medium, "insert_document", killed_at_the_second)
    with pytest.raises(Killed):
        dispatch(engine, printer)
    assert {r["state"] for r in f.contacts(engine, channel="letter")} == {"sending"}
    written = letter_files(drop)
    assert len(written) == 2 and count(engine, "SELECT COUNT(*) FROM document") == 1

    monkeypatch.setattr(letters_medium, "insert_document", recorded)
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "0")  # the dead worker's lease is over
    rerun = Recording(printer)
    counts = dispatch(engine, rerun)
    assert counts.recovered == 2 and rerun.calls == []  # found, not sent again
    rows = f.contacts(engine, channel="letter")
    assert {r["state"] for r in rows} == {"sent"}
    assert {r["provider_id"] for r in rows} == {f"{DAY}/letters/{r['key']}.pdf" for r in rows}
    assert letter_files(drop) == written  # no second file, no leftover part file
    assert count(engine, "SELECT COUNT(*) FROM contact_event") == 2

    # The batch records the letter whose row the lost worker never wrote, and ships both.
    closed = close_print_batch(engine, DAY, drop_url=drop.as_uri())
    assert (closed["letters"], closed["recorded_late"]) == (2, 1)
    assert count(engine, "SELECT COUNT(*) FROM document WHERE kind = 'letter'") == 2
    assert close_print_batch(engine, DAY, drop_url=drop.as_uri())["recorded_late"] == 0


def test_send_is_idempotent_on_the_key_and_lookup_is_authoritative(
    printer: PrintChannel, engine: Engine, drop: Path
) -> None:
    message = OutboundMessage(
        "b" * 32, "letter", "", "Dear Pat,\n\nA reminder.",
        tags={"language": "en", "template": "letter/payment_reminder"},
        fields={"letter_date": "2026-11-23", "batch_date": "2026-11-23", "language": "en",
                "recipient": {"name": "Pat Example", "lines": ["1 Main St", "Town, NY 10001"],
                              "country": "US"}},
    )  # fmt: skip
    assert printer.lookup(message.key) is None
    first = printer.send(message)
    assert first == SendResult(f"2026-11-23/letters/{message.key}.pdf", "queued_for_print")
    assert printer.send(message) == first == printer.lookup(message.key)
    assert list(letter_files(drop)) == [f"2026-11-23/letters/{message.key}.pdf"]
    assert count(engine, "SELECT COUNT(*) FROM document") == 1


def test_a_letter_without_a_postal_address_is_refused_permanently(
    engine: Engine, printer: PrintChannel, drop: Path
) -> None:
    message = OutboundMessage("c" * 32, "letter", "", "Dear Pat,", fields={
        "letter_date": "2026-11-23", "batch_date": "2026-11-23", "recipient": None})  # fmt: skip
    with pytest.raises(PermanentError) as refused:
        printer.send(message)
    assert refused.value.code == "no_postal_address"
    assert not drop.exists()


# --- returned mail ---------------------------------------------------------------------------------


def test_returned_mail_marks_the_address_invalid_and_later_letters_are_blocked(
    engine: Engine, printer: PrintChannel, tmp_path: Path, data_dir: Path
) -> None:
    noticed = dt.date(2026, 9, 20)  # long before: the Reg F notice holds nothing back
    back, by_ref, kept = (f.add_account(engine, as_of=DAY, dpd=70, validation_notice_sent_on=noticed)
                          for _ in range(3))  # fmt: skip
    plan(engine)
    assert dispatch(engine, printer).sent == 3
    key = next(r["key"] for r in f.contacts(engine, channel="letter")
               if r["account_id"] == back["account_id"])  # fmt: skip
    returned = tmp_path / "returned.csv"
    returned.write_text(
        "key,account_ref,returned_on,reason\n"
        f"{key},,2026-11-27,moved left no address\n"  # line 2
        f",{by_ref['account_ref']},2026-11-28,unknown at address\n"  # line 3
        f"{'f' * 32},,2026-11-27,moved\n"  # line 4: no such letter
        f"{key},,27/11/2026,moved\n"  # line 5
        f",{kept['account_ref']},2026-11-27,\n"  # line 6
        f",{kept['account_ref']},2026-12-30,moved\n"  # line 7: after the import
        f",A9999999,2026-11-27,moved\n"  # line 8
        f",{kept['account_ref']},2026-11-20,moved\n"  # line 9: before any letter was sent
    )
    at = dt.datetime(2026, 12, 1, 9)
    result = import_returned_mail(engine, returned, at)
    assert {k: result[k] for k in ("rows", "returned", "duplicate", "rejected")} == {
        "rows": 8, "returned": 2, "duplicate": 0, "rejected": 6}  # fmt: skip
    assert [(r["line"], r["field"]) for r in result["rejects"]] == [
        (4, "key"), (5, "returned_on"), (6, "reason"), (7, "returned_on"), (8, "account_ref"),
        (9, "account_ref"),
    ]
    assert result["rejects_path"] and Path(result["rejects_path"]).is_relative_to(data_dir)

    with engine.connect() as conn:
        valid: dict[int, bool] = {r[0]: bool(r[1]) for r in conn.execute(
            text("SELECT id, valid FROM contact_point WHERE kind = 'postal'"))}  # fmt: skip
        events = conn.execute(text(
            "SELECT account_id, outcome, source, ledger_key FROM contact_event "
            "WHERE outcome = 'returned_mail' ORDER BY account_id")).all()  # fmt: skip
    assert not valid[back["points"]["postal"]] and not valid[by_ref["points"]["postal"]]
    assert valid[kept["points"]["postal"]]
    assert [(e[0], e[2]) for e in events] == [(back["account_id"], "mailhouse"),
                                              (by_ref["account_id"], "mailhouse")]  # fmt: skip
    assert events[0][3] == key

    # The same file again changes nothing.
    again = import_returned_mail(engine, returned, at)
    assert (again["returned"], again["duplicate"], again["rejected"]) == (0, 2, 6)
    assert count(engine, "SELECT COUNT(*) FROM contact_event WHERE outcome = 'returned_mail'") == 2

    # The next letter (the reminder's second slot, 30 days on) has nowhere to go.
    later = DAY + dt.timedelta(days=30)
    plan(engine, later)
    rows = {r["account_id"]: r for r in f.contacts(engine, channel="letter", plan_date=later)}
    assert rows[back["account_id"]]["state"] == "suppressed"
    assert "core.no_destination" in rows[back["account_id"]]["reasons"]
    assert rows[kept["account_id"]]["state"] == "planned"
    counts = dispatch(engine, printer, later)
    assert counts.sent == 1  # only the account whose address still holds


def test_returned_mail_rows_name_the_line_field_and_reason_without_values(
    engine: Engine,
) -> None:
    result = import_returned_mail(
        engine,
        [{"key": "", "account_ref": "", "returned_on": "2026-11-27", "reason": "moved"},
         {"key": "x" * 32, "returned_on": "", "reason": "moved"}],
        dt.datetime(2026, 12, 1),
    )  # fmt: skip
    assert result["rejects"] == [
        {"line": 2, "field": "key", "reason": "required: the letter's key or the account_ref"},
        {"line": 3, "field": "returned_on", "reason": "required"},
    ]
    assert result["rejects_path"] is None  # rows, not a file: nothing written


def test_a_returned_mail_file_without_its_columns_is_refused_whole(
    engine: Engine, tmp_path: Path
) -> None:
    from outreach.portfolio.files import ImportFileError

    bad = tmp_path / "returned.csv"
    bad.write_text("key,returned_on\nabc,2026-11-27\n")
    with pytest.raises(ImportFileError, match="line 1: missing column reason"):
        import_returned_mail(engine, bad, dt.datetime(2026, 12, 1))


# --- formula prefixes in the manifest -------------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)")


def test_the_print_manifest_neutralises_formula_prefixes_and_keeps_the_rest_of_the_line(
    engine: Engine, printer: PrintChannel, drop: Path, tmp_path: Path
) -> None:
    name, street, city, ref = FORMULAS
    account = f.add_account(engine, as_of=DAY, dpd=70, validation_notice_sent_on=dt.date(2026, 9, 20))
    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET full_name = :n, address_line1 = :s, city = :c "
                          "WHERE id = :p"), {"n": name, "s": street, "c": city,
                                             "p": account["person_id"]})  # fmt: skip
        conn.execute(text("UPDATE account SET account_ref = :r WHERE id = :a"),
                     {"r": ref, "a": account["account_id"]})  # fmt: skip
    plan(engine)
    assert dispatch(engine, printer).sent == 1
    close_print_batch(engine, DAY, drop_url=drop.as_uri())
    with (drop / DAY.isoformat() / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    row = rows[0]
    assert row["recipient_name"] == "'" + name
    assert row["address_line_1"] == "'" + street
    assert row["address_line_2"] == "'" + city + ", NY 10001"
    assert row["account_ref"] == "'" + ref
    # The rest of the line as it was: nothing else starts with a formula prefix.
    key = f.contacts(engine, channel="letter")[0]["key"]
    assert row["key"] == key and row["template"] == "letter/payment_reminder"
    assert (row["address_line_3"], row["address_line_4"], row["postal_code"], row["country"]) == (
        "", "", "10001", "US")
    assert int(row["pages"]) >= 1 and row["file_name"] == f"letters/{key}.pdf"

    # The mail house sends the account_ref back as our file had it, quote and all: it matches.
    returned = tmp_path / "returned.csv"
    with returned.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["account_ref", "returned_on", "reason"],
                                      [row["account_ref"], "2026-11-27", "moved"]])  # fmt: skip
    result = import_returned_mail(engine, returned, dt.datetime(2026, 12, 1, 9))
    assert (result["returned"], result["rejected"]) == (1, 0)
