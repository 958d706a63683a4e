"""The command line of the people and paper channels: config checks and the day's batch jobs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from outreach.entry.cli import main
from outreach.settings import PROJECT_ROOT

DAY = dt.date(2026, 12, 1)


def printed_counts(out: str) -> dict[str, object]:
    """The JSON object a command printed last (log lines may come before it)."""
    start = out.rindex("\n{\n") + 1 if "\n{\n" in out else out.index("{")
    counts: dict[str, object] = json.loads(out[start:])
    return counts


def test_agencies_check_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agencies", "check", str(PROJECT_ROOT / "config" / "agencies.yaml")]) == 0
    assert ": OK, " in capsys.readouterr().out


def test_agencies_check_names_the_yaml_path_of_each_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = (PROJECT_ROOT / "config" / "agencies.yaml").read_text()
    broken = tmp_path / "agencies.yaml"
    broken.write_text(shipped.replace("capacity:", "capacity: -5 #", 1))
    assert main(["agencies", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "agencies[0].capacity" in err and "1 error(s)" in err


def test_the_day_jobs_print_counts_and_a_rerun_changes_nothing(
    app_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = DAY.isoformat()
    outputs = []
    for _ in range(2):
        for args in (["agencies", "recall", "--as-of", day], ["agencies", "files", "--as-of", day],
                     ["letters", "close", "--as-of", day], ["calls", "refresh", "--as-of", day]):
            assert main(args) == 0
            outputs.append(printed_counts(capsys.readouterr().out))
    first_close, second_close = outputs[2], outputs[6]
    assert (first_close["manifest_written"], first_close["document_rows"]) == (1, 1)
    assert (second_close["manifest_written"], second_close["document_rows"]) == (0, 0)
    assert all(isinstance(v, int | dict | str | None) for o in outputs for v in o.values())


def test_returned_mail_with_bad_rows_exits_1_and_names_them(
    app_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    returned = tmp_path / "returned.csv"
    returned.write_text("key,returned_on,reason\nno-such-key,2026-13-01,moved\n")
    assert main(["letters", "returned", str(returned)]) == 1
    counts = printed_counts(capsys.readouterr().out)
    assert counts["rejected"] == 1 and counts["returned"] == 0
