"""``service.ingest``: a file it cannot read is quarantined with a reason file, the others are
imported, and the day's summary says so; nothing stops the day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from outreach.entry.cli import main
from outreach.services import daily as service
from tests.test_import import account, payment, write

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def inbox(app_data: Path) -> Path:
    service.setup_database()
    folder = app_data / "inbox"
    folder.mkdir()
    return folder


def test_an_unreadable_portfolio_file_is_quarantined_and_the_others_import(
    inbox: Path, tmp_path: Path
) -> None:
    (inbox / "a_broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00junk")
    (inbox / "b_photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(inbox / "c_good.jsonl", [account(), payment()])
    (inbox / "d_notes.txt").write_text("not a portfolio")

    totals = service.ingest()

    assert totals["files"] == 1 and totals["rows_read"] == 2
    assert totals["quarantined"] == 3
    assert totals["quarantined_files"] == ["a_broken.jsonl.gz", "b_photo.csv", "d_notes.txt"]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []
    assert (inbox / "done" / "c_good.jsonl").exists()
    quarantine = inbox / "quarantine"
    assert (quarantine / "a_broken.jsonl.gz").read_bytes() == b"\x1f\x8b\x08\x00junk"
    reason = (quarantine / "a_broken.jsonl.gz.reason.txt").read_text()
    assert "a_broken.jsonl.gz: cannot read" in reason and "quarantined at" in reason
    assert "binary" in (quarantine / "b_photo.csv.reason.txt").read_text()
    assert "unknown format" in (quarantine / "d_notes.txt.reason.txt").read_text()

    # The next day the quarantine is left alone, and a file of the same name does not clobber it.
    (inbox / "a_broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00other junk")
    again = service.ingest()
    assert again["quarantined_files"] == ["a_broken.jsonl.gz"]
    kept = sorted(p.name for p in quarantine.iterdir() if not p.name.endswith(".reason.txt"))
    assert len(kept) == 4 and "a_broken.jsonl.gz" in kept


def test_unreadable_returned_mail_and_agency_returns_are_quarantined_too(inbox: Path) -> None:
    returned = inbox / "returned_mail"
    returned.mkdir()
    (returned / "returns.csv").write_bytes(b"key,returned_on,reason\n\xff\xfe bad\n")
    (returned / "header.csv").write_text("nothing,useful\n")
    agency = inbox / "agency_returns" / "acme"
    agency.mkdir(parents=True)
    (agency / "returns.csv").write_bytes(b'return_ref,account_ref,occurred_on,kind\nR1,"A1\n')

    totals = service.ingest()

    assert totals["quarantined"] == 3
    assert sorted(totals["quarantined_files"]) == [
        "agency_returns/acme/returns.csv",
        "returned_mail/header.csv",
        "returned_mail/returns.csv",
    ]
    assert (returned / "quarantine" / "returns.csv.reason.txt").exists()
    assert (agency / "quarantine" / "returns.csv.reason.txt").exists()


def test_the_days_summary_lists_the_files_in_quarantine(
    inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inbox / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00junk")
    service.ingest()
    summary = service.summary(DAY)
    assert summary["quarantined_files"] == [
        {"file": "broken.jsonl.gz", "reason": summary["quarantined_files"][0]["reason"]}
    ]
    assert "cannot read" in summary["quarantined_files"][0]["reason"]
    dry = service.summary(DAY, service.RunControls(dry_run=True))
    assert [q["file"] for q in dry["quarantined_files"]] == ["broken.jsonl.gz"]
    assert main(["summary", "--as-of", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "Files in quarantine" in out and "broken.jsonl.gz" in out
