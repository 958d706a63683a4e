"""``outreach import``: its exit codes, and one line naming the file and the reason for a file
it cannot read, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from outreach.entry.cli import main
from outreach.portfolio import importer
from tests.test_import import account, payment, write


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("broken.jsonl.gz", b"\x1f\x8b\x08\x00junk", "cannot read"),
        ("missing.jsonl", None, "cannot open: No such file or directory"),
        ("photo.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file"),
        ("portfolio.xlsx", b"PK\x03\x04", "unknown format"),
        ("no_record.csv", b"account_ref,balance\nA1,10\n", "no 'record' column"),
        ("dupes.csv", b"record,balance,balance\naccount,1,2\n", "duplicate CSV columns"),
    ],
)
def test_a_file_it_cannot_read_exits_4_with_one_line(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
    content: bytes | None, reason: str,
) -> None:  # fmt: skip
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["import", str(path)]) == 4
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"outreach import: {name}: ")
    assert reason in lines[0]


def test_rejects_exit_3_unless_allowed_and_a_clean_file_exits_0(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = write(tmp_path / "clean.jsonl", [account()])
    assert main(["import", str(clean)]) == 0
    bad = write(tmp_path / "bad.jsonl", [payment(account_ref="NOPE"), "[1]"])
    assert main(["import", str(bad)]) == 3
    assert "2 rejected" in capsys.readouterr().out
    assert main(["import", str(bad), "--allow-rejects"]) == 0


def test_an_import_stopped_part_way_exits_5_with_one_line(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from sqlalchemy.exc import OperationalError

    def failing_apply(self: Any, items: list[Any]) -> Any:
        raise OperationalError("INSERT ...", {"full_name": "Pat Secretname"}, Exception("down"))

    monkeypatch.setattr(importer._Chunks, "apply", failing_apply)
    path = write(tmp_path / "p.jsonl", [account()])
    assert main(["import", str(path)]) == 5
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "p.jsonl: the import stopped after line 0" in lines[0]
    assert "import the file again" in lines[0] and "Secretname" not in lines[0]


def test_the_rejects_file_is_the_only_place_a_rejected_value_goes(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "p.jsonl", [account(full_name="Pat\u0000Secretname")])
    assert main(["import", str(path)]) == 3
    out, err = capsys.readouterr()
    assert "Secretname" not in out + err
    (rejects,) = (app_data / "rejects").iterdir()
    assert "Secretname" in json.loads(rejects.read_text())["record"]["full_name"]


@pytest.mark.parametrize(
    "command, name, content",
    [
        (["letters", "returned"], "returned.csv", b"key,account_ref,returned_on\n\xff\xfe,x,y\n"),
        (["letters", "returned"], "missing.csv", None),
        (["letters", "returned"], "quote.csv", b'key,account_ref\n"open,quote\n'),
        (["agencies", "returns", "acme"], "returns.csv", b"account_ref,kind\n\xff\xfe,x\n"),
        (["agencies", "returns", "acme"], "missing.csv", None),
    ],
)
def test_returned_mail_and_agency_returns_files_it_cannot_read_exit_4_with_one_line(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str],
    name: str, content: bytes | None,
) -> None:  # fmt: skip
    """The other files a person hands the command line get the import's treatment: one line
    naming the file and the reason, never a traceback, exit 4, nothing written."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main([*command, str(path)]) == 4
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"outreach {' '.join(command[:2])}: {name}: ")
    assert "Traceback" not in err


def test_a_data_row_read_as_the_header_is_never_echoed(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file whose first line is data (no header) repeats a phone number in its cells: the
    file-level error names the columns' positions, never their text (it goes to task logs)."""
    path = tmp_path / "nohdr.csv"
    path.write_text("account,record,+15025550162,+15025550162,Pat Doe\n", encoding="utf-8")
    assert main(["import", str(path)]) == 4
    _out, err = capsys.readouterr()
    assert "duplicate CSV columns" in err and "positions 3 and 4" in err
    assert "5025550162" not in err and "Pat" not in err
