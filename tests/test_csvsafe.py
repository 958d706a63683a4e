"""Formula prefixes in CSV files for third parties: the cell rule, its inverse for what comes
back, and that no module writes a CSV past the one writer that applies it."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest

from contact_channels.csvsafe import neutralise, restore, safe_writer
from outreach.settings import PROJECT_ROOT

# Modules that may call csv.writer / csv.DictWriter themselves, and why.
OWN_INPUT_WRITERS = {
    # Writes a synthetic portfolio for our own importer (tests, demo, bench): not handed to
    # anyone, and a quote added there would change the data the importer reads.
    "outreach/portfolio/generator.py",
}


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://x","y")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1)",
        "\t=1+2",
        "\r=1+2",
        "\x00=1",
        " =1+2",  # a spreadsheet may trim before it looks
        "＝1+2",  # full-width: some spreadsheets fold them to ASCII
        "＋1",
        "－1",
        "＠SUM(1)",
        "+1-212-555-0123",  # a phone with dashes evaluates as arithmetic
        "-1e5",
        "-",
        "+",
        "'=1+2",  # already quoted by the lender: quoted again, so restore gives it back
    ],
)
def test_a_cell_starting_with_a_formula_prefix_gets_a_leading_quote(value: str) -> None:
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize(
    "value",
    ["", "Pat Example", "1 Main St", "+12125550123", "-50.00", "1500.00", "0", "-7", "O'Brien",
     "'quoted", "2026-11-23", "A0000001", "北京市"],
)  # fmt: skip
def test_text_without_a_prefix_and_plain_numbers_are_left_as_they_are(value: str) -> None:
    assert neutralise(value) == value
    assert restore(value) == value


def test_restore_accepts_a_cell_whose_quote_the_other_side_dropped() -> None:
    assert restore("@SUM(1)") == "@SUM(1)"
    assert restore("'@SUM(1)") == "@SUM(1)"
    assert restore("''@SUM(1)") == "'@SUM(1)"


def test_the_safe_writer_neutralises_every_cell_of_every_row_and_keeps_the_rest() -> None:
    out = io.StringIO()
    writer = safe_writer(out, lineterminator="\r\n")
    writer.writerow(["name", "amount", "note"])
    writer.writerows([["=1+2", -5, None], ["Pat", "12.50", "@x"]])
    assert out.getvalue() == "name,amount,note\r\n'=1+2,-5,\r\nPat,12.50,'@x\r\n"
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["name", "amount", "note"], ["'=1+2", "-5", ""], ["Pat", "12.50", "'@x"]]  # fmt: skip


def _csv_writer_calls(path: Path) -> list[int]:
    """Lines where ``path`` calls csv.writer or csv.DictWriter (however csv was imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"writer", "DictWriter"}
    from_csv = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "csv"
        for alias in node.names
        if alias.name in names
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in names) or (
            isinstance(func, ast.Name) and func.id in from_csv
        ):
            if isinstance(func, ast.Attribute) and not (
                isinstance(func.value, ast.Name) and func.value.id == "csv"
            ):
                continue
            lines.append(node.lineno)
    return lines


def test_no_module_writes_a_csv_past_the_safe_writer() -> None:
    found = {}
    for package in ("contact_channels", "outreach", "plugins", "dags"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT).as_posix()
            if rel == "contact_channels/csvsafe.py" or rel in OWN_INPUT_WRITERS:
                continue
            if lines := _csv_writer_calls(path):
                found[rel] = lines
    assert found == {}, f"use contact_channels.csvsafe.safe_writer (or csv_bytes): {found}"


def test_a_long_run_of_quotes_is_handled_without_recursion() -> None:
    cell = "'" * 5000 + "=1+1"
    assert neutralise(cell) == "'" + cell
    assert restore(neutralise(cell)) == cell
    assert neutralise("'" * 5000) == "'" * 5000
