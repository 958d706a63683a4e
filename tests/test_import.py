"""The portfolio importer: rejects with line/field/reason, upserts, idempotent re-imports."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from outreach.portfolio.files import ImportFileError
from outreach.portfolio.importer import ImportReport, import_file
from outreach.storage.db import make_engine, migrate
from outreach.storage.models import (
    Account,
    AccountHold,
    Base,
    ContactEvent,
    ContactPoint,
    ImportRun,
    OptOut,
    Payment,
    Person,
)

# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    return make_engine(url)


def account(ref: str = "A1", person: str = "P1", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record": "account",
        "account_ref": ref,
        "person_ref": person,
        "full_name": "Pat Example",
        "language": "en",
        "product": "credit_card",
        "currency": "USD",
        "balance": "1200.50",
        "amount_past_due": "150.00",
        "due_date": "2026-10-01",
        "balance_as_of": "2026-11-19",
        "country": "US",
        "region": "NY",
        "city": "New York",
        "address_line1": "1 Main St",
        "postal_code": "10001",
        "phones": [
            {"number": "+12125550123", "type": "mobile", "sms_consent": True, "call_consent": True}
        ],
        "emails": [{"address": "Pat@Example.com", "workplace": False}],
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def payment(ref: str = "PM1", account_ref: str = "A1", **changes: Any) -> dict[str, Any]:
    record = {"record": "payment", "payment_ref": ref, "account_ref": account_ref,
              "paid_on": "2026-11-01", "amount": "50.00"}  # fmt: skip
    return record | changes


def hold(account_ref: str = "A1", **changes: Any) -> dict[str, Any]:
    record = {"record": "hold", "account_ref": account_ref, "kind": "dispute",
              "started_on": "2026-11-02"}  # fmt: skip
    return record | changes


def event(account_ref: str = "A1", **changes: Any) -> dict[str, Any]:
    record = {"record": "contact_event", "account_ref": account_ref,
              "occurred_at": "2026-11-18T10:00:00-05:00", "channel": "call",
              "destination": "+12125550123", "outcome": "no_answer"}  # fmt: skip
    return record | changes


def opt_out(**changes: Any) -> dict[str, Any]:
    record = {"record": "opt_out", "person_ref": "P1", "channel": "sms",
              "destination": "*", "recorded_at": "2026-11-17T12:00:00Z"}  # fmt: skip
    return record | changes


def write(path: Path, records: Iterable[dict[str, Any] | str]) -> Path:
    """JSON lines (a str is written as the line itself), or CSV when path ends in .csv."""
    records = list(records)
    if path.suffix == ".csv":
        rows = [_flatten(r) for r in records if isinstance(r, dict)]
        columns = list(dict.fromkeys(c for row in rows for c in row))
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        return path
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record.items() if k not in ("phones", "emails")}
    for i, p in enumerate(record.get("phones", []), start=1):
        flat[f"phone{i}"] = p["number"]
        for key, value in p.items():
            if key != "number":
                flat[f"phone{i}_{key}"] = str(value).lower()
    for i, e in enumerate(record.get("emails", []), start=1):
        flat[f"email{i}"] = e["address"]
        for key, value in e.items():
            if key != "address":
                flat[f"email{i}_{key}"] = str(value).lower()
    return flat


def rejects(report: ImportReport) -> list[dict[str, Any]]:
    assert report.rejects_path is not None
    return [json.loads(line) for line in report.rejects_path.read_text().splitlines()]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the import log, for before/after comparisons."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name != "import_run":
                out[table.name] = [
                    tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))
                ]
    return out


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model)).all())


# --- rejects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_each_bad_value_is_rejected_with_line_field_and_reason_while_good_rows_land(
    tmp_path: Path, engine: Engine, suffix: str
) -> None:
    bad_phone = account("A4", "P4", phones=[{"number": "+1 555 0100", "type": "mobile"}])
    records = [
        account(),  # good
        payment(),  # good
        account("A2", "P2", due_date="2026-13-01"),  # bad date
        payment("PM2", amount="-5.00"),  # negative amount
        hold(kind="vacation"),  # unknown enum
        bad_phone,  # invalid phone
        payment("PM3", account_ref="NOPE"),  # unknown account
        account("A5", "P5", full_name=None),  # missing required field
        event(),  # good
        account("A6", "P6", amount_past_due="2000.00"),  # past due above balance
        event(occurred_at="2026-11-18T10:00:00"),  # no offset
        account("A7", "P7", currency="XYZ"),  # not ISO 4217
    ]
    path = write(tmp_path / f"portfolio{suffix}", records)
    report = import_file(path, engine=engine, rejects_path=tmp_path / "rejects.jsonl")

    first = 2 if suffix == ".csv" else 1  # CSV: the header is line 1
    phone_field = "phone1" if suffix == ".csv" else "phones[0].number"
    expected = [
        (first + 2, "due_date", "is not an ISO date"),
        (first + 3, "amount", "must not be negative"),
        (first + 4, "kind", "'vacation' is not one of"),
        (first + 5, phone_field, "invalid phone number"),
        (first + 6, "account_ref", "unknown account_ref"),
        (first + 7, "full_name", "required"),
        (first + 9, "amount_past_due", "greater than balance"),
        (first + 10, "occurred_at", "needs a UTC offset"),
        (first + 11, "currency", "not an ISO 4217 currency code"),
    ]
    got = rejects(report)
    assert [(r["line"], r["field"]) for r in got] == [(line, f) for line, f, _ in expected]
    for entry, (_, _, reason) in zip(got, expected, strict=True):
        assert reason in entry["reason"]
    assert got[0]["record"]["account_ref"] == "A2"  # the raw row comes along
    assert report.rejected == len(expected)
    assert report.inserted == 3 and report.rows_read == len(records)

    assert [a.account_ref for a in rows(engine, Account)] == ["A1"]
    assert [p.payment_ref for p in rows(engine, Payment)] == ["PM1"]
    assert len(rows(engine, ContactEvent)) == 1


def test_physical_line_numbers_count_blank_lines_and_unparseable_lines(
    tmp_path: Path, engine: Engine
) -> None:
    path = write(tmp_path / "p.jsonl", [account(), "", "{not json", '["a list"]', payment()])
    report = import_file(path, engine=engine)
    assert [(r["line"], r["reason"][:14]) for r in rejects(report)] == [
        (3, "not valid JSON"),
        (4, "not a JSON obj"),
    ]
    assert report.by_record["invalid"]["rejected"] == 2
    assert report.inserted == 2


def test_a_csv_record_spanning_lines_is_numbered_by_its_first_line(
    tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "record,payment_ref,account_ref,paid_on,amount,note\n"
        'payment,PM1,NOPE,2026-11-01,5,"two\nlines"\n'
        "payment,PM2,NOPE,2026-11-01,5,\n"
    )
    report = import_file(path, engine=engine)
    got = rejects(report)
    assert [r["line"] for r in got] == [2, 4]
    assert got[0]["record"]["note"] == "two\nlines"


def test_rejects_go_to_the_data_dir_by_default(tmp_path: Path, app_data: Path) -> None:
    url = f"sqlite:///{app_data / 'outreach.db'}"
    migrate(url)
    report = import_file(
        write(tmp_path / "daily.jsonl", [payment(account_ref="NOPE")]), engine=make_engine(url)
    )
    assert report.rejects_path is not None
    assert report.rejects_path.parent == app_data / "rejects"
    assert report.rejects_path.name.startswith("daily-")
    assert report.rejects_path.name.endswith(".rejects.jsonl")
    clean = import_file(write(tmp_path / "clean.jsonl", []), engine=make_engine(url))
    assert clean.rejects_path is None  # no rejects, no file


def test_a_dependent_row_above_its_account_is_rejected(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "p.jsonl", [payment(), account()])
    report = import_file(path, engine=engine)
    assert [(r["line"], r["field"]) for r in rejects(report)] == [(1, "account_ref")]
    # The next file may refer to it: it is in the database now.
    again = import_file(write(tmp_path / "q.jsonl", [payment()]), engine=engine)
    assert again.inserted == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jsonl", None, "cannot open"),
        ("no_record.csv", b"account_ref,balance\nA1,10\n", "no 'record' column"),
        ("latin1.csv", b"record,full_n\xe9me\naccount,Pat\n", "header is not UTF-8"),
        ("quote.csv", b'record,full_name\naccount,"Pat\n', "line 2: unexpected end of data"),
        ("portfolio.xlsx", b"PK", "unknown format"),
    ],
)
def test_an_unreadable_file_raises_a_clear_error(
    tmp_path: Path, engine: Engine, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_file(path, engine=engine)
    assert rows(engine, ImportRun) == []  # nothing written, not even the run


def test_a_broken_gzip_raises_and_a_good_one_imports(tmp_path: Path, engine: Engine) -> None:
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00junk")
    with pytest.raises(ImportFileError, match="cannot read"):
        import_file(broken, engine=engine)
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(gzip.compress(write(tmp_path / "p.jsonl", [account()]).read_bytes()))
    assert import_file(good, engine=engine).inserted == 1


# --- upserts ------------------------------------------------------------------------------------


def _portfolio() -> list[dict[str, Any]]:
    second = [
        {"number": "(415) 555-0142", "type": "landline", "call_consent": "yes"},
        {"number": "+14155550143", "type": "work", "workplace": True, "no_calls_at_work": True},
        {"number": "+14155550144", "type": "mobile", "relation": "emergency_contact"},
    ]
    return [
        account(
            validation_notice_sent_on="2026-10-05",
            initial_communication_on="2026-10-02",
            scra_checked_on="2026-11-01",
            scra_active_duty=False,
        ),
        account(
            "A2",
            "P2",
            full_name="Lee Example",
            region="CA",
            city="San Francisco",
            postal_code="94110",
            phones=second,
            emails=[
                {"address": "lee@example.com", "consent": True},
                {"address": "lee@work.example.com", "workplace": True, "used_by_consumer": True},
            ],
            inconvenient_times="Mon-Fri 9:00-17:00",
        ),  # fmt: skip
        account(
            "A3", "P1", product="consumer_loan", balance="9000", amount_past_due="0", due_date=None
        ),  # fmt: skip
        payment(),
        hold(),
        hold("A2", kind="hardship", started_on="2026-09-01", ended_on="2026-10-01"),
        hold("A3", kind="instalment_plan", started_on="2026-11-01"),
        event(),
        event(channel="sms", destination="2125550123", outcome="delivered"),
        event("A2", event_ref="DIALER-9", destination="+14155550142", outcome="voicemail"),
        event(channel="email", destination="PAT@example.com", outcome="bounced"),
        opt_out(),
        opt_out(account_ref="A2", person_ref=None, channel="call", destination="+14155550142"),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_reimporting_the_same_file_changes_nothing(
    tmp_path: Path, engine: Engine, suffix: str
) -> None:
    path = write(tmp_path / f"portfolio{suffix}", _portfolio())
    first = import_file(path, engine=engine)
    assert first.rejected == 0, first.rejects_path and first.rejects_path.read_text()
    assert first.inserted == first.rows_read == 13
    before = dump(engine)

    second = import_file(path, engine=engine)
    assert second.unchanged == second.rows_read == 13
    assert second.inserted == second.updated == second.rejected == 0
    assert dump(engine) == before  # not even updated_at moved
    runs = rows(engine, ImportRun)
    assert [(r.rows_read, r.rows_upserted, r.rows_unchanged) for r in runs] == [
        (13, 13, 0),
        (13, 0, 13),
    ]
    assert runs[0].file_sha256 == runs[1].file_sha256


def test_an_updated_balance_in_a_second_file_updates_only_that_row(
    tmp_path: Path, engine: Engine
) -> None:
    import_file(write(tmp_path / "day1.jsonl", _portfolio()), engine=engine)
    before = dump(engine)
    changed = [account(balance="1100.50", amount_past_due="50.00"), account("A3", "P1",
               product="consumer_loan", balance="9000", amount_past_due="0", due_date=None)]  # fmt: skip
    report = import_file(write(tmp_path / "day2.jsonl", changed), engine=engine)
    assert (report.updated, report.unchanged) == (1, 1)

    after = dump(engine)
    assert {t for t in after if after[t] != before[t]} == {"account"}
    old = {r[1]: r for r in before["account"]}
    new = {r[1]: r for r in after["account"]}
    assert [ref for ref in new if new[ref] != old[ref]] == ["A1"]
    a1 = next(a for a in rows(engine, Account) if a.account_ref == "A1")
    assert (str(a1.balance), str(a1.amount_past_due)) == ("1100.50", "50.00")
    assert a1.updated_at > old["A1"][-1]


def test_what_each_record_becomes(tmp_path: Path, engine: Engine) -> None:
    report = import_file(write(tmp_path / "p.jsonl", _portfolio()), engine=engine)
    assert report.rejected == 0
    people = {p.person_ref: p for p in rows(engine, Person)}
    assert people["P1"].time_zones == "America/New_York"
    assert people["P2"].time_zones == "America/Los_Angeles"
    points = {(cp.person_id, cp.kind, cp.value): cp for cp in rows(engine, ContactPoint)}
    p1, p2 = people["P1"].id, people["P2"].id
    mobile = points[(p1, "phone", "+12125550123")]
    assert (mobile.phone_type, mobile.time_zones, mobile.sms_consent) == (
        "mobile",
        "America/New_York",
        True,
    )
    landline = points[(p2, "phone", "+14155550142")]  # national format, read as US
    assert (landline.time_zones, landline.call_consent, landline.sms_consent) == (
        "America/Los_Angeles",
        True,
        False,
    )
    assert (p1, "email", "pat@example.com") in points  # lower-cased
    assert (p1, "postal", "1 Main St, New York, NY 10001, US") in points

    accounts = {a.account_ref: a for a in rows(engine, Account)}
    assert accounts["A3"].person_id == p1 and accounts["A3"].due_date is None
    assert (accounts["A2"].jurisdiction_country, accounts["A2"].jurisdiction_region) == ("US", "CA")

    events = {e.outcome: e for e in rows(engine, ContactEvent)}
    assert events["no_answer"].occurred_at == dt.datetime(2026, 11, 18, 15, 0)  # naive UTC
    assert events["delivered"].contact_point_id == mobile.id
    assert events["bounced"].contact_point_id == points[(p1, "email", "pat@example.com")].id
    assert events["voicemail"].event_ref == "DIALER-9"
    assert len(events["no_answer"].event_ref) == 64  # derived: sha256 of the row's fields

    scopes = {(o.person_id, o.channel, o.scope) for o in rows(engine, OptOut)}
    assert scopes == {(p1, "sms", "*"), (p2, "call", str(landline.id))}
    holds = {(h.kind, h.ended_on) for h in rows(engine, AccountHold)}
    assert holds == {
        ("dispute", None),
        ("hardship", dt.date(2026, 10, 1)),
        ("instalment_plan", None),
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_compliance_facts_land_where_the_gate_reads_them(
    tmp_path: Path, engine: Engine, suffix: str
) -> None:
    report = import_file(write(tmp_path / f"p{suffix}", _portfolio()), engine=engine)
    assert report.rejected == 0, report.rejects_path and report.rejects_path.read_text()
    people = {p.person_ref: p for p in rows(engine, Person)}
    # Stored as policies.timeblocks writes it; nothing said is None.
    assert people["P2"].inconvenient_times == "mon,tue,wed,thu,fri 09:00-17:00"
    assert people["P1"].inconvenient_times is None

    accounts = {a.account_ref: a for a in rows(engine, Account)}
    a1 = accounts["A1"]
    assert (a1.validation_notice_sent_on, a1.initial_communication_on) == (
        dt.date(2026, 10, 5),
        dt.date(2026, 10, 2),
    )
    assert (a1.scra_checked_on, a1.scra_active_duty) == (dt.date(2026, 11, 1), False)
    a2 = accounts["A2"]  # none given: empty dates, no active duty
    assert (a2.validation_notice_sent_on, a2.initial_communication_on, a2.scra_checked_on) == (
        None,
        None,
        None,
    )
    assert a2.scra_active_duty is False

    p2 = people["P2"].id
    points = {cp.value: cp for cp in rows(engine, ContactPoint) if cp.person_id == p2}
    flags = {
        value: (cp.relation, cp.no_calls_at_work, cp.used_by_consumer, cp.email_consent)
        for value, cp in points.items()
    }
    assert flags == {
        "+14155550142": ("self", False, False, False),
        "+14155550143": ("self", True, False, False),
        "+14155550144": ("emergency_contact", False, False, False),
        "lee@example.com": ("self", False, False, True),
        "lee@work.example.com": ("self", False, True, False),
        "1 Main St, San Francisco, CA 94110, US": ("self", False, False, False),
    }
    assert points["lee@work.example.com"].is_workplace


_BAD_FACTS = [
    ({"inconvenient_times": "mon-fry 09:00-17:00"}, "inconvenient_times", "unknown day 'mon-fry'"),
    ({"inconvenient_times": "17:00-09:00"}, "inconvenient_times", "ends before it starts"),
    ({"inconvenient_times": "x" * 501}, "inconvenient_times", "longer than 500"),
    ({"validation_notice_sent_on": "2026-02-30"}, "validation_notice_sent_on", "not an ISO date"),
    ({"initial_communication_on": "last week"}, "initial_communication_on", "not an ISO date"),
    ({"scra_checked_on": "2026/11/01"}, "scra_checked_on", "not an ISO date"),
    ({"scra_active_duty": "maybe"}, "scra_active_duty", "is not true or false"),
]
_BAD_PHONE_FACTS = [
    ("relation", "cousin", "'cousin' is not one of: emergency_contact, estate_representative"),
    ("no_calls_at_work", "sometimes", "is not true or false"),
    ("used_by_consumer", "once", "is not true or false"),
]
_BAD_EMAIL_FACTS = [
    ("consent", "perhaps", "is not true or false"),
    ("used_by_consumer", "2", "is not true or false"),
    ("relation", "boss", "'boss' is not one of"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_bad_compliance_fact_is_rejected_with_its_field(
    tmp_path: Path, engine: Engine, suffix: str
) -> None:
    records: list[dict[str, Any]] = []
    expected: list[tuple[str, str]] = []
    for n, (changes, field, reason) in enumerate(_BAD_FACTS):
        records.append(account(f"B{n}", f"Q{n}", **changes))
        expected.append((field, reason))
    csv_file = suffix == ".csv"
    for n, (key, value, reason) in enumerate(_BAD_PHONE_FACTS):
        phones = [
            {"number": "+12125550123", "type": "mobile"},
            {"number": "+12125550124", "type": "work", key: value},
        ]
        records.append(account(f"C{n}", f"R{n}", phones=phones))
        expected.append((f"phone2_{key}" if csv_file else f"phones[1].{key}", reason))
    for n, (key, value, reason) in enumerate(_BAD_EMAIL_FACTS):
        records.append(account(f"D{n}", f"S{n}", emails=[{"address": "a@example.com", key: value}]))
        expected.append((f"email1_{key}" if csv_file else f"emails[0].{key}", reason))
    records.append(account())  # and a good one

    report = import_file(write(tmp_path / f"p{suffix}", records), engine=engine)
    got = rejects(report)
    assert [r["field"] for r in got] == [field for field, _ in expected]
    for entry, (_, reason) in zip(got, expected, strict=True):
        assert reason in entry["reason"], entry
    assert report.inserted == 1 and [a.account_ref for a in rows(engine, Account)] == ["A1"]


def test_every_hold_kind_is_accepted(tmp_path: Path, engine: Engine) -> None:
    kinds = [
        "dispute", "bankruptcy", "deceased", "cease_communication", "attorney", "hardship",
        "original_creditor_request", "breathing_space", "mental_health_crisis", "vulnerable",
        "instalment_plan",
    ]  # fmt: skip
    records = [account(), *(hold(kind=k.upper() if k == "vulnerable" else k) for k in kinds)]
    report = import_file(write(tmp_path / "p.jsonl", records), engine=engine)
    assert report.rejected == 0 and report.inserted == 1 + len(kinds)
    assert sorted(h.kind for h in rows(engine, AccountHold)) == sorted(kinds)


def test_a_changed_compliance_fact_updates_only_its_row(tmp_path: Path, engine: Engine) -> None:
    emails = [{"address": "pat@example.com", "consent": False}]
    day1 = account(emails=emails, inconvenient_times="sun")
    import_file(write(tmp_path / "day1.jsonl", [day1]), engine=engine)
    before = dump(engine)
    assert import_file(write(tmp_path / "day1b.jsonl", [day1]), engine=engine).unchanged == 1

    consented = account(emails=[{"address": "pat@example.com", "consent": True}],
                        inconvenient_times="sun")  # fmt: skip
    report = import_file(write(tmp_path / "day2.jsonl", [consented]), engine=engine)
    assert report.updated == 1
    after = dump(engine)
    assert {t for t in after if after[t] != before[t]} == {"contact_point"}
    email = next(cp for cp in rows(engine, ContactPoint) if cp.kind == "email")
    assert email.email_consent is True

    # An account row is the whole truth for its person: without the field, the times are gone.
    cleared = account(emails=[{"address": "pat@example.com", "consent": True}])
    import_file(write(tmp_path / "day3.jsonl", [cleared]), engine=engine)
    assert [p.inconvenient_times for p in rows(engine, Person)] == [None]


def test_a_destination_that_is_not_the_persons_is_rejected_for_an_opt_out(
    tmp_path: Path, engine: Engine
) -> None:
    records = [account(), opt_out(destination="+13105550100"), event(destination="+13105550100")]
    report = import_file(write(tmp_path / "p.jsonl", records), engine=engine)
    assert [(r["line"], r["field"]) for r in rejects(report)] == [(2, "destination")]
    # A past call to an unknown number still counts as an attempt: kept, with no contact point.
    assert [e.contact_point_id for e in rows(engine, ContactEvent)] == [None]


def test_the_last_row_for_a_key_wins_across_chunks_and_reimport_stays_a_noop(
    tmp_path: Path, engine: Engine
) -> None:
    records = [
        account(balance="1000.00"),
        payment(),  # between the two rows for A1: must find A1
        account("A2", "P2"),
        account("A3", "P3"),
        account(balance="1111.00", amount_past_due="100.00"),
    ]
    path = write(tmp_path / "dupes.jsonl", records)
    first = import_file(path, engine=engine, chunk_size=2)  # A1's two rows in different chunks
    assert (first.superseded, first.rejected) == (1, 0)
    a1 = next(a for a in rows(engine, Account) if a.account_ref == "A1")
    assert str(a1.balance) == "1111.00"
    before = dump(engine)
    second = import_file(path, engine=engine, chunk_size=2)
    assert (second.inserted, second.updated, second.superseded) == (0, 0, 1)
    assert dump(engine) == before


def test_a_changed_address_becomes_the_only_valid_postal_point(
    tmp_path: Path, engine: Engine
) -> None:
    import_file(write(tmp_path / "day1.jsonl", [account()]), engine=engine)
    moved = account(address_line1="9 Elm St", city="Albany", postal_code="12207")
    import_file(write(tmp_path / "day2.jsonl", [moved]), engine=engine)
    postal = {cp.value: cp.valid for cp in rows(engine, ContactPoint) if cp.kind == "postal"}
    assert postal == {
        "1 Main St, New York, NY 10001, US": False,
        "9 Elm St, Albany, NY 12207, US": True,
    }


def test_logs_carry_counts_and_no_personal_data(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="outreach")
    import_file(write(tmp_path / "p.jsonl", _portfolio()), engine=engine)
    text = caplog.text
    assert "13 rows read" in text
    for secret in ("Pat Example", "555", "example.com", "Main St", "P1", "A1"):
        assert secret not in text


@pytest.mark.postgres
def test_reimport_is_a_noop_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy import text

    migrate(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with engine.begin() as conn:  # a scratch database: start from empty tables
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        path = write(tmp_path / "portfolio.jsonl", _portfolio())
        first = import_file(path, engine=engine)
        assert (first.inserted, first.rejected) == (13, 0)
        before = dump(engine)
        second = import_file(path, engine=engine)
        assert second.unchanged == 13
        assert dump(engine) == before
        changed = import_file(
            write(tmp_path / "d2.jsonl", [account(balance="99.00", amount_past_due="9.00")]),
            engine=engine,
        )
        assert changed.updated == 1
    finally:
        engine.dispose()
