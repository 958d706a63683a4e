"""Agency placement end to end: allocation at send time, one open placement per account, the
daily placement and recall files (byte-identical on rerun), recall, and agency returns."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from outreach.dispatch.dispatcher import dispatch_range
from outreach.kernel.facts import load_accounts
from outreach.kernel.ledger import DueContact
from outreach.media.agency.channel import AgencyFileChannel
from outreach.media.agency.config import check_agency_config_text
from outreach.media.agency.files import recall_placements, write_placement_files
from outreach.media.agency.placement import PlacementHooks
from outreach.media.agency.returns import import_agency_returns
from outreach.planning.judging import step_for
from outreach.planning.kinds import MessageContext, build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import BLOCK, SEND
from tests import factories as f

DAY = dt.date(2026, 11, 23)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


def agency(id_: str, jurisdictions: str, *, capacity: int = 100, approved: bool = True,
           recall_after_days: int = 120) -> str:
    return (f"  - {{id: {id_}, name: {id_.title()} Collections, jurisdictions: [{jurisdictions}], "
            f"capacity: {capacity}, approved: {str(approved).lower()}, commission_rate: 0.2, "
            f"recall_after_days: {recall_after_days}, drop: 'file://DROP/{id_}'}}\n")


DEFAULT_AGENCIES = (
    agency("alpha", "US-NY") + agency("bravo", "US-NY, US-CA") + agency("charlie", "US")
    + agency("delta", "US-CA") + agency("echo", "US-NY", approved=False) + agency("huaxin", "CN")
)  # fmt: skip
DEFAULT_BANDS = (
    "    - {min_balance: 0, max_balance: 1000, agencies: [charlie, huaxin]}\n"
    "    - {min_balance: 1000, agencies: [alpha, bravo, charlie, delta, echo, huaxin]}\n"
)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_POLICY", str(tmp_path / "policy.yaml"))
    (tmp_path / "policy.yaml").write_text("role: collector\napproved_agencies: []\n")
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def engine(url: str) -> Engine:
    return f.database(url)


def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agencies: str = DEFAULT_AGENCIES,
              bands: str = DEFAULT_BANDS, strategy: str = "round_robin") -> Path:
    """Write an agencies.yaml for the test and put it in force; returns the drop root."""
    drop = tmp_path / "drop"
    path = tmp_path / f"agencies-{len(list(tmp_path.glob('agencies-*.yaml')))}.yaml"
    path.write_text(
        "agencies:\n" + agencies.replace("DROP", str(drop))
        + f"allocation:\n  strategy: {strategy}\n  bands:\n" + bands
    )  # fmt: skip
    monkeypatch.setenv("OUTREACH_AGENCIES", str(path))
    return drop


@pytest.fixture
def drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return configure(tmp_path, monkeypatch)


def final_notice_sent(engine: Engine, account: dict[str, Any], days_ago: int) -> None:
    """The final notice letter went out ``days_ago`` days before DAY."""
    sent = dt.datetime.combine(DAY - dt.timedelta(days=days_ago), dt.time(15))
    f.add_final_notice(engine, account["account_id"], sent)


def placeable(engine: Engine, n: int = 1, *, balance: str = "1500.00", **kw: Any) -> list[dict[str, Any]]:
    """``n`` accounts 160 days past due with a final notice on record: the agency stage."""
    accounts = [f.add_account(engine, as_of=DAY, dpd=160, balance=balance, past_due="300.00", **kw)
                for _ in range(n)]
    for account in accounts:
        final_notice_sent(engine, account, 40)
    return accounts


def plan(engine: Engine) -> None:
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass


def channel(url: str, tmp_path: Path) -> AgencyFileChannel:
    built = build_channel("agency", {"backend": "agency_files"}, outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}",
                          state_dir=tmp_path, database_url=url)
    assert isinstance(built, AgencyFileChannel)
    return built


def dispatch(engine: Engine, impl: Any, day: dt.date = DAY) -> dict[str, int]:
    return dispatch_range(engine, day, "agency", 0, 10**9, clock="logical", channel_impl=impl).as_dict()


def placements(engine: Engine) -> dict[int, tuple[str, str]]:
    """account id -> (agency, state)."""
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            text("SELECT account_id, agency, state FROM placement ORDER BY id"))}


def agency_contacts(engine: Engine) -> dict[int, tuple[str, str | None, str]]:
    """account id -> (state, error_code, reasons) of its agency contact."""
    return {c["account_id"]: (c["state"], c["error_code"], c["reasons"])
            for c in f.contacts(engine, channel="agency")}


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("contact", "placement", "document", "contact_event", "policy_decision",
                          "placement_return", "payment", "account_hold")}


def drop_files(drop: Path) -> dict[str, bytes]:
    return {str(p.relative_to(drop)): p.read_bytes() for p in sorted(drop.rglob("*.csv"))}


# --- the config ---------------------------------------------------------------------------------


def test_shipped_agency_config_is_valid() -> None:
    model, errors = check_agency_config_text((PROJECT_ROOT / "config" / "agencies.yaml").read_text())
    assert errors == [] and model is not None
    assert {a.id for a in model.agencies} >= {"liberty_credit", "huaxin_collect"}
    assert {f.id for f in model.law_firms} >= {"zhonghe_law"}


def test_config_errors_name_their_yaml_path_and_line() -> None:
    _, errors = check_agency_config_text(
        "agencies:\n"
        "  - {id: a, name: A, jurisdictions: [US-NY, usa], capacity: 5, approved: true,\n"
        "     commission_rate: 0.2, recall_after_days: 30, drop: 'sftp://bob:pw@host/in'}\n"
        "  - {id: a, name: B, jurisdictions: [US], capacity: 5, approved: true,\n"
        "     commission_rate: 0.2, recall_after_days: 30}\n"
        "allocation:\n"
        "  bands:\n"
        "    - {min_balance: 0, max_balance: 100, agencies: [a, nobody]}\n"
        "    - {min_balance: 50, agencies: [a]}\n"
    )
    shown = {e.path: (e.line, e.message) for e in errors}
    assert shown["agencies[0].jurisdictions[1]"][1].startswith("'usa' is not a jurisdiction")
    assert "credentials" in shown["agencies[0].drop"][1]
    assert shown["agencies[1].id"] == (4, "duplicate id 'a'")
    assert shown["allocation.bands[0].agencies[1]"] == (8, "unknown agency 'nobody'")
    assert "overlaps allocation.bands[0]" in shown["allocation.bands[1].min_balance"][1]
    _, errors = check_agency_config_text("agencies:\n  - {id: a, name: A, capacity: -1}\n")
    paths = {e.path for e in errors}
    assert {"agencies[0].capacity", "agencies[0].jurisdictions", "agencies[0].approved"} <= paths


# --- allocation ---------------------------------------------------------------------------------


def test_allocation_follows_jurisdiction_approval_and_balance_band(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    ny = placeable(engine, 1)[0]
    ca = placeable(engine, 1, region="CA", address_zones="America/Los_Angeles")[0]
    small = placeable(engine, 1, balance="600.00")[0]
    plan(engine)
    assert dispatch(engine, channel(url, tmp_path))["sent"] == 3
    placed = placements(engine)
    # NY: alpha, bravo, charlie are licensed (echo is not approved, delta is CA only).
    assert placed[ny["account_id"]] == ("alpha", "open")
    # CA: the next in id order after alpha among bravo, charlie, delta.
    assert placed[ca["account_id"]] == ("bravo", "open")
    # Under 1,000 only charlie's band applies (huaxin is licensed in China only).
    assert placed[small["account_id"]] == ("charlie", "open")


def test_round_robin_is_deterministic_and_continues_after_the_latest_placement(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_POLICY", str(tmp_path / "none.yaml"))
    runs = []
    for run in ("first", "second"):
        url = f"sqlite:///{tmp_path / f'{run}.db'}"
        monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / run))
        (tmp_path / run).mkdir()
        configure(tmp_path / run, monkeypatch)
        engine = f.database(url)
        accounts = placeable(engine, 7)
        plan(engine)
        dispatch(engine, channel(url, tmp_path))
        placed = placements(engine)
        runs.append([placed[a["account_id"]][0] for a in accounts])
    # Eligible for NY accounts over 1,000: alpha, bravo, charlie, in id order, in turn.
    assert runs[0] == ["alpha", "bravo", "charlie"] * 2 + ["alpha"]
    assert runs[1] == runs[0]
    # The next day's run goes on from the agency that got the latest placement.
    hooks = PlacementHooks(engine, DAY + dt.timedelta(days=1))
    assert hooks.allocate(Decimal(1500), "US", "NY").agency.id == "bravo"  # type: ignore[union-attr]
    # The planner's preview counts nothing: asked twice, the same agency.
    with engine.connect() as conn:
        record = load_accounts(conn, 1, 1, day=DAY, cutoff=dt.datetime(2026, 11, 24))[1]
    previews = [hooks.preview(step_for("agency", None), record) for _ in range(2)]
    assert [(p.agency, p.agency_approved) for p in previews] == [("bravo", True)] * 2
    assert hooks.open_counts == Counter({"alpha": 3, "bravo": 2, "charlie": 2})


def test_capacity_counts_open_placements_and_this_runs_allocations(
        engine: Engine, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, monkeypatch,
              agencies=agency("alpha", "US-NY", capacity=2) + agency("bravo", "US-NY", capacity=1),
              bands="    - {min_balance: 0, agencies: [alpha, bravo]}\n")
    earlier = placeable(engine, 1)[0]
    with engine.begin() as conn:  # alpha already holds one open placement
        conn.execute(text(
            "INSERT INTO placement (account_id, agency, ledger_key, placed_on, balance_at_placement, "
            "recall_due_on, state, updated_at) VALUES (:a, 'alpha', 'earlier', :d, 1500, :r, "
            "'open', :d)"), {"a": earlier["account_id"], "d": DAY - dt.timedelta(days=5),
                             "r": DAY + dt.timedelta(days=100)})
    accounts = placeable(engine, 3)
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    placed = placements(engine)
    # Round robin goes on after alpha (the latest placement): bravo, then alpha, then nothing.
    assert [placed.get(a["account_id"], (None,))[0] for a in accounts] == ["bravo", "alpha", None]
    # The account placed before gets no second placement: the gate's core.placed_with_agency
    # blocks it, or (without that rule) the hooks' refusal.
    assert agency_contacts(engine)[earlier["account_id"]] in {
        ("suppressed", None, "core.placed_with_agency"), ("failed", "already_placed", "")}
    # Full everywhere: at send time no agency is left, so the gate defers it a day.
    assert agency_contacts(engine)[accounts[2]["account_id"]] == (
        "deferred", None, "core.agency_unassigned")
    assert Counter(a for a, s in placed.values() if s == "open") == {"alpha": 2, "bravo": 1}


def test_by_performance_picks_the_best_recovery_ratio(
        engine: Engine, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, monkeypatch, strategy="performance")
    history = placeable(engine, 2)
    with engine.begin() as conn:
        for i, (account, name, recovered) in enumerate(
                [(history[0], "alpha", 150), (history[1], "bravo", 600)]):
            pid = conn.execute(text(
                "INSERT INTO placement (account_id, agency, ledger_key, placed_on, "
                "balance_at_placement, recall_due_on, state, recalled_on, recall_reason, updated_at) "
                "VALUES (:a, :g, :k, :d, 1000, :d, 'recalled', :d, 'recall_due', :d) RETURNING id"),
                {"a": account["account_id"], "g": name, "k": f"old{i}",
                 "d": DAY - dt.timedelta(days=100)}).scalar_one()
            conn.execute(text(
                "INSERT INTO placement_return (return_ref, placement_id, occurred_on, kind, amount, "
                "recorded_at) VALUES (:r, :p, :d, 'payment', :amount, :d)"),
                {"r": f"{name}:r{i}", "p": pid, "d": DAY - dt.timedelta(days=50), "amount": recovered})
    hooks = PlacementHooks(engine, DAY)
    assert hooks.performance == {"alpha": Decimal("0.15"), "bravo": Decimal("0.6")}
    assert hooks.allocate(Decimal(1500), "US", "NY").agency.id == "bravo"  # type: ignore[union-attr]


def test_china_placement_needs_an_agency_on_the_approved_list(
        engine: Engine, tmp_path: Path, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account_ids = placeable(engine, 1, country="CN", region="BJ", address_zones="Asia/Shanghai",
                            phones=[{"value": "+8613800138000", "zones": "Asia/Shanghai"}])
    account = account_ids[0]
    with engine.connect() as conn:
        record = load_accounts(conn, account["account_id"], account["account_id"], day=DAY,
                               cutoff=dt.datetime(2026, 11, 23, 8))[account["account_id"]]
        contact = DueContact("k-cn", record.id, None, None, "agency_placement", "place_with_agency",
                             DAY, dt.datetime(2026, 11, 22, 16), dt.datetime(2026, 11, 23, 16))
        ctx = MessageContext(conn, contact, record, {}, DAY, dt.datetime(2026, 11, 23, 8), None)

        def judged(policy: str) -> tuple[str | None, str, tuple[str, ...]]:
            path = tmp_path / f"policy-{len(policy)}.yaml"  # a new file: no stale cache
            path.write_text(policy)
            monkeypatch.setenv("OUTREACH_POLICY", str(path))
            step = PlacementHooks(engine, DAY).step(step_for("agency", None), ctx)
            verdict = evaluate(step, record.gate_facts("collector"), day=DAY, at=ctx.at)
            return step.agency, verdict.verdict, verdict.reasons

        assert judged("approved_agencies: []\n") == ("huaxin", SEND, ())
        # An approved list that leaves huaxin out: no agency may take it, and the China rule blocks.
        assert judged("approved_agencies: [alpha]\n") == (None, BLOCK, ("cn.agency_not_approved",))


# --- one open placement per account -------------------------------------------------------------


def test_an_account_never_gets_a_second_open_placement(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    account = placeable(engine, 1)[0]
    plan(engine)
    impl = channel(url, tmp_path)
    assert dispatch(engine, impl)["sent"] == 1
    key = f.contacts(engine, channel="agency")[0]["key"]
    fields = {"agency": "bravo", "account_id": account["account_id"], "balance": "1500.00",
              "placed_on": DAY.isoformat(), "recall_due_on": "2027-03-23", "agency_capacity": 100}
    # The same key again: the same result, no new row.
    first = impl.send(OutboundMessage(key, "agency", "x", "", fields=fields))
    assert first == impl.lookup(key) and len(placements(engine)) == 1
    # Another contact for the same account: the partial unique index refuses, as a refusal.
    with pytest.raises(PermanentError) as refused:
        impl.send(OutboundMessage("another-key", "agency", "x", "", fields=fields))
    assert refused.value.code == "already_placed"
    assert impl.lookup("another-key") is None and len(placements(engine)) == 1


def test_a_placement_whose_send_was_lost_is_recovered_not_placed_again(
        engine: Engine, url: str, tmp_path: Path, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    placeable(engine, 2)
    plan(engine)
    inner = channel(url, tmp_path)

    class CrashAfterInsert:
        kind, backend = inner.kind, inner.backend

        def send(self, message: OutboundMessage) -> SendResult:
            inner.send(message)
            raise RuntimeError("worker died after the placement was written")

        def lookup(self, key: str) -> SendResult | None:
            return inner.lookup(key)

        def close(self) -> None:
            pass

    with pytest.raises(RuntimeError):
        dispatch(engine, CrashAfterInsert())
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "0")
    counts = dispatch(engine, inner)
    assert counts["recovered"] == 1 and counts["sent"] == 1
    assert Counter(s for s, _, _ in agency_contacts(engine).values()) == {"sent": 2}
    assert len(placements(engine)) == 2


def test_paid_or_disputed_since_planning_gets_no_placement(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    paid, disputed, late_dispute, ceased, placed = placeable(engine, 5)
    with engine.begin() as conn:  # this one's validation period ended long ago
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d WHERE id = :a"),
                     {"d": DAY - dt.timedelta(days=200), "a": late_dispute["account_id"]})
    plan(engine)
    f.add_payment(engine, paid["account_id"], DAY, "300.00")
    f.add_hold(engine, disputed["account_id"], "dispute", DAY)
    f.add_hold(engine, late_dispute["account_id"], "dispute", DAY)
    f.add_hold(engine, ceased["account_id"], "cease_communication", DAY)
    dispatch(engine, channel(url, tmp_path))
    outcome = agency_contacts(engine)
    assert outcome[paid["account_id"]] == ("suppressed", None, "core.not_delinquent")
    assert outcome[disputed["account_id"]] == (
        "suppressed", None, "core.dispute_before_referral us_reg_f.dispute_in_validation_period")
    # A dispute after the validation period and a cease request: the house rules stop them.
    assert outcome[late_dispute["account_id"]] == (
        "suppressed", None, "core.dispute_before_referral")
    assert outcome[ceased["account_id"]] == ("suppressed", None, "core.cease_before_placement")
    assert set(placements(engine)) == {placed["account_id"]}


def test_no_licensed_agency_defers_the_placement(
        engine: Engine, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, monkeypatch, agencies=agency("alpha", "US-NY"),
              bands="    - {min_balance: 0, agencies: [alpha]}\n")
    texan = placeable(engine, 1, region="TX", address_zones="America/Chicago")[0]
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    # Planned and judged without an agency: the gate defers it (core.agency_unassigned).
    assert agency_contacts(engine)[texan["account_id"]] == (
        "deferred", None, "core.agency_unassigned")
    assert placements(engine) == {}


# --- files --------------------------------------------------------------------------------------


def test_placement_files_per_agency_are_byte_identical_on_rerun(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    accounts = placeable(engine, 4)
    f.add_payment(engine, accounts[0]["account_id"], DAY - dt.timedelta(days=20), "50.00")
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    assert write_placement_files(engine, DAY) == {
        "agencies": 3, "placements": 4, "files_written": 3, "files_unchanged": 0}
    files = drop_files(drop)
    assert sorted(files) == [f"{a}/2026-11-23/placements-{a}.csv" for a in ("alpha", "bravo", "charlie")]
    alpha = files["alpha/2026-11-23/placements-alpha.csv"].decode().splitlines()
    assert alpha[0].startswith("account_ref,full_name,address_line1,city,region,postal_code,")
    assert [line.split(",")[0] for line in alpha[1:]] == [accounts[0]["account_ref"],
                                                          accounts[3]["account_ref"]]
    cells = dict(zip(alpha[0].split(","), alpha[1].split(","), strict=True))
    assert cells["phone1"].startswith("+1212") and cells["currency"] == "USD"
    assert cells["balance"] == "1500.00" and cells["past_due"] == "300.00"
    assert cells["last_payment_date"] == "2026-11-03" and cells["recall_due_on"] == "2027-03-23"
    before = row_counts(engine)
    # The whole day again: no send, no new row, the same bytes.
    assert dispatch(engine, channel(url, tmp_path))["sent"] == 0
    assert write_placement_files(engine, DAY)["files_unchanged"] == 3
    assert drop_files(drop) == files and row_counts(engine) == before
    with engine.connect() as conn:
        docs = conn.execute(text("SELECT kind, recipient, path, sha256, size FROM document")).all()
    import hashlib
    assert {(d[0], d[1]) for d in docs} == {("placement_file", a) for a in ("alpha", "bravo", "charlie")}
    for _, recipient, path, sha, size in docs:
        data = files[f"{recipient}/2026-11-23/placements-{recipient}.csv"]
        assert path.startswith("file://") and sha == hashlib.sha256(data).hexdigest()
        assert size == len(data)


# --- recall -------------------------------------------------------------------------------------


def test_recall_at_once_on_dispute_bankruptcy_cease_and_paid_and_by_days(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    accounts = placeable(engine, 7)
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    assert len(placements(engine)) == 7
    later = DAY + dt.timedelta(days=10)
    disputed, bankrupt, ceased, paid, current, kept, ended = accounts
    f.add_hold(engine, disputed["account_id"], "dispute", later)
    f.add_hold(engine, bankrupt["account_id"], "bankruptcy", later - dt.timedelta(days=2))
    f.add_hold(engine, ceased["account_id"], "cease_communication", later)
    f.add_payment(engine, paid["account_id"], later, "1500.00")  # the whole balance
    f.add_payment(engine, current["account_id"], later, "300.00")  # what was past due
    f.add_hold(engine, ended["account_id"], "dispute", DAY, ended_on=later)  # resolved already
    counts = recall_placements(engine, later)
    assert counts["recalled"] == 5 and counts["by_reason"] == {
        "bankruptcy": 1, "dispute": 1, "cease_communication": 1, "paid_in_full": 1,
        "brought_current": 1}
    state = placements(engine)
    assert state[kept["account_id"]][1] == state[ended["account_id"]][1] == "open"
    with engine.connect() as conn:
        reasons = dict(conn.execute(text(
            "SELECT account_id, recall_reason FROM placement WHERE recalled_on = :d"), {"d": later}).all())
    assert reasons[paid["account_id"]] == "paid_in_full"
    assert reasons[current["account_id"]] == "brought_current"
    files = {k: v for k, v in drop_files(drop).items() if "recalls-" in k}
    recalled = [line for data in files.values() for line in data.decode().splitlines()[1:]]
    assert len(recalled) == 5 and all(",2026-11-23,2026-12-03," in line for line in recalled)
    before = row_counts(engine)
    again = recall_placements(engine, later)
    assert again["recalled"] == 0 and again["files_written"] == 0
    assert {k: v for k, v in drop_files(drop).items() if "recalls-" in k} == files
    assert row_counts(engine) == before
    # The placement file of the day they were placed does not change with the recall.
    write_placement_files(engine, DAY)
    placed_files = {k: v for k, v in drop_files(drop).items() if "placements-" in k}
    write_placement_files(engine, DAY)
    assert {k: v for k, v in drop_files(drop).items() if "placements-" in k} == placed_files
    # 120 days after placing: the rest are due back.
    due = recall_placements(engine, DAY + dt.timedelta(days=120))
    assert due["by_reason"] == {"recall_due": 2}
    assert all(s == "recalled" for _, s in placements(engine).values())


# --- agency returns -----------------------------------------------------------------------------


def test_agency_returns_reach_the_payments_and_are_idempotent_and_bad_rows_rejected(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    first, second = placeable(engine, 2)
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    assert placements(engine)[first["account_id"]][0] == "alpha"
    returns = tmp_path / "alpha-returns.csv"
    a1, a2 = first["account_ref"], second["account_ref"]
    returns.write_text(
        "return_ref,account_ref,occurred_on,kind,amount,outcome\n"
        f"R1,{a1},2026-11-25,payment,120.50,\n"
        f"R2,{a1},2026-11-26,outcome,,promise_to_pay\n"
        f"R3,{a1},2026-11-27,payment,-5,\n"
        f"R4,NOPE,2026-11-27,payment,10.00,\n"
        f"R5,{a1},27/11/2026,payment,10.00,\n"
        f"R6,{a1},2026-11-28,refund,10.00,\n"
        f"R7,{a2},2026-11-28,payment,10.00,\n"  # placed with bravo, not alpha
        f"R8,{a1},2026-11-28,outcome,,dispute\n"
    )
    at = dt.datetime(2026, 11, 29, 6)
    counts = import_agency_returns(engine, "alpha", returns, at)
    assert {k: counts[k] for k in ("rows_read", "inserted", "payments", "holds", "rejected")} == {
        "rows_read": 8, "inserted": 3, "payments": 1, "holds": 1, "rejected": 5}
    rejects = [json.loads(line) for line in Path(counts["rejects_file"]).read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [
        (4, "amount"), (5, "account_ref"), (6, "occurred_on"), (7, "kind"), (8, "account_ref")]
    assert rejects[0]["reason"] == "must not be negative" and rejects[0]["record"]["return_ref"] == "R3"
    with engine.connect() as conn:
        paid = conn.execute(text("SELECT payment_ref, paid_on, amount FROM payment")).all()
        account = load_accounts(conn, first["account_id"], first["account_id"],
                                day=dt.date(2026, 11, 29), cutoff=at)[first["account_id"]]
    assert [(r[0], str(r[1]), Decimal(str(r[2]))) for r in paid] == [
        ("alpha:R1", "2026-11-25", Decimal("120.5"))]
    assert account.past_due == Decimal("179.50") and "dispute" in account.holds
    before = row_counts(engine)
    again = import_agency_returns(engine, "alpha", returns, at)
    assert again["inserted"] == 0 and again["duplicates"] == 3 and again["rejected"] == 5
    assert row_counts(engine) == before
    # The same return_ref with other values is refused, not applied.
    returns.write_text("return_ref,account_ref,occurred_on,kind,amount,outcome\n"
                       f"R1,{a1},2026-11-25,payment,999.00,\n")
    changed = import_agency_returns(engine, "alpha", returns, at)
    assert changed["rejected"] == 1 and changed["inserted"] == 0
    # The dispute the agency reported recalls the placement on the next recall run.
    assert recall_placements(engine, dt.date(2026, 11, 29))["by_reason"] == {"dispute": 1}


# --- formula prefixes in the files for the agencies ---------------------------------------------

FORMULAS = ('=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_placement_and_recall_files_neutralise_formula_prefixes_and_returns_still_match(
        engine: Engine, url: str, tmp_path: Path, drop: Path) -> None:
    name, street, city, ref = FORMULAS
    (account,) = placeable(engine, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET full_name = :n, address_line1 = :s, city = :c "
                          "WHERE id = :p"), {"n": name, "s": street, "c": city, "p": account["person_id"]})
        conn.execute(text("UPDATE account SET account_ref = :r WHERE id = :a"),
                     {"r": ref, "a": account["account_id"]})
    plan(engine)
    dispatch(engine, channel(url, tmp_path))
    (agency_id, _), = placements(engine).values()
    write_placement_files(engine, DAY)
    placed = read_csv(drop / agency_id / DAY.isoformat() / f"placements-{agency_id}.csv")
    assert len(placed) == 1
    row = placed[0]
    assert (row["account_ref"], row["full_name"], row["address_line1"], row["city"]) == tuple(
        "'" + v for v in (ref, name, street, city))
    # The rest of the row intact: numbers (an E.164 phone, amounts) stay numbers.
    assert row["phone1"].startswith("+1212") and row["phone1"][1:].isdigit()
    assert (row["region"], row["postal_code"], row["country"], row["currency"]) == (
        "NY", "10001", "US", "USD")
    assert (row["balance"], row["past_due"], row["placed_on"], row["recall_due_on"]) == (
        "1500.00", "300.00", "2026-11-23", "2027-03-23")

    later = DAY + dt.timedelta(days=10)
    f.add_hold(engine, account["account_id"], "dispute", later)
    assert recall_placements(engine, later)["recalled"] == 1
    recalled = read_csv(drop / agency_id / later.isoformat() / f"recalls-{agency_id}.csv")
    assert recalled == [{"account_ref": "'" + ref, "placed_on": "2026-11-23",
                         "recalled_on": later.isoformat(), "recall_reason": "dispute"}]

    # The agency's returns name the account as our file had it, or without the quote: both match.
    returns = tmp_path / "returns.csv"
    with returns.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([
            ["return_ref", "account_ref", "occurred_on", "kind", "amount", "outcome"],
            ["R1", row["account_ref"], "2026-11-25", "payment", "20.00", ""],
            ["R2", ref, "2026-11-26", "payment", "30.00", ""],
        ])
    counts = import_agency_returns(engine, agency_id, returns, dt.datetime(2026, 11, 29, 6))
    assert (counts["inserted"], counts["payments"], counts["rejected"]) == (2, 2, 0)
