"""Issue 13 items 9, 10 and 11: what the messages say.

- 9: whether a message threatens suit is its template's declaration, checked by the lint against
  its text; the gate never sends it on a time-barred debt; California and New York time-barred
  accounts get their state's disclosure (and no SMS, which cannot hold it).
- 10: a final notice states only the consequences the ladder can take for that account.
- 11: who is writing has no default; dispatch refuses to start without it and ``config check``
  names what is missing; a debt collector's messages carry the 1006.18(e) disclosures and are
  signed by the sender the letterhead names.

New modules are imported inside the tests, so that on the old code each test fails on what it
asserts.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, SendResult
from outreach.dispatch.dispatcher import dispatch_range
from outreach.media.letters.channel import PrintChannel
from outreach.planning.judging import step_for
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import check_ladder_text, load_ladder
from outreach.planning.planner import iter_plan
from outreach.planning.templates_lint import lint_template
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import AccountFacts, Step
from tests import factories as f

DAY = dt.date(2026, 11, 23)
LADDER_PATH = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
TEMPLATES = PROJECT_ROOT / "templates"
LANGS = ("en", "zh-CN")
BARRED = DAY - dt.timedelta(days=10)  # time-barred since
LONG_AGO = DAY - dt.timedelta(days=120)
CA_DISCLOSURE = "The law limits how long you can be sued on a debt."
NY_DISCLOSURE = "New York State Department of Financial Services"
INITIAL = "Any information obtained will be used for that purpose."
LATER = "This is a communication from a debt collector."


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES, root)
    return root


class Recorder:
    """A channel that keeps what it is given (SMS, email), so the test reads what was sent."""

    def __init__(self, kind: str) -> None:
        self.kind, self.backend = kind, "outbox"  # local: the logical clock is allowed
        self.messages: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.messages.append(message)
        return SendResult(f"rec-{len(self.messages)}")

    def lookup(self, key: str) -> SendResult | None:
        return None

    def close(self) -> None:
        pass


class RecordingPrinter:
    """The real print channel (PDF files), keeping each message for its fields and body."""

    def __init__(self, inner: PrintChannel) -> None:
        self.inner, self.kind, self.backend = inner, inner.kind, inner.backend
        self.messages: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.messages.append(message)
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key)

    def close(self) -> None:
        pass


@pytest.fixture
def printer(url: str, tmp_path: Path) -> Iterator[RecordingPrinter]:
    channel = build_channel("letter", {"backend": "print", "drop": (tmp_path / "drop").as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    assert isinstance(channel, PrintChannel)
    yield RecordingPrinter(channel)
    channel.close()


def plan(engine: Engine, day: dt.date = DAY) -> None:
    for _ in iter_plan(engine, load_ladder(LADDER_PATH), day, 1000):
        pass


def dispatch(engine: Engine, channel: str, impl: Any) -> None:
    dispatch_range(engine, DAY, channel, 0, 10**9, clock="logical", channel_impl=impl)


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(path.read_bytes())).pages)  # fmt: skip


def letter_text(engine: Engine, tmp_path: Path, account_id: int) -> str:
    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter' AND state = 'sent'"), {"a": account_id}).scalar_one()  # fmt: skip
    return pdf_text(tmp_path / "drop" / DAY.isoformat() / "letters" / f"{key}.pdf")


def rows(engine: Engine, account_id: int, action: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r[0], r[1] or "") for r in conn.execute(
            text("SELECT state, reasons FROM contact WHERE account_id = :a AND action = :x"),
            {"a": account_id, "x": action})]  # fmt: skip


def final_notice_account(engine: Engine, **kw: Any) -> dict[str, Any]:
    """An account in the final-notice stage (121-150 days past due) whose validation period
    ended long ago."""
    args: dict[str, Any] = {"dpd": 125, "balance": "5000.00", "past_due": "800.00",
                            "validation_notice_sent_on": LONG_AGO,
                            "initial_communication_on": LONG_AGO}  # fmt: skip
    return f.add_account(engine, as_of=DAY, **{**args, **kw})


# --- item 9: threats on time-barred debt -----------------------------------------------------


def test_whether_a_step_threatens_suit_comes_from_its_template() -> None:
    ladder = load_ladder(LADDER_PATH)
    actions = {a.id: a for s in ladder.stages for a in s.actions}
    assert step_for("letter", None, actions["final_notice_letter"]).threatens_suit is True
    assert step_for("letter", None, actions["payment_reminder_letter"]).threatens_suit is False
    assert step_for("sms", None, actions["sms_reminder"]).threatens_suit is False


def test_a_ladder_flag_threatens_suit_is_refused_naming_the_template_as_the_source() -> None:
    ladder = """
name: x
stages:
  - id: s1
    entry: {dpd_min: 1}
    actions:
      - {id: n, channel: letter, template: letter/payment_reminder, threatens_suit: false,
         cadence: {every_days: 30, max_times: 1}}
"""
    model, errors = check_ladder_text(ladder, TEMPLATES)
    assert model is None
    [err] = [str(e) for e in errors]
    assert err.startswith("stages[0].actions[0]") and "threatens_suit" in err
    assert "template declares it" in err


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [("en", "Otherwise we may file a lawsuit."), ("en", "We may refer it for legal action."),
     ("zh-CN", "否则我们可能提起诉讼。")],
)  # fmt: skip
def test_the_lint_refuses_a_threat_the_template_does_not_declare(
    templates: Path, lang: str, sentence: str
) -> None:
    path = templates / lang / "letter" / "payment_reminder.txt"
    path.write_text(path.read_text().replace("{{ sender }}", sentence + "\n\n{{ sender }}"))
    problems = lint_template("letter", "letter/payment_reminder", LANGS, (".txt",), root=templates)
    assert [p for p in problems if f"{lang}/letter/payment_reminder.txt" in p
            and "does not declare" in p and "threatens_suit" in p]  # fmt: skip
    # Declared, it passes, and the gate reads the declaration.
    path.write_text("{# outreach: threatens_suit #}\n" + path.read_text())
    assert lint_template("letter", "letter/payment_reminder", LANGS, (".txt",), root=templates) == []


def test_the_lint_refuses_a_declaration_the_text_does_not_bear(templates: Path) -> None:
    path = templates / "en" / "letter" / "payment_reminder.txt"
    path.write_text("{# outreach: threatens_suit #}\n" + path.read_text())
    problems = lint_template("letter", "letter/payment_reminder", LANGS, (".txt",), root=templates)
    assert any("en/letter/payment_reminder.txt" in p and "declares threatens_suit" in p
               for p in problems)  # fmt: skip


def test_time_barred_ny_ca_and_china_accounts_are_never_sent_the_final_notice(
    engine: Engine,
) -> None:
    ny = final_notice_account(engine, limitation_date=BARRED)
    ca = final_notice_account(engine, region="CA", address_zones="America/Los_Angeles",
                              limitation_date=BARRED)  # fmt: skip
    cn = final_notice_account(engine, country="CN", region="SH", address_zones="Asia/Shanghai",
                              language="zh-CN", limitation_date=BARRED,
                              phones=[{"value": "+8613800000000", "zones": "Asia/Shanghai"}])  # fmt: skip
    fresh = final_notice_account(engine)  # not time-barred: its final notice goes
    plan(engine)
    for acc in (ny, ca, cn):
        [(state, reasons)] = rows(engine, acc["account_id"], "final_notice_letter")
        assert state == "suppressed" and "core.time_barred" in reasons.split(), (acc, reasons)
    [(state, reasons)] = rows(engine, fresh["account_id"], "final_notice_letter")
    assert state == "planned", reasons


def test_a_time_barred_california_reminder_letter_carries_the_california_disclosure(
    engine: Engine, printer: RecordingPrinter, tmp_path: Path
) -> None:
    ca = f.add_account(engine, as_of=DAY, dpd=70, region="CA", address_zones="America/Los_Angeles",
                       limitation_date=BARRED, validation_notice_sent_on=LONG_AGO,
                       initial_communication_on=LONG_AGO)  # fmt: skip
    fresh = f.add_account(engine, as_of=DAY, dpd=70, region="CA",
                          address_zones="America/Los_Angeles", validation_notice_sent_on=LONG_AGO,
                          initial_communication_on=LONG_AGO)  # fmt: skip
    plan(engine)
    dispatch(engine, "letter", printer)
    words = letter_text(engine, tmp_path, ca["account_id"])
    assert CA_DISCLOSURE in words and "we will not sue you for it" in words
    assert CA_DISCLOSURE not in letter_text(engine, tmp_path, fresh["account_id"])


def test_a_time_barred_new_york_email_carries_the_dfs_disclosure_and_no_sms_goes(
    engine: Engine,
) -> None:
    ny = f.add_account(engine, as_of=DAY, dpd=5, limitation_date=BARRED,
                       validation_notice_sent_on=DAY - dt.timedelta(days=3),
                       initial_communication_on=DAY - dt.timedelta(days=3),
                       emails=[{"value": "p@example.com", "consent": True}])  # fmt: skip
    plan(engine)
    [(state, reasons)] = rows(engine, ny["account_id"], "sms_reminder")
    assert state == "suppressed" and "core.time_barred_disclosure" in reasons.split()
    mail = Recorder("email")
    dispatch(engine, "email", mail)
    [message] = mail.messages
    assert NY_DISCLOSURE in message.body_text and NY_DISCLOSURE in (message.body_html or "")


def test_the_gate_blocks_an_sms_to_a_time_barred_california_account() -> None:
    facts = AccountFacts(1, "US", "CA", 100.0, limitation_date=BARRED, address_zones=(
        "America/Los_Angeles",), role="creditor")  # fmt: skip
    verdict = evaluate(Step("sms", 1, consent=True), facts, day=DAY)
    assert verdict.verdict == "block" and "core.time_barred_disclosure" in verdict.reasons
    later = evaluate(Step("sms", 1, consent=True), facts, day=BARRED - dt.timedelta(days=1))
    assert "core.time_barred_disclosure" not in later.reasons


# --- item 10: threats of action that will not be taken ---------------------------------------


def test_a_final_notice_threatens_legal_action_only_where_the_ladder_can_refer(
    engine: Engine, printer: RecordingPrinter, tmp_path: Path
) -> None:
    small = final_notice_account(engine, balance="1000.00")  # under the 2,500 threshold
    large = final_notice_account(engine, balance="5000.00")
    plan(engine)
    dispatch(engine, "letter", printer)
    small_words = letter_text(engine, tmp_path, small["account_id"])
    large_words = letter_text(engine, tmp_path, large["account_id"])
    assert "legal action" not in small_words
    assert "placed with a collection agency" in small_words
    assert "placed with a collection agency or referred for legal action" in large_words


def test_a_time_barred_account_could_never_be_referred() -> None:
    from outreach.kernel.facts import AccountRecord
    from outreach.planning.consequences import consequences

    ladder = load_ladder(LADDER_PATH)

    def record(**kw: Any) -> AccountRecord:
        from decimal import Decimal

        base: dict[str, Any] = dict(id=1, account_ref="A1", product="credit_card",
                                    balance=Decimal("9000"), past_due=Decimal("900"),
                                    due_date=DAY - dt.timedelta(days=125), segment=None,
                                    country="US", region="NY", language="en",
                                    address_zones=("America/New_York",))  # fmt: skip
        return AccountRecord(**{**base, **kw})

    assert consequences(ladder, record(), DAY, "collector").may_refer_for_legal_action
    # Time-barred before the referral stage (241 days past due) could be reached.
    barred = record(limitation_date=DAY + dt.timedelta(days=30))
    assert not consequences(ladder, barred, DAY, "collector").may_refer_for_legal_action
    assert consequences(ladder, barred, DAY, "collector").may_place_with_agency
    # China places only with approved agencies: with none approved, no placement is possible.
    china = record(country="CN", region="SH", address_zones=("Asia/Shanghai",))
    assert consequences(ladder, china, DAY, "collector", frozenset({"a"})).may_place_with_agency
    assert not consequences(ladder, china, DAY, "collector", frozenset()).may_place_with_agency


# --- item 11: who is writing -----------------------------------------------------------------

IDENTITY_NAMES = ("OUTREACH_CREDITOR_NAME", "OUTREACH_COLLECTOR_NAME",
                  "OUTREACH_COLLECTOR_ADDRESS", "OUTREACH_SERVICE_PHONE", "OUTREACH_PAY_URL")  # fmt: skip


def test_without_an_identity_config_check_names_what_is_missing_and_dispatch_refuses(
    engine: Engine, app_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from outreach.entry.cli import main

    f.database(f"sqlite:///{app_data / 'outreach.db'}")
    for name in IDENTITY_NAMES:
        monkeypatch.delenv(name, raising=False)
    assert main(["config", "check", "--all", str(LADDER_PATH)]) == 1
    err = capsys.readouterr().err
    for name in IDENTITY_NAMES:
        assert f"identity: {name}: not set" in err, err
    # Nothing goes out in the name of nobody: the dispatcher refuses before claiming anything.
    acc = f.add_account(engine, as_of=DAY, dpd=5, validation_notice_sent_on=LONG_AGO)
    plan(engine)
    sms = Recorder("sms")
    with pytest.raises(RuntimeError, match="OUTREACH_CREDITOR_NAME"):
        dispatch(engine, "sms", sms)
    assert sms.messages == []
    assert {s for s, _ in rows(engine, acc["account_id"], "sms_reminder")} == {"planned"}


def test_a_creditor_needs_no_collector_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.kernel.identity import identity_problems

    monkeypatch.delenv("OUTREACH_COLLECTOR_NAME")
    assert identity_problems("creditor") == []
    [problem] = identity_problems("collector")
    assert "OUTREACH_COLLECTOR_NAME" in problem


def test_a_collectors_first_sms_carries_the_full_disclosure_and_later_ones_the_short(
    engine: Engine,
) -> None:
    # No communication on record before today (the validation notice goes today): the first.
    first = f.add_account(engine, as_of=DAY, dpd=5, validation_notice_sent_on=DAY)
    later = f.add_account(engine, as_of=DAY, dpd=5, validation_notice_sent_on=DAY - dt.timedelta(3),
                          initial_communication_on=DAY - dt.timedelta(days=3))  # fmt: skip
    plan(engine)
    sms = Recorder("sms")
    dispatch(engine, "sms", sms)
    bodies = {_account_of(engine, m.key): m.body_text for m in sms.messages}
    assert len(bodies) == 2, bodies
    assert INITIAL in bodies[first["account_id"]]
    assert "debt collector" in bodies[first["account_id"]]
    assert LATER in bodies[later["account_id"]] and INITIAL not in bodies[later["account_id"]]
    for body in bodies.values():
        assert body.startswith("Testing Recovery LLC: ") and "Testing Creditor Bank" in body


def test_a_creditors_sms_says_nothing_of_a_debt_collector(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("role: creditor\n")
    monkeypatch.setenv("OUTREACH_POLICY", str(policy))
    f.add_account(engine, as_of=DAY, dpd=5)
    plan(engine)
    sms = Recorder("sms")
    dispatch(engine, "sms", sms)
    [message] = sms.messages
    assert "debt collector" not in message.body_text
    assert message.body_text.startswith("Testing Creditor Bank: ")


def test_a_collectors_letter_is_signed_by_the_sender_its_letterhead_names(
    engine: Engine, printer: RecordingPrinter, tmp_path: Path
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=70, validation_notice_sent_on=LONG_AGO,
                        initial_communication_on=LONG_AGO)  # fmt: skip
    plan(engine)
    dispatch(engine, "letter", printer)
    [message] = printer.messages
    sender = message.fields["sender"]["name"]
    assert sender == "Testing Recovery LLC"
    assert message.body_text.rstrip().splitlines()[-1] == sender
    assert LATER in message.body_text
    words = letter_text(engine, tmp_path, acc["account_id"])
    assert LATER in words and "Testing Creditor Bank" in words


def test_the_lint_enforces_the_disclosures_per_role_and_channel(templates: Path) -> None:
    path = templates / "en" / "sms" / "reminder.txt"
    path.write_text(path.read_text().replace(
        "{% if debt_collector_disclosure %} {{ debt_collector_disclosure }}{% endif %}", ""))
    problems = lint_template("sms", "sms/reminder", LANGS, (".txt",), root=templates,
                             role="collector")  # fmt: skip
    assert any("en/sms/reminder.txt" in p and "1006.18(e)" in p for p in problems), problems
    assert lint_template("sms", "sms/reminder", LANGS, (".txt",), root=templates,
                         role="creditor") == []  # fmt: skip
    # A letter signed with the creditor's name while the collector writes.
    letter = templates / "en" / "letter" / "payment_reminder.txt"
    letter.write_text(letter.read_text().replace("{{ sender }}", "{{ creditor }}"))
    problems = lint_template("letter", "letter/payment_reminder", LANGS, (".txt",),
                             root=templates, role="collector")  # fmt: skip
    assert any("signed with the creditor's name" in p for p in problems), problems


def test_no_shipped_template_names_a_placeholder_company() -> None:
    for path in TEMPLATES.rglob("*.*"):
        body = path.read_text(encoding="utf-8")
        for placeholder in ("Example Bank", "PO Box 1000", "555", "pay.example.com"):
            assert placeholder not in body, (path, placeholder)
    from outreach.planning.messages import brand

    with pytest.MonkeyPatch.context() as mp:
        for name in IDENTITY_NAMES:
            mp.delenv(name, raising=False)
        with pytest.raises(RuntimeError, match="not configured"):
            brand("collector")


def _account_of(engine: Engine, key: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT account_id FROM contact WHERE key = :k"),
                                {"k": key}).scalar_one())  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("OUTREACH_COLLECTOR_ADDRESS", "|", "at least two lines"),
        ("OUTREACH_COLLECTOR_ADDRESS", "PO Box 1", "at least two lines"),
        ("OUTREACH_SERVICE_PHONE", "call us", "at least 7 digits"),
    ],
)
def test_an_identity_value_that_cannot_be_right_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, why: str
) -> None:
    """An address of no lines (disputes would go nowhere) or a phone with no number is as bad as
    none: config check names it, and nothing is sent."""
    from outreach.kernel.identity import IdentityMissing, identity, identity_problems

    monkeypatch.setenv(name, value)
    [problem] = identity_problems("collector")
    assert problem.startswith(f"identity: {name}: ") and why in problem
    if len(value) > 1:  # the value itself is never quoted
        assert value not in problem.replace(name, "")
    with pytest.raises(IdentityMissing, match=name):
        identity("collector")


def test_a_templates_traits_are_read_once_a_second_not_once_a_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The planner asks for every step it judges; reading the files each time made planning
    1.8 times slower. An edit is still seen once TRAITS_FRESH_SECONDS have passed."""
    from outreach.planning import messages

    letter = tmp_path / "en" / "letter"
    letter.mkdir(parents=True)
    (letter / "x.txt").write_text("Pay now.\n")
    reads: list[str] = []
    real = messages._read_traits
    monkeypatch.setattr(messages, "_read_traits",
                        lambda t, root: reads.append(t) or real(t, root))  # fmt: skip
    clock = [1000.0]
    monkeypatch.setattr(messages.time, "monotonic", lambda: clock[0])
    for _ in range(100):
        assert messages.template_traits("letter/x", tmp_path) == frozenset()
    assert reads == ["letter/x"]
    (letter / "x.txt").write_text("{# outreach: threatens_suit #}\nWe may sue.\n")
    clock[0] += messages.TRAITS_FRESH_SECONDS
    assert messages.template_traits("letter/x", tmp_path) == {"threatens_suit"}
