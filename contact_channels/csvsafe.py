"""CSV cells that a spreadsheet cannot run: the one writer for every CSV we hand to a third
party (the mail house's print manifest, the agencies' placement and recall files, the law
firms' case-package CSVs), and the inverse for what those parties send back to us.

The rule (OWASP's CSV injection guidance, ASVS 5.0 requirement 1.2.10, applied to every cell,
not only the ones we think of as free text): a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab, a carriage return or a NUL, or with one of those after leading spaces, or with
a full-width ``＝ ＋ － ＠`` (which some spreadsheets fold to ASCII), is written with a single
quote in front. A spreadsheet shows it as text; a program reading the CSV sees the quote.

One exception, so that machine-read columns stay machine-readable: a cell that is a plain
number, an optional sign then ASCII digits with at most one decimal point (an E.164 phone
``+12125550123``, a reversal ``-50.00``), is left as it is. A spreadsheet can only read such a
cell as that number: there is no function, reference, operator or DDE link in it to run. A
phone written ``+1-212-555-0123`` is not a plain number and is quoted.

A cell that already starts with a quote is quoted again when dropping that quote would leave a
cell the rule quotes (``'=1`` is written ``''=1``), so ``restore`` gives back exactly what was
written, whether the other side kept our quote or dropped it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

# What a spreadsheet may take as the start of a formula (OWASP: = + - @ tab CR; ASVS adds NUL;
# the full-width forms cost nothing to catch: no name or address starts with one).
FORMULA_PREFIXES = frozenset("=+-@\t\r\x00＝＋－＠")
QUOTE = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _is_formula_like(text: str) -> bool:
    # A cell's own leading quotes do not hide what follows them (``'=1`` is written ``''=1``).
    text = text.lstrip(QUOTE)
    if not text:
        return False
    if _PLAIN_NUMBER.fullmatch(text):
        return False
    # Leading spaces: some spreadsheets trim a cell before deciding what it is.
    stripped = text.lstrip(" ")
    return bool(stripped) and stripped[0] in FORMULA_PREFIXES


def neutralise(value: Any) -> str:
    """The cell as written for a third party: ``value`` as text (None as ''), with a leading
    quote when a spreadsheet could take it for a formula."""
    text = "" if value is None else str(value)
    return QUOTE + text if _is_formula_like(text) else text


def restore(cell: str) -> str:
    """A cell of a file we wrote, as it was before ``neutralise``; a cell whose quote the other
    side dropped is returned as it is."""
    if cell[:1] == QUOTE and _is_formula_like(cell[1:]):
        return cell[1:]
    return cell


class SafeWriter:
    """A ``csv.writer`` whose every cell goes through ``neutralise``."""

    def __init__(self, handle: Any, **fmtparams: Any) -> None:
        self._writer = csv.writer(handle, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(handle: Any, **fmtparams: Any) -> SafeWriter:
    """The writer for any CSV that leaves the project (same arguments as ``csv.writer``)."""
    return SafeWriter(handle, **fmtparams)


__all__ = ["FORMULA_PREFIXES", "SafeWriter", "neutralise", "restore", "safe_writer"]
