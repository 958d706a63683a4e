"""One row of a portfolio file: the row as read, the checks of its fields, its outcome.

The checks raise Reject (the field, the reason), which the import writes to its rejects file;
the agency returns import (outreach.media.agency.placement) reads its rows with them too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from outreach.kernel import zones

_MONEY = re.compile(r"(\d{1,12})(\.\d{1,2})?")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})
_CENT = Decimal("0.01")

INSERTED, UPDATED, UNCHANGED, SUPERSEDED, REJECTED = (
    "inserted", "updated", "unchanged", "superseded", "rejected",
)  # fmt: skip
STATUSES = (INSERTED, UPDATED, UNCHANGED, SUPERSEDED, REJECTED)


@dataclass(slots=True)
class Row:
    line: int  # physical line where the record starts (CSV header = line 1)
    record: str
    data: Mapping[str, Any]  # the parsed fields; dropped once the typed item is built
    raw: Any  # JSONL: the line's text; CSV: the row's values (with ``header``)
    header: list[str] | None = None
    error: str | None = None  # set when the line is not a record at all

    def raw_json(self) -> str:
        """The row as the rejects file shows it: the object as written, or the CSV cells."""
        if self.header is not None:
            cells = {h: v for h, v in zip(self.header, self.raw, strict=False) if v != ""}
            if len(self.raw) > len(self.header):
                cells["_extra_values"] = self.raw[len(self.header) :]
            return json.dumps(cells, ensure_ascii=False)
        if self.error is None:
            return cast(str, self.raw)  # parsed as a JSON object: valid JSON, kept verbatim
        return json.dumps(self.raw, ensure_ascii=False)


# --- field validation ---------------------------------------------------------------------------


class Reject(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(value: Any, name: str, *, required: bool = False, max_len: int = 200) -> str | None:
    # Called ~30 times a row: the common case (a non-blank string) takes the first branch.
    if value.__class__ is str:
        given = value.strip()
        if given and len(given) <= max_len and "\x00" not in given and _encodable(given):
            return given
        if given:
            if len(given) > max_len:
                raise Reject(name, f"longer than {max_len} characters")
            # PostgreSQL cannot store NUL and no driver can encode a lone surrogate: the same
            # reject on every engine, before any database sees the row.
            if "\x00" in given:
                raise Reject(name, "contains a NUL character (U+0000)")
            raise Reject(name, "contains a lone surrogate (U+D800-U+DFFF), not valid Unicode")
    elif value is not None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Reject(name, "must be text")
        return text(str(value), name, required=required, max_len=max_len)
    if required:
        raise Reject(name, "required")
    return None


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def required_text(value: Any, name: str, max_len: int = 200) -> str:
    return cast(str, text(value, name, required=True, max_len=max_len))


def choice(
    value: Any, name: str, allowed: Collection[str], default: str | None = None, shown: str = ""
) -> str:
    text = value.strip().lower() if value.__class__ is str else None
    if text in allowed:
        return cast(str, text)
    if blank(value):
        if default is not None:
            return default
        raise Reject(name, "required")
    choices = shown or ", ".join(sorted(allowed))
    raise Reject(name, f"{shown_value(value)} is not one of: {choices}")


def shown_value(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def date(value: Any, name: str, *, required: bool = False) -> dt.date | None:
    if blank(value):
        if required:
            raise Reject(name, "required")
        return None
    try:
        if isinstance(value, str):
            return dt.date.fromisoformat(value.strip())
    except ValueError:
        pass
    raise Reject(name, f"{shown_value(value)} is not an ISO date (YYYY-MM-DD)")


def instant(value: Any, name: str) -> dt.datetime:
    if blank(value):
        raise Reject(name, "required")
    try:
        when = dt.datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise Reject(name, f"{shown_value(value)} is not an ISO 8601 date-time")
    if when.utcoffset() is None:
        raise Reject(name, "needs a UTC offset or Z (e.g. 2026-11-20T14:03:00-05:00)")
    try:
        return when.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first instant Python has
        raise Reject(name, f"{shown_value(value)} is out of range in UTC") from None


def money(value: Any, name: str, *, positive: bool = False) -> Decimal:
    if blank(value):
        raise Reject(name, "required")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Reject(name, "must be a decimal string such as 1234.56")
    text = str(value).strip()
    if _MONEY.fullmatch(text) is None:
        if text.startswith("-"):
            raise Reject(name, "must not be negative")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise Reject(name, f"{shown_value(value)} is not a decimal number") from None
        if not amount.is_finite():
            raise Reject(name, f"{shown_value(value)} is not a decimal number")
        if amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise Reject(name, "more than 2 decimal places")
        raise Reject(name, f"{shown_value(value)} is not a plain decimal number (e.g. 1234.56)")
    amount = Decimal(text).quantize(_CENT)
    if positive and amount == 0:
        raise Reject(name, "must be greater than zero")
    return amount


def flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if blank(value):
        return False  # consent is never assumed
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Reject(name, f"{shown_value(value)} is not true or false")


def email(value: Any, name: str) -> str:
    text = required_text(value, name, max_len=254)
    if _EMAIL.fullmatch(text) is None:
        raise Reject(name, "not an email address")
    return text.lower()


def phone(value: Any, name: str, country: str | None) -> str:
    text = required_text(value, name, max_len=40)
    try:
        return zones.normalize_phone(text, country)
    except ValueError as exc:
        raise Reject(name, f"invalid phone number: {exc}") from None


# --- typed records ------------------------------------------------------------------------------


@dataclass(slots=True, eq=False, kw_only=True)
class Item:
    row: Row
    keys: tuple[Hashable, ...] = ()  # from prescan.scan_keys, as in the pre-scan
    final: bool = True  # False: a later row in the file has the same key and decides its values
    status: str = ""
    changed: bool = False  # something this row provides (person, contact point) was written


@dataclass(slots=True, eq=False)
class Bad:
    """A row rejected while parsing, before any database work."""

    row: Row
    field: str | None
    reason: str
