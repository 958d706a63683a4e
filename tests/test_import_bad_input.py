"""Bad input never aborts an import nor half-imports it: every row-level problem is a reject
with its line, field and reason; file-level problems are one clear error; errors never carry
bound parameters or personal data."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outreach.portfolio import files, importer
from outreach.portfolio.files import ImportFileError, ImportInterruptedError
from outreach.portfolio.importer import import_file
from outreach.storage.db import make_engine, migrate
from outreach.storage.models import Account, Base, ImportRun
from tests.test_import import account, event, payment, rejects, rows, write

HUGE = "9" * 5000  # a 5,000-digit number
DEEP = 200_000  # nesting levels


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    return make_engine(url)


def _line(record: dict[str, Any], **raw_values: str) -> str:
    """The record as a JSON line, with some values spliced in as raw JSON text."""
    marked = record | {k: f"@@{k}@@" for k in raw_values}
    line = json.dumps(marked)
    for k, raw in raw_values.items():
        line = line.replace(f'"@@{k}@@"', raw)
    return line


def _good(n: int) -> list[dict[str, Any]]:
    return [account(f"G{i}", f"GP{i}") for i in range(n)]


# --- row-level problems in JSON lines -----------------------------------------------------------


def test_every_row_level_problem_in_json_lines_is_a_reject_and_every_good_row_lands(
    tmp_path: Path, engine: Engine
) -> None:
    bad: list[tuple[str | bytes, str | None, str]] = [
        (_line(account("B1", "BP1"), balance=HUGE), None, "4300 digits"),
        (_line(account("B2", "BP2"), amount_past_due=HUGE), None, "4300 digits"),
        (_line(account("B3", "BP3"), phones=f'[{{"number": {HUGE}, "type": "mobile"}}]'), None,
         "4300 digits"),
        (_line(payment("PB4", "G0"), amount=HUGE), None, "4300 digits"),
        (json.dumps(account("B5", "BP5", balance=HUGE)), "balance", "plain decimal"),
        (json.dumps(account("B6", "BP6", phones=[{"number": HUGE, "type": "mobile"}])),
         "phones[0].number", "longer than 40"),
        (_line(account("B7", "BP7"), segment="[" * DEEP + "]" * DEEP), None, "nested"),
        ("[" * DEEP + "]" * DEEP, None, "nested"),
        (json.dumps(account("B9", "BP9", full_name="Pat\u0000Example")), "full_name", "NUL"),
        (json.dumps(account("B10", "BP10", city="\ud800")), "city", "surrogate"),
        (json.dumps(event("G0", occurred_at="0001-01-01T00:00:00+14:00")), "occurred_at",
         "out of range"),
        (json.dumps(account("B12", "BP12", full_name="x" * 300_000)), "full_name", "longer"),
        (b'{"record": "account", "full_name": "Ren\xe9e"}', None, "not UTF-8"),
        ("[1, 2]", None, "not a JSON object"),
        ("42", None, "not a JSON object"),
    ]  # fmt: skip
    good = _good(40)
    path = tmp_path / "p.jsonl"
    with path.open("wb") as f:
        for r in good[:20]:
            f.write(json.dumps(r).encode() + b"\n")
        for line, _, _ in bad:
            f.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
        for r in good[20:]:
            f.write(json.dumps(r).encode() + b"\n")
    # Small chunks: the bad rows sit in later chunks than good ones already committed.
    report = import_file(path, engine=engine, rejects_path=tmp_path / "r.jsonl", chunk_size=7)

    got = rejects(report)
    assert [(r["line"], r["field"]) for r in got] == [
        (21 + i, f) for i, (_, f, _) in enumerate(bad)
    ]
    for entry, (_, _, reason) in zip(got, bad, strict=True):
        assert reason in entry["reason"], entry["reason"]
    assert report.rejected == len(bad) and report.inserted == len(good)
    assert len(rows(engine, Account)) == len(good)


# --- row-level problems in CSV ------------------------------------------------------------------

_HEADER = (
    "record,account_ref,person_ref,full_name,language,product,currency,balance,amount_past_due,"
    "due_date,balance_as_of,country,region,city,address_line1,postal_code,phone1,phone1_type"
)


def _csv_row(ref: str, **changes: str) -> str:
    values = {
        "record": "account", "account_ref": ref, "person_ref": f"P{ref}", "full_name": "Pat",
        "language": "en", "product": "credit_card", "currency": "USD", "balance": "100",
        "amount_past_due": "10", "due_date": "2026-10-01", "balance_as_of": "2026-11-19",
        "country": "US", "region": "NY", "city": "New York", "address_line1": "1 Main St",
        "postal_code": "10001", "phone1": "+12125550123", "phone1_type": "mobile",
    } | changes  # fmt: skip
    return ",".join(values[c] for c in _HEADER.split(","))


def test_every_row_level_problem_in_csv_is_a_reject_and_every_good_row_lands(
    tmp_path: Path, engine: Engine
) -> None:
    bad: list[tuple[bytes, str | None, str]] = [
        (_csv_row("B1", full_name="x" * 200_000).encode(), "full_name", "longer than 200"),
        (_csv_row("B2", balance=HUGE).encode(), "balance", "plain decimal"),
        (_csv_row("B3", amount_past_due=HUGE).encode(), "amount_past_due", "plain decimal"),
        (_csv_row("B4", phone1=HUGE).encode(), "phone1", "longer than 40"),
        (_csv_row("B5", full_name="Pat\x00Example").encode(), "full_name", "NUL"),
        (_csv_row("B6", full_name="Ren\xe9e").encode("latin-1"), "full_name", "not UTF-8"),
        (_csv_row("B7", full_name='"Pat"x'), None, "',' expected after '\"'"),
    ]  # fmt: skip
    path = tmp_path / "p.csv"
    with path.open("wb") as f:
        f.write(_HEADER.encode() + b"\n")
        for i in range(20):
            f.write(_csv_row(f"G{i}").encode() + b"\n")
        for line, _, _ in bad:
            f.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
        for i in range(20, 40):
            f.write(_csv_row(f"G{i}").encode() + b"\n")
    report = import_file(path, engine=engine, rejects_path=tmp_path / "r.jsonl", chunk_size=7)

    got = rejects(report)
    assert [(r["line"], r["field"]) for r in got] == [
        (22 + i, f) for i, (_, f, _) in enumerate(bad)
    ]
    for entry, (_, _, reason) in zip(got, bad, strict=True):
        assert reason in entry["reason"], entry["reason"]
    assert got[5]["record"]["full_name"] == "Ren\\xe9e"  # the bad byte, shown escaped
    assert report.rejected == len(bad) and report.inserted == 40


def test_a_csv_field_over_the_size_limit_rejects_its_row_only(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CSV_FIELD_LIMIT", 1000)
    path = tmp_path / "p.csv"
    path.write_text(
        "\n".join([_HEADER, _csv_row("G1"), _csv_row("B1", city="x" * 1001), _csv_row("G2")]) + "\n"
    )
    report = import_file(path, engine=engine)
    got = rejects(report)
    assert [(r["line"], r["field"]) for r in got] == [(3, None)]
    assert "longer than 1,000 characters" in got[0]["reason"]
    assert report.inserted == 2


def test_a_nul_byte_near_the_top_of_a_csv_rejects_its_row_not_the_file(
    tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "p.csv"
    rows_ = [_HEADER, _csv_row("G1"), _csv_row("B1", full_name="Pat\x00Example"), _csv_row("G2")]
    path.write_bytes(("\n".join(rows_) + "\n").encode())
    report = import_file(path, engine=engine)
    assert [(r["line"], r["field"]) for r in rejects(report)] == [(3, "full_name")]
    assert report.inserted == 2


# --- NUL characters and bound parameters on PostgreSQL ------------------------------------------


@pytest.fixture
def pg_engine(postgres_url: str) -> Engine:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield engine  # type: ignore[misc]
    engine.dispose()


@pytest.mark.postgres
def test_a_nul_character_is_a_reject_on_postgresql(tmp_path: Path, pg_engine: Engine) -> None:
    records = [
        *_good(10),
        account("N1", "NP1", full_name="Pat\u0000Example"),
        account("N2", "NP2", address_line1="1 Main\u0000St"),
        *[account(f"H{i}", f"HP{i}") for i in range(10)],
    ]
    report = import_file(write(tmp_path / "p.jsonl", records), engine=pg_engine, chunk_size=4)
    assert [(r["line"], r["field"]) for r in rejects(report)] == [
        (11, "full_name"),
        (12, "address_line1"),
    ]
    assert report.inserted == 20


def _forced_errors(engine: Engine) -> list[str]:
    """The text of an IntegrityError and a DataError that bound personal data."""
    from sqlalchemy import insert
    from sqlalchemy.exc import DBAPIError

    messages = []
    statements: list[Any] = [
        # import_run.file_sha256 is NOT NULL; a name in file_name rides along.
        insert(ImportRun).values(
            file_name="Pat Secretname", file_sha256=None, started_at=dt.datetime(2026, 1, 1)
        )
    ]
    if engine.dialect.name == "postgresql":  # SQLite casts anything without complaint
        statements.append(
            text("SELECT CAST(:v AS INTEGER)").bindparams(v="Pat Secretname 12125550123")
        )
    with engine.connect() as conn:
        for stmt in statements:
            with pytest.raises(DBAPIError) as caught:
                conn.execute(stmt)
            conn.rollback()
            messages.append(str(caught.value))
    return messages


def test_errors_hide_bound_parameters_on_sqlite(engine: Engine) -> None:
    messages = _forced_errors(engine)
    assert len(messages) == 1 and "parameters hidden" in messages[0]
    for message in messages:
        assert "Secretname" not in message and "12125550123" not in message


@pytest.mark.postgres
def test_errors_hide_bound_parameters_on_postgresql(pg_engine: Engine) -> None:
    messages = _forced_errors(pg_engine)
    assert len(messages) == 2 and all("parameters hidden" in m for m in messages)
    for message in messages:
        assert "Secretname" not in message and "12125550123" not in message


# --- file-level problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "binary"),
        ("photo.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "binary"),
        ("zipped.jsonl.gz", gzip.compress(b"\x00\x01\x02" * 100, mtime=0), "binary"),
        ("header.csv", b"record,full_n\xe9me\naccount,Pat\n", "header is not UTF-8"),
    ],
)
def test_a_binary_file_is_refused_before_anything_is_written(
    tmp_path: Path, engine: Engine, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_file(path, engine=engine)
    assert rows(engine, ImportRun) == []


def test_a_failure_mid_file_says_what_was_committed_and_that_reimport_finishes(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    path = write(tmp_path / "p.jsonl", _good(10))
    real_apply = importer._Chunks.apply
    calls = {"n": 0}

    def failing_apply(self: Any, items: list[Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("INSERT ...", {"full_name": "Pat Secretname"}, Exception())
        return real_apply(self, items)

    monkeypatch.setattr(importer._Chunks, "apply", failing_apply)
    with pytest.raises(ImportInterruptedError) as caught:
        import_file(path, engine=engine, chunk_size=4)
    message = str(caught.value)
    assert "p.jsonl" in message and "line 4" in message and "import the file again" in message
    assert "Secretname" not in message
    assert len(rows(engine, Account)) == 4
    (run,) = rows(engine, ImportRun)
    assert run.rows_read == 4

    monkeypatch.setattr(importer._Chunks, "apply", real_apply)
    again = import_file(path, engine=engine, chunk_size=4)
    assert (again.unchanged, again.inserted) == (4, 6)


def test_a_row_the_database_refuses_is_a_reject_and_the_rest_of_its_chunk_lands(
    tmp_path: Path, engine: Engine
) -> None:
    # A rule the validation does not know, standing for any constraint a database may add.
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON person WHEN NEW.full_name = 'Refused' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    records = [*_good(5), account("R1", "RP1", full_name="Refused"), payment("PM1", "G1"),
               *[account(f"H{i}", f"HP{i}") for i in range(5)]]  # fmt: skip
    report = import_file(write(tmp_path / "p.jsonl", records), engine=engine, chunk_size=100)
    got = rejects(report)
    assert [(r["line"], r["field"]) for r in got] == [(6, None)]
    assert got[0]["reason"] == "refused by the database (IntegrityError)"
    assert (report.inserted, report.rejected) == (11, 1)
    assert len(rows(engine, Account)) == 10


def test_every_engine_the_project_creates_hides_bound_parameters(tmp_path: Path) -> None:
    """The outbox stores phone numbers and emails and the media write the application tables:
    their engines hide bound values in errors too, as outreach.db's do."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from contact_channels import outbox
    from outreach.media import documents as media

    for engine in (outbox.get_engine(f"sqlite:///{tmp_path / 'outbox.db'}"),
                   media.app_engine(f"sqlite:///{tmp_path / 'app.db'}")):  # fmt: skip
        with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
            conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "+12125550123"})
        assert "12125550123" not in str(caught.value)
        assert "parameters hidden" in str(caught.value)
    # And no module creates one without it.
    import re

    from outreach.settings import PROJECT_ROOT

    for folder in ("outreach", "contact_channels"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            for call in re.findall(r"create_engine\(([^)]*)\)", path.read_text()):
                assert "hide_parameters=True" in call, (path.name, call)
