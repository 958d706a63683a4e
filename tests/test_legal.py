"""Legal referral end to end: the case package at the firm's drop location for an eligible
account, none for an ineligible one, and the same bytes and rows on every rerun."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
from sqlalchemy import Engine, insert, text

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from outreach.dispatch.dispatcher import dispatch_range
from outreach.media.legal.channel import CounselChannel
from outreach.media.legal.referral import NO_FIRM
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import Payment
from tests import factories as f

DAY = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 5)  # 00:00 in New York: the logical clock's send instant
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


@pytest.fixture
def drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "firms"
    (tmp_path / "agencies.yaml").write_text(
        "law_firms:\n"
        f"  - {{id: hartley, name: Hartley LLP, jurisdictions: [US-NY], drop: 'file://{root}/hartley'}}\n"
        f"  - {{id: national, name: National Law, jurisdictions: [US], drop: 'file://{root}/national'}}\n"
    )
    monkeypatch.setenv("OUTREACH_AGENCIES", str(tmp_path / "agencies.yaml"))
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_POLICY", str(tmp_path / "no-policy.yaml"))
    return root


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def engine(url: str, drop: Path) -> Engine:
    return f.database(url)


def final_notice_sent(engine: Engine, account: dict[str, Any], days_ago: int) -> None:
    """The final notice letter went out ``days_ago`` days before DAY."""
    sent = dt.datetime.combine(DAY - dt.timedelta(days=days_ago), dt.time(15))
    f.add_final_notice(engine, account["account_id"], sent)


def referable(engine: Engine, *, notice_days_ago: int = 60, **columns: Any) -> dict[str, Any]:
    """An account in the legal stage that meets every condition, unless ``columns`` say else."""
    values: dict[str, Any] = {
        "dpd": 250, "balance": "5000.00", "past_due": "1500.00",
        "validation_notice_sent_on": DAY - dt.timedelta(days=200),
        "scra_checked_on": DAY - dt.timedelta(days=3), "charge_off_date": DAY - dt.timedelta(days=70),
    }  # fmt: skip
    values.update(columns)
    account = f.add_account(engine, as_of=DAY, **values)
    final_notice_sent(engine, account, notice_days_ago)
    return account


class Recording:
    """The counsel channel, keeping each message it was given."""

    def __init__(self, inner: CounselChannel) -> None:
        self.inner, self.kind, self.backend = inner, inner.kind, inner.backend
        self.messages: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.messages.append(message)
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key)

    def close(self) -> None:
        pass


def counsel(url: str, tmp_path: Path) -> Recording:
    built = build_channel("legal", {"backend": "counsel"}, outbox_url=f"sqlite:///{tmp_path / 'o.db'}",
                          state_dir=tmp_path, database_url=url)
    assert isinstance(built, CounselChannel)
    return Recording(built)


def plan_and_dispatch(engine: Engine, channel: Recording) -> dict[str, int]:
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    return dispatch_range(engine, DAY, "legal", 0, 10**9, clock="logical",
                          channel_impl=channel).as_dict()


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("contact", "legal_case", "document", "contact_event", "policy_decision")}


def test_an_eligible_account_gets_its_case_package_and_a_rerun_changes_nothing(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    account = referable(engine)
    f.add_payment(engine, account["account_id"], DAY - dt.timedelta(days=30), "200.00")
    f.add_call(engine, account["account_id"], dt.datetime(2026, 10, 2, 15), "no_answer")
    channel = counsel(url, tmp_path)
    assert plan_and_dispatch(engine, channel)["sent"] == 1
    ref = account["account_ref"]
    files = files_under(drop)
    folder = f"hartley/2026-11-23/{ref}"
    assert sorted(files) == [f"{folder}/{n}" for n in
                             ("history.csv", "manifest.json", "payments.csv", "summary.pdf")]
    pdf_text = "".join(page.extract_text() for page in
                       pypdf.PdfReader(io.BytesIO(files[f"{folder}/summary.pdf"])).pages)
    for expected in (ref, "5,000.00 USD", "1,500.00 USD", "200.00 USD", "Hartley LLP",
                     "2026-09-24", "2026-11-20"):
        assert expected in pdf_text
    manifest = json.loads(files[f"{folder}/manifest.json"])
    assert manifest["amounts"] == {"balance": "5000.00", "past_due": "1500.00",
                                   "payments_total": "200.00"}
    assert manifest["dates"]["final_notice_sent_on"] == "2026-09-24"
    assert manifest["firm"] == {"id": "hartley", "name": "Hartley LLP"}
    for entry in manifest["files"]:
        data = files[f"{folder}/{entry['name']}"]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
    assert [e["name"] for e in manifest["files"]] == ["history.csv", "payments.csv", "summary.pdf"]
    # Keys sorted at every level: the same content always serializes to the same bytes.
    assert files[f"{folder}/manifest.json"].decode() == json.dumps(
        manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    history = files[f"{folder}/history.csv"].decode().splitlines()
    assert history == [
        "occurred_at,channel,direction,outcome,source,stage,action",
        "2026-09-24T15:00:00Z,letter,outbound,sent,ledger,final_notice,final_notice_letter",
        "2026-10-02T15:00:00Z,call,outbound,no_answer,import,,",
    ]
    payments = files[f"{folder}/payments.csv"].decode().splitlines()
    assert payments[1].split(",")[1:] == ["2026-10-24", "200.00", "USD"]
    with engine.connect() as conn:
        case = conn.execute(text("SELECT firm, status, referred_on, balance_at_referral, key "
                                 "FROM legal_case")).one()
        docs = conn.execute(text("SELECT kind, recipient, path, sha256, ledger_key, account_id "
                                 "FROM document ORDER BY path")).all()
    assert (case[0], case[1], str(case[2]), Decimal(str(case[3]))) == (
        "hartley", "referred", "2026-11-23", Decimal(5000))
    assert [(d[0], d[1], d[4], d[5]) for d in docs] == [
        ("case_package", "hartley", case[4], account["account_id"])] * 4
    assert all(d[3] == hashlib.sha256(files[d[2].split(str(drop) + "/")[1]]).hexdigest()
               for d in docs)
    before = row_counts(engine)
    # A rerun of the day sends nothing; the adapter given the same message writes nothing.
    assert plan_and_dispatch(engine, channel)["sent"] == 0
    message = channel.messages[0]
    assert channel.inner.send(message) == channel.inner.lookup(message.key)
    assert len(channel.messages) == 1
    assert files_under(drop) == files and row_counts(engine) == before


def test_a_crash_between_the_files_and_the_rows_is_resent_with_the_same_bytes(
        engine: Engine, url: str, tmp_path: Path, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = referable(engine)
    f.add_call(engine, account["account_id"], dt.datetime(2026, 10, 2, 15), "voicemail")
    inner = counsel(url, tmp_path).inner

    class DiesBeforeTheRows(Recording):
        def send(self, message: OutboundMessage) -> SendResult:
            self.inner.send(message)
            with engine.begin() as conn:  # as if the rows' transaction never committed
                conn.execute(text("DELETE FROM document"))
                conn.execute(text("DELETE FROM legal_case"))
            raise RuntimeError("worker died after writing the files")

    with pytest.raises(RuntimeError):
        plan_and_dispatch(engine, DiesBeforeTheRows(inner))
    files = files_under(drop)
    assert len(files) == 4 and row_counts(engine)["legal_case"] == 0
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "0")
    # Recovery asks the medium (no legal_case: not referred), gives the contact back to the
    # queue, and the same run refers it again: the package is recomputed from the same facts.
    counts = dispatch_range(engine, DAY, "legal", 0, 10**9, clock="logical", channel_impl=inner)
    assert counts.recovered == 1 and counts.sent == 1
    assert files_under(drop) == files
    counted = row_counts(engine)
    assert counted["legal_case"] == 1 and counted["document"] == 4
    assert [c["state"] for c in f.contacts(engine, channel="legal")] == ["sent"]


def test_ineligible_accounts_get_no_case_package(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    accounts = {
        "time_barred": referable(engine, limitation_date=DAY - dt.timedelta(days=10)),
        "validation_period": referable(engine, validation_notice_sent_on=DAY - dt.timedelta(days=10)),
        "scra_unchecked": referable(engine, scra_checked_on=None),
        "scra_stale": referable(engine, scra_checked_on=DAY - dt.timedelta(days=45)),
        "active_duty": referable(engine, scra_active_duty=True),
        "notice_recent": referable(engine, notice_days_ago=10),
        "dispute": referable(engine),
        "bankruptcy": referable(engine),
        "below_threshold": referable(engine, balance="3000.00"),
        "eligible": referable(engine),
    }
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    # Since planning: a dispute (after the validation period: Regulation F lets it through),
    # a bankruptcy, a payment that takes the balance under the threshold.
    f.add_hold(engine, accounts["dispute"]["account_id"], "dispute", DAY)
    f.add_hold(engine, accounts["bankruptcy"]["account_id"], "bankruptcy", DAY)
    f.add_payment(engine, accounts["below_threshold"]["account_id"], DAY, "1000.00")
    channel = counsel(url, tmp_path)
    counts = dispatch_range(engine, DAY, "legal", 0, 10**9, clock="logical", channel_impl=channel)
    assert counts.sent == 1
    outcome = {c["account_id"]: (c["state"], c["reasons"] or c["error_code"])
               for c in f.contacts(engine, channel="legal")}
    by_name = {name: outcome[a["account_id"]] for name, a in accounts.items()}
    assert by_name["time_barred"] == ("suppressed", "core.time_barred")
    assert by_name["validation_period"] == ("deferred", "us_reg_f.validation_period_open")
    assert by_name["scra_unchecked"] == by_name["scra_stale"] == by_name["active_duty"] == (
        "suppressed", "us_scra.military_status")
    assert by_name["bankruptcy"] == ("suppressed", "core.bankruptcy")
    # A dispute after the validation period: the house rule stops the referral all the same.
    assert by_name["dispute"] == ("suppressed", "core.dispute_before_referral")
    assert by_name["notice_recent"] == ("suppressed", "core.final_notice_wait")
    assert by_name["below_threshold"] == ("suppressed", "core.legal_min_balance")
    assert by_name["eligible"] == ("sent", None)
    eligible_ref = accounts["eligible"]["account_ref"]
    assert {Path(p).parts[2] for p in files_under(drop)} == {eligible_ref}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT account_id FROM legal_case")).scalars().all() == [
            accounts["eligible"]["account_id"]]


def test_the_adapter_refuses_a_marked_or_incomplete_referral(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    channel = counsel(url, tmp_path).inner
    refused = OutboundMessage("k1", "legal", "A1", "", fields={"refusal": NO_FIRM})
    with pytest.raises(PermanentError) as err:
        channel.send(refused)
    assert err.value.code == NO_FIRM
    with pytest.raises(PermanentError) as err:
        channel.send(OutboundMessage("k2", "legal", "A1", "", fields={"account_ref": "A1"}))
    assert err.value.code == "legal.incomplete"
    assert files_under(drop) == {} and row_counts(engine)["legal_case"] == 0


# --- formula prefixes in the case package's CSVs --------------------------------------------------

FORMULAS = ('=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)")


def test_the_case_package_csvs_neutralise_formula_prefixes_and_keep_amounts_numeric(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    account = referable(engine)
    with engine.begin() as conn:
        # Payment refs come from the lender's file as they are; a reversal is a negative amount.
        for day, (ref, amount) in enumerate(zip(FORMULAS, ("200.00", "-50.00", "10.00", "5.00"),
                                                strict=True)):
            conn.execute(insert(Payment).values(payment_ref=ref, account_id=account["account_id"],
                                                paid_on=DAY - dt.timedelta(days=40 - day),
                                                amount=Decimal(amount)))
    f.add_call(engine, account["account_id"], dt.datetime(2026, 10, 2, 15), "no_answer")
    assert plan_and_dispatch(engine, counsel(url, tmp_path))["sent"] == 1
    folder = drop / "hartley" / DAY.isoformat() / account["account_ref"]
    with (folder / "payments.csv").open(encoding="utf-8", newline="") as handle:
        payments = list(csv.reader(handle))
    assert payments == [
        ["payment_ref", "paid_on", "amount", "currency"],
        ["'" + FORMULAS[0], "2026-10-14", "200.00", "USD"],
        ["'" + FORMULAS[1], "2026-10-15", "-50.00", "USD"],
        ["'" + FORMULAS[2], "2026-10-16", "10.00", "USD"],
        ["'" + FORMULAS[3], "2026-10-17", "5.00", "USD"],
    ]
    with (folder / "history.csv").open(encoding="utf-8", newline="") as handle:
        history = list(csv.reader(handle))
    assert history[2] == ["2026-10-02T15:00:00Z", "call", "outbound", "no_answer", "import", "", ""]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    sizes = {e["name"]: e["size"] for e in manifest["files"]}
    assert sizes["payments.csv"] == (folder / "payments.csv").stat().st_size
