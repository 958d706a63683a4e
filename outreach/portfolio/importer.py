"""Imports a portfolio file (CSV or JSONL, optionally gzipped) into the application database.

Bad rows go to a rejects file with their line, field and reason; good rows are upserted in
set-based batches; importing the same file again changes nothing. Format: docs/import-format.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import gzip
import hashlib
import io
import json
import logging
import operator
import re
import sys
import time
import zlib
from collections import namedtuple
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, cast

import phonenumbers
from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Numeric,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.sql.dml import Insert

from outreach import settings
from outreach.kernel import zones
from outreach.kernel.clock import utcnow
from outreach.storage.models import (
    Account,
    AccountHold,
    ContactEvent,
    ContactPoint,
    ImportRun,
    OptOut,
    Payment,
    Person,
)
from policies.model import RELATIONS, SELF
from policies.timeblocks import TimeBlockError
from policies.timeblocks import normalize as normalize_times

log = logging.getLogger(__name__)

CHUNK_LINES = 5000  # lines per transaction: big enough to amortise queries, small for memory
# The longest CSV field read (the csv module's default is 131,072): no field takes more than
# 500 characters, so a longer one is a row reject, and beyond this bound the row's line is.
CSV_FIELD_LIMIT = 1 << 24
# A file whose first 8 KiB (after gunzip) are more than 5% control bytes is binary (an image, a
# spreadsheet, UTF-16): a NUL or two in a name is a row's problem, not the file's.
_SNIFF_BYTES = 8192
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_IN_BATCH = 5000  # keys per IN (...) list; SQLite allows 32766 parameters, PostgreSQL 65535
SOURCE = "import"

PERSON = cast(Table, Person.__table__)
ACCOUNT = cast(Table, Account.__table__)
CONTACT_POINT = cast(Table, ContactPoint.__table__)
PAYMENT = cast(Table, Payment.__table__)
HOLD = cast(Table, AccountHold.__table__)
EVENT = cast(Table, ContactEvent.__table__)
OPT_OUT = cast(Table, OptOut.__table__)
IMPORT_RUN = cast(Table, ImportRun.__table__)

RECORD_TYPES = ("account", "payment", "hold", "contact_event", "opt_out")
LANGUAGES = {"en": "en", "zh-cn": "zh-CN"}
PRODUCTS = frozenset({"credit_card", "consumer_loan"})
# The reference dates 12 CFR 1006.34(b)(3) allows for the validation notice's itemization.
ITEMIZATION_KINDS = frozenset(
    {"last_statement", "charge_off", "last_payment", "transaction", "judgment"}
)
PHONE_TYPES = frozenset({"mobile", "landline", "work"})
HOLD_KINDS = frozenset(
    {
        "dispute", "bankruptcy", "deceased", "cease_communication", "attorney", "hardship",
        "original_creditor_request", "breathing_space", "mental_health_crisis", "vulnerable",
        "instalment_plan",
    }
)  # fmt: skip
CHANNELS = frozenset({"sms", "email", "call", "letter"})
DIRECTIONS = frozenset({"outbound", "inbound"})
OUTCOMES = frozenset(
    {
        "conversation", "no_answer", "voicemail", "busy", "not_in_service", "wrong_number",
        "sent", "delivered", "bounced", "failed", "returned_mail", "third_party",
    }
)  # fmt: skip
# Active ISO 4217 codes (2025), funds and precious metals left out.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()
)
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_POSTAL_FORMATS = {
    "US": (re.compile(r"\d{5}(-\d{4})?"), "not a US ZIP code (12345 or 12345-6789)"),
    "CN": (re.compile(r"\d{6}"), "not a Chinese postal code (6 digits)"),
}
_MONEY = re.compile(r"(\d{1,12})(\.\d{1,2})?")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})
_CENT = Decimal("0.01")
MAX_PHONES = 3  # CSV columns phone1..phone3 and email1..email3
MAX_EMAILS = 3

INSERTED, UPDATED, UNCHANGED, SUPERSEDED, REJECTED = (
    "inserted", "updated", "unchanged", "superseded", "rejected",
)  # fmt: skip
STATUSES = (INSERTED, UPDATED, UNCHANGED, SUPERSEDED, REJECTED)


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, binary, broken gzip or CSV, bad header);
    raised before anything is written."""


class ImportInterruptedError(Exception):
    """The import stopped part-way (a database error, the file changed under it): the chunks
    before the line named are in the database, the rest are not; importing the file again
    finishes the work. The message names the file, the line and the error's type only."""


@dataclass
class ImportReport:
    """What one import did. ``rows_read`` = inserted + updated + unchanged + superseded + rejected."""

    path: Path
    import_run_id: int
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Earlier rows of a key that appears again later in the file: the last row decides (see doc).
    superseded: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    by_record: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        text = (
            f"{self.path.name}: {self.rows_read} rows read, {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.superseded} superseded, "
            f"{self.rejected} rejected in {self.seconds:.1f}s (import run {self.import_run_id})"
        )
        if self.rejects_path:
            text += f"; rejects in {self.rejects_path}"
        return text


# --- reading ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
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


class _HashingReader(io.RawIOBase):
    """Passes bytes through while hashing them, so the pre-scan yields the file's SHA-256."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


def _file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: unknown format; expected .csv, .jsonl or .json (.gz)")


def _text_stream(path: Path, binary: IO[bytes]) -> io.TextIOWrapper:
    gzipped = path.suffix.lower() == ".gz"
    source: IO[bytes] = cast(IO[bytes], gzip.GzipFile(fileobj=binary)) if gzipped else binary
    # utf-8-sig: spreadsheet exports start with a byte-order mark. surrogateescape: a byte that
    # is not UTF-8 rejects its row (_bad_bytes), not the whole file.
    return io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")


_BAD_BYTE = re.compile("[\udc80-\udcff]")  # how surrogateescape spells an undecodable byte


def _bad_bytes(text: str) -> str | None:
    """Why ``text`` is not UTF-8 (the first bad byte and its column), or None when it is."""
    if text.isascii():
        return None
    found = _BAD_BYTE.search(text)
    if found is None:
        return None
    return (
        f"not UTF-8 text (byte 0x{ord(found.group()) - 0xDC00:02x} at column {found.start() + 1})"
    )


def _shown_bytes(text: str) -> str:
    """Text with its undecodable bytes written as \\xNN, so the rejects file can hold it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _sniff(path: Path) -> None:
    """Refuse a binary file (control bytes in its first bytes, after gunzip) or a broken gzip."""
    try:
        with path.open("rb") as raw:
            source: IO[bytes] = (
                cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if path.suffix.lower() == ".gz" else raw
            )
            head = source.read(_SNIFF_BYTES)
    except OSError as exc:
        if exc.strerror:
            raise ImportFileError(f"{path.name}: cannot open: {exc.strerror}") from None
        raise ImportFileError(f"{path.name}: cannot read: {exc}") from None
    except (EOFError, zlib.error) as exc:
        raise ImportFileError(f"{path.name}: cannot read: {exc}") from None
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls * 20 > len(head):
        raise ImportFileError(
            f"{path.name}: a binary file, not CSV or JSON lines text ({controls} control bytes "
            f"in the first {len(head):,}; UTF-16 text is not read either)"
        )


# Numbers in JSON as Decimal: a balance written as 1200.10 must not become 1200.0999...
_JSON = json.JSONDecoder(parse_float=Decimal)


def _iter_rows(path: Path, fmt: str, text: io.TextIOWrapper) -> Iterator[_Row]:
    line = 0
    try:
        if fmt == "csv":
            yield from _iter_csv(path, text)
        else:
            for line, raw_line in enumerate(text, start=1):
                stripped = raw_line.strip()
                if not stripped:
                    continue
                bad = _bad_bytes(stripped)
                if bad is not None:
                    yield _Row(line, "", {}, _shown_bytes(stripped), error=bad)
                    continue
                try:
                    obj = _JSON.decode(stripped)
                except json.JSONDecodeError as exc:
                    yield _Row(line, "", {}, stripped, error=f"not valid JSON: {exc.msg}")
                    continue
                except RecursionError:
                    yield _Row(line, "", {}, stripped, error="not valid JSON: nested too deeply")
                    continue
                except ValueError:  # an integer over Python's digit limit
                    digits = sys.get_int_max_str_digits()
                    error = f"not valid JSON: a number longer than {digits} digits"
                    yield _Row(line, "", {}, stripped, error=error)
                    continue
                if not isinstance(obj, dict):
                    yield _Row(line, "", {}, stripped, error="not a JSON object")
                    continue
                yield _Row(line, _record_type(obj.get("record")), obj, stripped)
    except UnicodeDecodeError as exc:
        where = f" after line {line}" if line else ""
        raise ImportFileError(f"{path.name}: not UTF-8 text{where} ({exc.reason})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFileError(f"{path.name}: cannot read: {exc}") from None


class _RecordLines:
    """The lines the CSV reader took for the record it is reading, for a record it cannot
    parse (the rejects file shows them)."""

    def __init__(self, text: Iterable[str]) -> None:
        self._text = iter(text)
        self.lines: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._text)
        self.lines.append(line)
        return line

    def take(self, limit: int = 10_000) -> str:
        text, self.lines = "".join(self.lines), []
        return _shown_bytes(text if len(text) <= limit else text[:limit] + "...")


def _iter_csv(path: Path, text: io.TextIOWrapper) -> Iterator[_Row]:
    # The limit is the csv module's, process-wide: set while this file is read, then restored.
    previous_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield from _iter_csv_rows(path, _RecordLines(text))
    finally:
        csv.field_size_limit(previous_limit)


def _iter_csv_rows(path: Path, lines: _RecordLines) -> Iterator[_Row]:
    # strict: a stray quote would otherwise swallow the rest of the file into one field.
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(f"{path.name}: line 1: {exc}") from None
    if header is None:
        return
    lines.take()
    header = [h.strip() for h in header]
    if any(_bad_bytes(h) for h in header):
        raise ImportFileError(f"{path.name}: line 1: the CSV header is not UTF-8 text")
    if "record" not in header:
        raise ImportFileError(f"{path.name}: the CSV header has no 'record' column")
    dupes = [i + 1 for i, h in enumerate(header) if h and header.count(h) > 1]
    if dupes:
        # Positions, not names: a file with no header has a data row here (a phone, a name).
        where = ", ".join(map(str, dupes[:-1])) + f" and {dupes[-1]}"
        raise ImportFileError(
            f"{path.name}: duplicate CSV columns at positions {where} (each column name may "
            "appear once in the header)"
        )
    width = len(header)
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            values = next(reader, None)
        except csv.Error as exc:
            previous_end = reader.line_num
            if "unexpected end of data" in str(exc):  # an open quote runs to the end of file
                raise ImportFileError(f"{path.name}: line {start}: {exc}") from None
            if "field larger than field limit" in str(exc):
                error = f"a field is longer than {CSV_FIELD_LIMIT:,} characters"
            else:
                error = f"not valid CSV: {exc}"
            yield _Row(start, "", {}, lines.take(), None, error)
            continue
        if values is None:
            return
        previous_end = reader.line_num
        lines.lines.clear()
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) > width:
            error = f"{len(values)} values for {width} header columns"
            yield _Row(start, "", {}, [_shown_bytes(v) for v in values], header, error)
            continue
        # Most rows are ASCII: one C-level pass each, the column search only for a bad row.
        if not all(map(str.isascii, values)) and _BAD_BYTE.search("".join(values)):
            bad_column = next(i for i, v in enumerate(values) if _bad_bytes(v))
            name = header[bad_column] or None
            error = cast(str, _bad_bytes(values[bad_column]))
            yield _Row(start, "", {"field": name}, [_shown_bytes(v) for v in values], header, error)
            continue
        data = {h: v for h, v in zip(header, values, strict=False) if v != ""}
        yield _Row(start, _record_type(data.get("record")), data, values, header)


def _record_type(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


# --- duplicates across the file -----------------------------------------------------------------


def _scan_keys(record: str, data: Mapping[str, Any]) -> tuple[Hashable, ...]:
    """Keys "last one wins" applies to (see _LaterLines); both passes derive them here."""
    if record == "account":
        return (
            ("account", _key_text(data.get("account_ref"))),
            ("person", _key_text(data.get("person_ref"))),
        )
    if record == "payment":
        return (("payment", _key_text(data.get("payment_ref"))),)
    if record == "hold":
        return (
            (
                "hold",
                _key_text(data.get("account_ref")),
                _key_text(data.get("kind")).lower(),
                _key_text(data.get("started_on")),
            ),
        )
    if record == "contact_event" and not _blank(data.get("event_ref")):
        return (("event", _key_text(data.get("event_ref"))),)
    return ()


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


class _LaterLines:
    """Which rows are followed, later in the file, by another row with the same key.

    Built in a pre-scan with a Bloom filter (12 bits a key) instead of a set of every key, so a
    file of millions of rows costs megabytes: only keys the filter has (maybe) seen before are
    remembered, with the last line they occur on. A false positive merely records a key's only
    line, which is never "later" than itself, so the answer stays exact.
    """

    _HASHES = 5

    def __init__(self, expected_keys: int) -> None:
        self._bits = max(1 << 16, expected_keys * 12)
        self._filter = bytearray((self._bits + 7) // 8)
        self._last_line: dict[int, int] = {}

    def add(self, key: Hashable, line: int) -> None:
        fingerprint = hash(key) & 0xFFFFFFFFFFFFFFFF
        low, high = fingerprint & 0xFFFFFFFF, (fingerprint >> 32) | 1
        seen = True
        bits, size = self._filter, self._bits
        for i in range(self._HASHES):
            pos = (low + i * high) % size
            mask = 1 << (pos & 7)
            if not bits[pos >> 3] & mask:
                seen = False
                bits[pos >> 3] |= mask
        if seen:
            self._last_line[fingerprint] = line

    def superseded(self, key: Hashable, line: int) -> bool:
        return self._last_line.get(hash(key) & 0xFFFFFFFFFFFFFFFF, 0) > line


@dataclass
class _Scan:
    sha256: str
    later: _LaterLines


_KEY_FIELD = re.compile(
    r'"(record|account_ref|person_ref|payment_ref|kind|started_on|event_ref)"\s*:\s*'
    r'(?:"([^"]*)"|(-?\d+)(?![\d.eE])|null)'
)


def _iter_key_fields(path: Path, text: io.TextIOWrapper) -> Iterator[_Row]:
    """JSON lines with only the fields _scan_keys reads, without a full parse where that is safe.

    A line without a backslash has no escapes, so a quoted key can only be a key and a string
    is its text; other lines (and any that do not look like an object) get a real parse.
    """
    line = 0
    try:
        for line, raw_line in enumerate(text, start=1):
            stripped = raw_line.strip()
            if not stripped:
                continue
            if "\\" in stripped or not (stripped[0] == "{" and stripped[-1] == "}"):
                try:
                    obj = json.loads(stripped)
                except (ValueError, RecursionError):  # the main pass rejects the line
                    continue
                if isinstance(obj, dict):
                    yield _Row(line, _record_type(obj.get("record")), obj, None)
                continue
            data: dict[str, Any] = {}
            for key, string, number in _KEY_FIELD.findall(stripped):
                data[key] = _int_key(number) if number else string  # null reads "", like blank
            yield _Row(line, _record_type(data.get("record")), data, None)
    except UnicodeDecodeError as exc:
        where = f" after line {line}" if line else ""
        raise ImportFileError(f"{path.name}: not UTF-8 text{where} ({exc.reason})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFileError(f"{path.name}: cannot read: {exc}") from None


def _int_key(number: str) -> int | str:
    try:
        return int(number)
    except ValueError:  # over the digit limit: the main pass rejects the line
        return number


def _prescan(path: Path, fmt: str) -> _Scan:
    _sniff(path)
    try:
        size = path.stat().st_size
        binary = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot open: {exc.strerror}") from None
    # ~100 bytes a row at the least; gzip packs about 6 to 1.
    expected = size // 100 * (6 if path.suffix.lower() == ".gz" else 1)
    later = _LaterLines(expected)
    with binary:
        hashing = _HashingReader(binary)
        buffered = io.BufferedReader(hashing, buffer_size=1 << 20)
        text = _text_stream(path, buffered)
        rows = _iter_key_fields(path, text) if fmt == "jsonl" else _iter_rows(path, fmt, text)
        for row in rows:
            if not row.error:
                for key in _scan_keys(row.record, row.data):
                    later.add(key, row.line)
        try:
            while buffered.read(1 << 20):  # hash whatever trails the last record
                pass
        except OSError as exc:
            raise ImportFileError(f"{path.name}: cannot read: {exc}") from None
        text.detach()
    return _Scan(hashing.sha256.hexdigest(), later)


# --- field validation ---------------------------------------------------------------------------


class _Reject(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any, name: str, *, required: bool = False, max_len: int = 200) -> str | None:
    # Called ~30 times a row: the common case (a non-blank string) takes the first branch.
    if value.__class__ is str:
        text = value.strip()
        if text and len(text) <= max_len and "\x00" not in text and _encodable(text):
            return text
        if text:
            if len(text) > max_len:
                raise _Reject(name, f"longer than {max_len} characters")
            # PostgreSQL cannot store NUL and no driver can encode a lone surrogate: the same
            # reject on every engine, before any database sees the row.
            if "\x00" in text:
                raise _Reject(name, "contains a NUL character (U+0000)")
            raise _Reject(name, "contains a lone surrogate (U+D800-U+DFFF), not valid Unicode")
    elif value is not None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Reject(name, "must be text")
        return _text(str(value), name, required=required, max_len=max_len)
    if required:
        raise _Reject(name, "required")
    return None


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _required_text(value: Any, name: str, max_len: int = 200) -> str:
    return cast(str, _text(value, name, required=True, max_len=max_len))


def _choice(
    value: Any, name: str, allowed: Collection[str], default: str | None = None, shown: str = ""
) -> str:
    text = value.strip().lower() if value.__class__ is str else None
    if text in allowed:
        return cast(str, text)
    if _blank(value):
        if default is not None:
            return default
        raise _Reject(name, "required")
    choices = shown or ", ".join(sorted(allowed))
    raise _Reject(name, f"{_shown(value)} is not one of: {choices}")


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _date(value: Any, name: str, *, required: bool = False) -> dt.date | None:
    if _blank(value):
        if required:
            raise _Reject(name, "required")
        return None
    try:
        if isinstance(value, str):
            return dt.date.fromisoformat(value.strip())
    except ValueError:
        pass
    raise _Reject(name, f"{_shown(value)} is not an ISO date (YYYY-MM-DD)")


def _instant(value: Any, name: str) -> dt.datetime:
    if _blank(value):
        raise _Reject(name, "required")
    try:
        when = dt.datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise _Reject(name, f"{_shown(value)} is not an ISO 8601 date-time")
    if when.utcoffset() is None:
        raise _Reject(name, "needs a UTC offset or Z (e.g. 2026-11-20T14:03:00-05:00)")
    try:
        return when.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first instant Python has
        raise _Reject(name, f"{_shown(value)} is out of range in UTC") from None


def _money(value: Any, name: str, *, positive: bool = False) -> Decimal:
    if _blank(value):
        raise _Reject(name, "required")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise _Reject(name, "must be a decimal string such as 1234.56")
    text = str(value).strip()
    if _MONEY.fullmatch(text) is None:
        if text.startswith("-"):
            raise _Reject(name, "must not be negative")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise _Reject(name, f"{_shown(value)} is not a decimal number") from None
        if not amount.is_finite():
            raise _Reject(name, f"{_shown(value)} is not a decimal number")
        if amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise _Reject(name, "more than 2 decimal places")
        raise _Reject(name, f"{_shown(value)} is not a plain decimal number (e.g. 1234.56)")
    amount = Decimal(text).quantize(_CENT)
    if positive and amount == 0:
        raise _Reject(name, "must be greater than zero")
    return amount


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if _blank(value):
        return False  # consent is never assumed
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Reject(name, f"{_shown(value)} is not true or false")


def _email(value: Any, name: str) -> str:
    text = _required_text(value, name, max_len=254)
    if _EMAIL.fullmatch(text) is None:
        raise _Reject(name, "not an email address")
    return text.lower()


def _phone(value: Any, name: str, country: str | None) -> str:
    text = _required_text(value, name, max_len=40)
    try:
        return zones.normalize_phone(text, country)
    except ValueError as exc:
        raise _Reject(name, f"invalid phone number: {exc}") from None


# --- typed records ------------------------------------------------------------------------------


@dataclass(slots=True, eq=False, kw_only=True)
class _Item:
    row: _Row
    keys: tuple[Hashable, ...] = ()  # from _scan_keys, as in the pre-scan
    final: bool = True  # False: a later row in the file has the same key and decides its values
    status: str = ""
    changed: bool = False  # something this row provides (person, contact point) was written


@dataclass(slots=True, eq=False)
class _Bad:
    """A row rejected while parsing, before any database work."""

    row: _Row
    field: str | None
    reason: str


@dataclass(slots=True, eq=False, kw_only=True)
class _AccountIn(_Item):
    account_ref: str
    person_ref: str
    person: dict[str, Any]
    account: dict[str, Any]
    contacts: list[dict[str, Any]]
    person_final: bool = True


@dataclass(slots=True, eq=False, kw_only=True)
class _PaymentIn(_Item):
    payment_ref: str
    account_ref: str
    paid_on: dt.date
    amount: Decimal


@dataclass(slots=True, eq=False, kw_only=True)
class _HoldIn(_Item):
    account_ref: str
    kind: str
    started_on: dt.date
    ended_on: dt.date | None


@dataclass(slots=True, eq=False, kw_only=True)
class _EventIn(_Item):
    account_ref: str
    event_ref: str | None
    occurred_at: dt.datetime
    channel: str
    destination: str | None
    direction: str
    outcome: str
    # Normalised destination and the ref, when the row alone decides them (an E.164 number, an
    # email); a national-format number waits for its account's country.
    dest: str | None = None
    ref: str | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class _OptOutIn(_Item):
    person_ref: str | None
    account_ref: str | None
    channel: str
    destination: str
    recorded_at: dt.datetime


def _parse_account(row: _Row, fmt: str) -> _AccountIn:
    d = row.data
    account_ref = _required_text(d.get("account_ref"), "account_ref", 64)
    person_ref = _required_text(d.get("person_ref"), "person_ref", 64)
    full_name = _required_text(d.get("full_name"), "full_name", 200)
    language = LANGUAGES[_choice(d.get("language"), "language", LANGUAGES, shown="en, zh-CN")]
    product = _choice(d.get("product"), "product", PRODUCTS)
    currency = _required_text(d.get("currency"), "currency", 3).upper()
    if currency not in CURRENCIES:
        raise _Reject("currency", f"{_shown(d.get('currency'))} is not an ISO 4217 currency code")
    balance = _money(d.get("balance"), "balance")
    past_due = _money(d.get("amount_past_due"), "amount_past_due")
    if past_due > balance:
        raise _Reject("amount_past_due", "greater than balance")
    due_date = _date(d.get("due_date"), "due_date")
    if past_due > 0 and due_date is None:
        raise _Reject("due_date", "required when amount_past_due is above zero")
    balance_as_of = _date(d.get("balance_as_of"), "balance_as_of", required=True)

    country = _required_text(d.get("country"), "country", 2).upper()
    if country not in COUNTRIES:
        raise _Reject("country", f"{_shown(d.get('country'))} is not an ISO 3166 country code")
    region = _region(d.get("region"), country)
    city = _required_text(d.get("city"), "city", 100)
    address_line1 = _required_text(d.get("address_line1"), "address_line1", 200)
    postal_code = _postal_code(d.get("postal_code"), country)
    segment = _text(d.get("segment"), "segment", max_len=32)
    charge_off_date = _date(d.get("charge_off_date"), "charge_off_date")
    limitation_date = _date(d.get("limitation_date"), "limitation_date")
    validation_notice_sent_on = _date(
        d.get("validation_notice_sent_on"), "validation_notice_sent_on"
    )
    initial_communication_on = _date(d.get("initial_communication_on"), "initial_communication_on")
    final_notice_sent_on = _date(d.get("final_notice_sent_on"), "final_notice_sent_on")
    scra_checked_on = _date(d.get("scra_checked_on"), "scra_checked_on")
    scra_active_duty = _flag(d.get("scra_active_duty"), "scra_active_duty")
    inconvenient_times = _inconvenient_times(d.get("inconvenient_times"))
    itemization = _itemization(d, cast(dt.date, balance_as_of), charge_off_date)  # required

    address_zones = " ".join(zones.address_zones(country, region, postal_code)) or None
    person = {
        "person_ref": person_ref,
        "full_name": full_name,
        "language": language,
        "address_line1": address_line1,
        "city": city,
        "region": region,
        "postal_code": postal_code,
        "country": country,
        "time_zones": address_zones,
        "inconvenient_times": inconvenient_times,
    }
    account = {
        "account_ref": account_ref,
        "product": product,
        "currency": currency,
        "balance": balance,
        "amount_past_due": past_due,
        "due_date": due_date,
        "balance_as_of": balance_as_of,
        "jurisdiction_country": country,
        "jurisdiction_region": region,
        "segment": segment,
        "charge_off_date": charge_off_date,
        "limitation_date": limitation_date,
        "validation_notice_sent_on": validation_notice_sent_on,
        "initial_communication_on": initial_communication_on,
        "final_notice_sent_on": final_notice_sent_on,
        "scra_checked_on": scra_checked_on,
        "scra_active_duty": scra_active_duty,
        **itemization,
    }
    contacts: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for cp in _phones(d, fmt, country) + _emails(d, fmt):
        # A number listed twice keeps its first (higher-priority) place.
        if (cp["kind"], cp["value"]) not in seen:
            seen.add((cp["kind"], cp["value"]))
            contacts.append(cp)
    postal = ", ".join(
        p
        for p in (address_line1, city, " ".join(filter(None, (region, postal_code))), country)
        if p
    )
    if len(postal) > 300:
        raise _Reject("address_line1", "the address is longer than 300 characters in all")
    contacts.append(_contact("postal", postal, None, address_zones, priority=1))
    return _AccountIn(
        row=row,
        account_ref=account_ref,
        person_ref=person_ref,
        person=person,
        account=account,
        contacts=contacts,
    )


_ITEMIZATION_FIELDS = ("itemization_date", "itemization_kind", "itemization_amount")
_SINCE_ITEMIZATION_FIELDS = ("interest_since_itemization", "fees_since_itemization")


def _itemization(
    d: Mapping[str, Any], balance_as_of: dt.date, charge_off_date: dt.date | None
) -> dict[str, Any]:
    """The Regulation F itemization columns (12 CFR 1006.34(b)(3), (c)(2)(vi)-(viii)): the
    reference date, its kind and the amount owed that day come together or not at all; the
    interest and fees charged since are optional (empty: none charged) and need the date."""
    given = [name for name in _ITEMIZATION_FIELDS + _SINCE_ITEMIZATION_FIELDS
             if not _blank(d.get(name))]  # fmt: skip
    if not given:
        return dict.fromkeys(_ITEMIZATION_FIELDS + _SINCE_ITEMIZATION_FIELDS)
    for name in _ITEMIZATION_FIELDS:
        if name not in given:
            raise _Reject(name, f"required with {given[0]}")
    when = cast(dt.date, _date(d.get("itemization_date"), "itemization_date"))
    if when > balance_as_of:
        raise _Reject("itemization_date", "after balance_as_of (the reference date is past)")
    kind = _choice(d.get("itemization_kind"), "itemization_kind", ITEMIZATION_KINDS)
    if kind == "charge_off" and charge_off_date is not None and when != charge_off_date:
        raise _Reject("itemization_date", "differs from charge_off_date for kind charge_off")
    values: dict[str, Any] = {
        "itemization_date": when,
        "itemization_kind": kind,
        "itemization_amount": _money(d.get("itemization_amount"), "itemization_amount"),
    }
    for name in _SINCE_ITEMIZATION_FIELDS:
        values[name] = None if _blank(d.get(name)) else _money(d.get(name), name)
    return values


def _inconvenient_times(value: Any) -> str | None:
    """The consumer's inconvenient times in canonical text (policies.timeblocks), or None."""
    text = _text(value, "inconvenient_times", max_len=500)
    try:
        canonical = normalize_times(text)
    except TimeBlockError as exc:
        raise _Reject("inconvenient_times", str(exc)) from None
    if canonical is not None and len(canonical) > 500:
        raise _Reject("inconvenient_times", "longer than 500 characters once written out")
    return canonical


def _region(value: Any, country: str) -> str | None:
    # A US account may come without its state: its candidate zones are then every clock of
    # the states (outreach.kernel.zones.US_NO_STATE_ZONES). China still needs its province.
    region = _text(value, "region", required=country == "CN", max_len=16)
    if region is None:
        return None
    code = region.upper().removeprefix(f"{country}-")
    if country == "US" and code not in zones.US_STATE_ZONES:
        raise _Reject("region", f"{_shown(value)} is not a US state code")
    if country == "CN" and code not in zones.CN_PROVINCES:
        raise _Reject("region", f"{_shown(value)} is not an ISO 3166-2:CN province code")
    return code if country in ("US", "CN") else region


def _postal_code(value: Any, country: str) -> str | None:
    check = _POSTAL_FORMATS.get(country)
    code = _text(value, "postal_code", required=check is not None, max_len=20)
    if code is not None and check is not None and check[0].fullmatch(code) is None:
        raise _Reject("postal_code", check[1])
    return code


def _contact(
    kind: str,
    value: str,
    phone_type: str | None,
    time_zones: str | None,
    *,
    priority: int,
    sms_consent: bool = False,
    call_consent: bool = False,
    workplace: bool = False,
    email_consent: bool = False,
    used_by_consumer: bool = False,
    no_calls_at_work: bool = False,
    relation: str = SELF,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "value": value,
        "phone_type": phone_type,
        "time_zones": time_zones,
        "sms_consent": sms_consent,
        "call_consent": call_consent,
        "is_workplace": workplace,
        "email_consent": email_consent,
        "used_by_consumer": used_by_consumer,
        "no_calls_at_work": no_calls_at_work,
        "relation": relation,
        "priority": priority,
        "valid": True,  # only on insert: an update never revives a number marked invalid
    }


def _phones(d: Mapping[str, Any], fmt: str, country: str) -> list[dict[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    if fmt == "csv":
        for i in range(1, MAX_PHONES + 1):
            p = f"phone{i}"
            if not _blank(d.get(p)):
                entries.append({k: d.get(_csv_field(p, k)) for k in _PHONE_KEYS})
    else:
        for i, item in enumerate(_list(d.get("phones"), "phones")):
            if not isinstance(item, dict):
                raise _Reject(f"phones[{i}]", "must be an object with number, type and consents")
            entries.append(item)
    out = []
    for i, item in enumerate(entries):
        try:
            number = _phone(item.get("number"), "number", country)
            phone_type = _choice(item.get("type"), "type", PHONE_TYPES)
            flags = {
                "sms_consent": _flag(item.get("sms_consent"), "sms_consent"),
                "call_consent": _flag(item.get("call_consent"), "call_consent"),
                "workplace": _flag(item.get("workplace"), "workplace"),
                "no_calls_at_work": _flag(item.get("no_calls_at_work"), "no_calls_at_work"),
                "used_by_consumer": _flag(item.get("used_by_consumer"), "used_by_consumer"),
            }
            relation = _choice(item.get("relation"), "relation", RELATIONS, default=SELF)
        except _Reject as rej:  # name the field as the file does: phone2_type, phones[1].type
            key = cast(str, rej.field)
            name = _csv_field(f"phone{i + 1}", key) if fmt == "csv" else f"phones[{i}].{key}"
            raise _Reject(name, rej.reason) from None
        tz = " ".join(zones.phone_zones(number)) or None
        out.append(
            _contact("phone", number, phone_type, tz, priority=i + 1, relation=relation, **flags)
        )
    return out


_PHONE_KEYS = (
    "number", "type", "sms_consent", "call_consent", "workplace", "no_calls_at_work",
    "used_by_consumer", "relation",
)  # fmt: skip
_EMAIL_KEYS = ("address", "workplace", "consent", "used_by_consumer", "relation")


def _csv_field(prefix: str, key: str) -> str:
    return prefix if key in ("number", "address") else f"{prefix}_{key}"


def _emails(d: Mapping[str, Any], fmt: str) -> list[dict[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    if fmt == "csv":
        for i in range(1, MAX_EMAILS + 1):
            e = f"email{i}"
            if not _blank(d.get(e)):
                entries.append({k: d.get(_csv_field(e, k)) for k in _EMAIL_KEYS})
    else:
        for i, item in enumerate(_list(d.get("emails"), "emails")):
            if not isinstance(item, dict):
                raise _Reject(f"emails[{i}]", "must be an object with address and workplace")
            entries.append(item)
    out = []
    for i, item in enumerate(entries):
        try:
            value = _email(item.get("address"), "address")
            workplace = _flag(item.get("workplace"), "workplace")
            consent = _flag(item.get("consent"), "consent")
            used = _flag(item.get("used_by_consumer"), "used_by_consumer")
            relation = _choice(item.get("relation"), "relation", RELATIONS, default=SELF)
        except _Reject as rej:
            key = cast(str, rej.field)
            name = _csv_field(f"email{i + 1}", key) if fmt == "csv" else f"emails[{i}].{key}"
            raise _Reject(name, rej.reason) from None
        flags = {"workplace": workplace, "email_consent": consent, "used_by_consumer": used}
        out.append(_contact("email", value, None, None, priority=i + 1, relation=relation, **flags))
    return out


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject(name, "must be a list")
    return value


def _parse_payment(row: _Row) -> _PaymentIn:
    d = row.data
    return _PaymentIn(
        row=row,
        payment_ref=_required_text(d.get("payment_ref"), "payment_ref", 64),
        account_ref=_required_text(d.get("account_ref"), "account_ref", 64),
        paid_on=cast(dt.date, _date(d.get("paid_on"), "paid_on", required=True)),
        amount=_money(d.get("amount"), "amount", positive=True),
    )


def _parse_hold(row: _Row) -> _HoldIn:
    d = row.data
    account_ref = _required_text(d.get("account_ref"), "account_ref", 64)
    kind = _choice(d.get("kind"), "kind", HOLD_KINDS)
    started_on = cast(dt.date, _date(d.get("started_on"), "started_on", required=True))
    ended_on = _date(d.get("ended_on"), "ended_on")
    if ended_on is not None and ended_on < started_on:
        raise _Reject("ended_on", "before started_on")
    return _HoldIn(
        row=row, account_ref=account_ref, kind=kind, started_on=started_on, ended_on=ended_on
    )


def _parse_event(row: _Row) -> _EventIn:
    d = row.data
    event = _EventIn(
        row=row,
        account_ref=_required_text(d.get("account_ref"), "account_ref", 64),
        event_ref=_text(d.get("event_ref"), "event_ref", max_len=64),
        occurred_at=_instant(d.get("occurred_at"), "occurred_at"),
        channel=_choice(d.get("channel"), "channel", CHANNELS),
        destination=_text(d.get("destination"), "destination", max_len=300),
        direction=_choice(d.get("direction"), "direction", DIRECTIONS, default="outbound"),
        outcome=_choice(d.get("outcome"), "outcome", OUTCOMES),
    )
    if event.destination is None:
        event.dest = ""
    elif _destination_kind(event.channel) != "phone" or event.destination.startswith("+"):
        event.dest = _destination(event.channel, event.destination, None)
    if event.dest is not None:
        event.ref = event.event_ref or _derived_event_ref(event, event.dest)
    return event


def _parse_opt_out(row: _Row) -> _OptOutIn:
    d = row.data
    person_ref = _text(d.get("person_ref"), "person_ref", max_len=64)
    account_ref = _text(d.get("account_ref"), "account_ref", max_len=64)
    if person_ref is None and account_ref is None:
        raise _Reject("person_ref", "required (or account_ref)")
    return _OptOutIn(
        row=row,
        person_ref=person_ref,
        account_ref=account_ref,
        channel=_choice(d.get("channel"), "channel", CHANNELS),
        destination=_required_text(d.get("destination"), "destination", 300),
        recorded_at=_instant(d.get("recorded_at"), "recorded_at"),
    )


_PARSERS: dict[str, Any] = {
    "payment": lambda row, fmt: _parse_payment(row),
    "hold": lambda row, fmt: _parse_hold(row),
    "contact_event": lambda row, fmt: _parse_event(row),
    "opt_out": lambda row, fmt: _parse_opt_out(row),
    "account": _parse_account,
}


def _parse_row(row: _Row, fmt: str) -> _Item | _Bad:
    """Validate one row on its own (no database); what needs the database waits for apply."""
    try:
        if row.error:
            raise _Reject(row.data.get("field") if row.data else None, row.error)
        parser = _PARSERS.get(row.record)
        if parser is None:
            if not row.record:
                raise _Reject("record", "required")
            raise _Reject(
                "record", f"{_shown(row.record)} is not one of: {', '.join(RECORD_TYPES)}"
            )
        item: _Item = parser(row, fmt)
        item.keys = _scan_keys(row.record, row.data)
        return item
    except _Reject as rej:
        return _Bad(row, rej.field, rej.reason)
    except Exception as exc:  # noqa: BLE001 - a row never stops the import
        # The type only: the message may quote the row's values.
        log.warning("line %d: %s while validating; the row is rejected", row.line,
                    type(exc).__name__)  # fmt: skip
        return _Bad(row, None, f"cannot be read ({type(exc).__name__})")
    finally:
        row.data = {}


def _parse_chunks(path: Path, fmt: str, chunk_size: int) -> Iterator[list[_Item | _Bad]]:
    with path.open("rb", buffering=1 << 20) as binary, _text_stream(path, binary) as text:
        chunk: list[_Item | _Bad] = []
        for row in _iter_rows(path, fmt, text):
            chunk.append(_parse_row(row, fmt))
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


_DESTINATION_KINDS = {"sms": "phone", "call": "phone", "email": "email", "letter": "postal"}


def _destination_kind(channel: str) -> str:
    return _DESTINATION_KINDS[channel]


def _destination(channel: str, value: str, country: str | None) -> str:
    kind = _destination_kind(channel)
    if kind == "phone":
        return _phone(value, "destination", country)
    if kind == "email":
        return _email(value, "destination")
    return value


# --- writing ------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Want:
    """A row we want in a table: inserted if missing; updated only when ``full``."""

    key: Any
    values: dict[str, Any]
    full: bool
    source: _Item


def _insert_ignoring_conflicts(conn: Connection, table: Table) -> Insert:
    # A concurrent writer (another import, a webhook) may have inserted the same natural key
    # since we looked: skip it rather than fail the whole chunk.
    if conn.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table)


def _execute_many(conn: Connection, table: Table, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """executemany at the driver, with the statement SQLAlchemy compiled for this dialect.

    Core's per-row parameter processing costs more than SQLite's own insert; values here are
    already the right Python types, and SQLite only needs dates, instants and money spelled the
    way SQLAlchemy stores them (ISO text, float), so that Core reads them back unchanged.
    """
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if order is None:  # named parameters (psycopg): the values go as they are
        conn.exec_driver_sql(str(compiled), rows)
        return
    row_values = operator.itemgetter(*order) if len(order) > 1 else lambda r: (r[order[0]],)
    fixes: list[tuple[int, Any]] = []
    if conn.dialect.name == "sqlite":
        # Update parameters are named b_<column>; the column's type says what needs spelling.
        for i, name in enumerate(order):
            column_type = table.c[name.removeprefix("b_")].type
            form = next((f for t, f in _SQLITE_FORMS if isinstance(column_type, t)), None)
            if form is not None:
                fixes.append((i, form))
    if not fixes:
        conn.exec_driver_sql(str(compiled), [row_values(r) for r in rows])
        return
    params: list[tuple[Any, ...]] = []
    for r in rows:
        values = list(row_values(r))
        for i, form in fixes:
            if values[i] is not None:
                values[i] = form(values[i])
        params.append(tuple(values))
    conn.exec_driver_sql(str(compiled), params)


def _iso_instant(value: dt.datetime) -> str:
    return value.isoformat(" ", "microseconds")


# How SQLAlchemy's SQLite dialect stores each column type, and each Python value.
_SQLITE_FORMS: tuple[tuple[type, Any], ...] = (
    (DateTime, _iso_instant),
    (Date, dt.date.isoformat),
    (Numeric, float),
)
_SQLITE_VALUE_FORMS: dict[type, Any] = {
    dt.datetime: _iso_instant,
    dt.date: dt.date.isoformat,
    Decimal: float,
}


def _stored(value: Any, sqlite: bool) -> Any:
    """A value as the driver stores and returns it: on SQLite, the spelling SQLAlchemy uses."""
    form = _SQLITE_VALUE_FORMS.get(value.__class__) if sqlite else None
    return form(value) if form is not None else value


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _select_in(
    conn: Connection, columns: Sequence[Column[Any]], key: Column[Any], keys: Collection[Any]
) -> list[Any]:
    """Rows whose ``key`` is in ``keys``, as named tuples of stored values (see _stored).

    Read at the driver for the same reason as _execute_many: converting every date and amount
    of every row read back costs more than the query, and comparing stored forms is exact.
    """
    names = tuple(c.name for c in columns)
    row_type: Any = _ROW_TYPES.get(names)
    if row_type is None:
        row_type = _ROW_TYPES[names] = namedtuple("_Stored", names)  # type: ignore[misc]
    dialect = conn.dialect.name
    rows: list[Any] = []
    values = list(keys)
    args: Any
    for start in range(0, len(values), _IN_BATCH):
        batch = values[start : start + _IN_BATCH]
        # The whole key list as one parameter: no statement with thousands of placeholders to
        # build per call, and the same SQL text every time.
        if dialect == "sqlite":
            sql, args = _keys_query(conn, columns, key), (json.dumps(batch),)
        elif dialect == "postgresql":
            sql, args = _keys_query(conn, columns, key), {"keys": batch}
        else:
            stmt = select(*columns).where(key.in_(batch))
            compiled = stmt.compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            order = compiled.positiontup
            sql = str(compiled)
            args = tuple(compiled.params[n] for n in order) if order else compiled.params
        result = conn.exec_driver_sql(sql, args)
        try:  # the driver's own tuples: wrapping each in a Row costs more than the query
            rows.extend(map(row_type._make, result.cursor.fetchall()))
        finally:
            result.close()
    return rows


_KEY_QUERIES: dict[tuple[str, tuple[str, ...], str], str] = {}


def _keys_query(conn: Connection, columns: Sequence[Column[Any]], key: Column[Any]) -> str:
    cache_key = (conn.dialect.name, tuple(str(c) for c in columns), str(key))
    sql = _KEY_QUERIES.get(cache_key)
    if sql is None:
        where: Any
        if conn.dialect.name == "sqlite":
            listed: Any = select(literal_column("value"))
            listed = listed.select_from(func.json_each(bindparam("keys")))
            where = key.in_(listed.scalar_subquery())
        else:
            where = key == func.any(bindparam("keys", type_=ARRAY(key.type)))
        sql = str(select(*columns).where(where).compile(dialect=conn.dialect))
        _KEY_QUERIES[cache_key] = sql
    return sql


def _sync(
    conn: Connection,
    table: Table,
    wants: Iterable[_Want],
    existing: Mapping[Any, Any],
    compare: Sequence[str],
    stamp: dt.datetime | None,
) -> dict[Any, str]:
    """Insert missing rows, update rows whose ``compare`` columns differ; return each outcome.

    Comparing first is what makes a re-import a no-op: an unchanged row is not written at all,
    so its ``updated_at`` keeps the time it really changed.
    """
    stored_values = _stored_getter(conn, table, compare)
    stored_old = operator.attrgetter(*compare) if len(compare) > 1 else _one(compare[0])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    outcome: dict[Any, str] = {}
    for want in wants:
        old = existing.get(want.key)
        if old is None:
            row = dict(want.values)
            if stamp is not None:
                row["updated_at"] = stamp
            inserts.append(row)
            outcome[want.key] = INSERTED
        elif want.full and stored_old(old) != stored_values(want.values):
            change = {f"b_{c}": want.values[c] for c in compare}
            change["b_id"] = old.id
            if stamp is not None:
                change["b_updated_at"] = stamp
            updates.append(change)
            outcome[want.key] = UPDATED
        else:
            outcome[want.key] = UNCHANGED
    if inserts:
        _execute_many(conn, table, _insert_ignoring_conflicts(conn, table), inserts)
    if updates:
        names = [*compare, "updated_at"] if stamp is not None else list(compare)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in names})
        )
        _execute_many(conn, table, stmt, updates)
    return outcome


def _one(name: str) -> Any:
    return lambda row: (getattr(row, name),)


def _stored_getter(conn: Connection, table: Table, names: Sequence[str]) -> Any:
    """A function: wanted values -> tuple of their stored forms (see _stored), in ``names`` order.

    Only the columns whose type SQLite spells differently are converted, so comparing a row
    that did not change is one tuple comparison.
    """
    pick = operator.itemgetter(*names) if len(names) > 1 else (lambda v: (v[names[0]],))
    fixes = [
        (i, form)
        for i, name in enumerate(names)
        if conn.dialect.name == "sqlite"
        and (form := next((f for t, f in _SQLITE_FORMS if isinstance(table.c[name].type, t)), None))
    ]
    if not fixes:
        return pick

    def stored(values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = list(pick(values))
        for i, form in fixes:
            if out[i] is not None:
                out[i] = form(out[i])
        return tuple(out)

    return stored


def _collapse(wants: Iterable[_Want]) -> dict[Any, _Want]:
    """One want per key within a chunk, as if the rows had been applied one by one in order.

    A full want replaces what came before; an insert-only want counts only if nothing came
    before (the first one inserts, the rest find the row there).
    """
    chosen: dict[Any, _Want] = {}
    for want in wants:
        if want.full or want.key not in chosen:
            chosen[want.key] = want
    return chosen


_PERSON_COLS = (
    "full_name", "language", "address_line1", "city", "region", "postal_code", "country",
    "time_zones", "inconvenient_times",
)  # fmt: skip
_ADDRESS_COLS = ("address_line1", "city", "region", "postal_code", "country")
_ACCOUNT_COLS = (
    "person_id", "product", "currency", "balance", "amount_past_due", "due_date",
    "balance_as_of", "jurisdiction_country", "jurisdiction_region", "segment",
    "charge_off_date", "limitation_date", "validation_notice_sent_on", "initial_communication_on",
    "scra_checked_on", "scra_active_duty", "final_notice_sent_on",
    "itemization_date", "itemization_kind", "itemization_amount", "interest_since_itemization",
    "fees_since_itemization",
)  # fmt: skip
# Dates the system records too (the dispatcher, when it sends a notice or a first contact) or a
# previous system's history: an import merges them with what is stored instead of replacing it,
# and an empty field keeps the stored date (docs/import-format.md, "Facts the system records").
# A notice's sending day: the later one wins (the waiting periods run from the latest notice).
# The first communication: the earlier one wins (the validation notice is due from it).
_LATEST_DATE_COLS = ("validation_notice_sent_on", "final_notice_sent_on")
_EARLIEST_DATE_COLS = ("initial_communication_on",)
_CONTACT_COLS = (
    "phone_type", "time_zones", "sms_consent", "call_consent", "is_workplace", "email_consent",
    "used_by_consumer", "no_calls_at_work", "relation", "priority",
)  # fmt: skip


def _account_values(item: _AccountIn, person_id: int) -> dict[str, Any]:
    """The account columns a row wants. A superseded row only creates the account, without
    the recorded dates: the last row brings them, so the merge below sees only its dates and
    the result does not depend on which chunk the earlier row fell into."""
    values = item.account | {"person_id": person_id}
    if not item.final:
        values.update(dict.fromkeys(_LATEST_DATE_COLS + _EARLIEST_DATE_COLS))
    return values


def _merge_recorded_dates(values: dict[str, Any], stored: Any) -> None:
    """Merge the dates the system records with the stored ones (see _LATEST_DATE_COLS): an
    empty field keeps the stored date, so a re-import never clears what the dispatcher
    recorded, and a row that changes nothing else compares unchanged."""
    for names, pick in ((_LATEST_DATE_COLS, max), (_EARLIEST_DATE_COLS, min)):
        for name in names:
            old = _as_date(getattr(stored, name))
            new = values[name]
            if old is not None:
                values[name] = old if new is None else pick(old, new)


def _as_date(value: Any) -> dt.date | None:
    """A stored date: a date already (PostgreSQL) or ISO text (SQLite, see _stored)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


@dataclass(slots=True)
class _AccountRef:
    id: int
    person_id: int
    country: str


class _Chunks:
    """Applies the rows of one chunk in one transaction, set-based, in dependency order."""

    def __init__(self, engine: Engine, stamp: dt.datetime, later: _LaterLines, fmt: str) -> None:
        self.engine = engine
        self.stamp = stamp
        self.later = later
        self.fmt = fmt
        self.sqlite = engine.dialect.name == "sqlite"

    def apply(self, items: list[_Item | _Bad]) -> list[tuple[_Row, str | None, str]]:
        """Write one chunk; every item ends with a status; returns the rejects found here."""
        rejects: list[tuple[_Row, str | None, str]] = []
        accounts: list[_AccountIn] = []
        payments: list[_PaymentIn] = []
        holds: list[_HoldIn] = []
        events: list[_EventIn] = []
        opt_outs: list[_OptOutIn] = []
        later = self.later
        for item in items:
            if isinstance(item, _Bad):
                rejects.append((item.row, item.field, item.reason))
                continue
            if item.keys:
                item.final = not later.superseded(item.keys[0], item.row.line)
            if isinstance(item, _AccountIn):
                item.person_final = not later.superseded(item.keys[1], item.row.line)
                accounts.append(item)
            elif isinstance(item, _PaymentIn):
                payments.append(item)
            elif isinstance(item, _HoldIn):
                holds.append(item)
            elif isinstance(item, _EventIn):
                events.append(item)
            elif isinstance(item, _OptOutIn):
                opt_outs.append(item)

        with self.engine.begin() as conn:
            new_accounts, new_persons = self._accounts(conn, accounts)
            refs = {p.account_ref for p in payments} | {h.account_ref for h in holds}
            refs.update(e.account_ref for e in events)
            refs.update(o.account_ref for o in opt_outs if o.account_ref)
            known = self._known_accounts(conn, refs)

            def account_of(item: _Item, ref: str) -> _AccountRef | None:
                found = known.get(ref)
                if found is None or new_accounts.get(ref, 0) > item.row.line:
                    item.status = REJECTED
                    rejects.append((item.row, "account_ref", _UNKNOWN_ACCOUNT))
                    return None
                return found

            self._payments(conn, [(p, a) for p in payments if (a := account_of(p, p.account_ref))])
            self._holds(conn, [(h, a) for h in holds if (a := account_of(h, h.account_ref))])
            resolved_events = [(e, a) for e in events if (a := account_of(e, e.account_ref))]
            resolved_opt_outs = self._opt_out_people(
                conn, opt_outs, known, new_accounts, new_persons, rejects
            )
            person_ids = {a.person_id for _, a in resolved_events}
            person_ids.update(a.person_id for _, a in resolved_opt_outs)
            contact_ids = self._contact_ids(conn, person_ids)
            self._events(conn, resolved_events, contact_ids, rejects)
            self._opt_outs(conn, resolved_opt_outs, contact_ids, rejects)
        return rejects

    # accounts, with their persons and contact points

    def _accounts(
        self, conn: Connection, accounts: list[_AccountIn]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Upsert persons, accounts, contact points; return refs first created in this chunk
        with the line that created them (rows above that line must not see them)."""
        if not accounts:
            return {}, {}
        person_wants = _collapse(_Want(a.person_ref, a.person, a.person_final, a) for a in accounts)
        cols = [PERSON.c.id, PERSON.c.person_ref, *(PERSON.c[c] for c in _PERSON_COLS)]
        existing = {
            r.person_ref: r for r in _select_in(conn, cols, PERSON.c.person_ref, person_wants)
        }
        person_outcome = _sync(
            conn, PERSON, person_wants.values(), existing, _PERSON_COLS, self.stamp
        )
        moved = {
            ref
            for ref, want in person_wants.items()
            if want.full
            and (
                ref not in existing
                or any(getattr(existing[ref], c) != want.values[c] for c in _ADDRESS_COLS)
            )
        }
        person_ids = {r.person_ref: r.id for r in existing.values()}
        created = [ref for ref, o in person_outcome.items() if o == INSERTED]
        for r in _select_in(conn, [PERSON.c.id, PERSON.c.person_ref], PERSON.c.person_ref, created):
            person_ids[r.person_ref] = r.id
        for ref, want in person_wants.items():
            if person_outcome[ref] != UNCHANGED:
                want.source.changed = True

        account_wants = _collapse(
            _Want(a.account_ref, _account_values(a, person_ids[a.person_ref]), a.final, a)
            for a in accounts
            if a.person_ref in person_ids
        )
        cols = [ACCOUNT.c.id, ACCOUNT.c.account_ref, *(ACCOUNT.c[c] for c in _ACCOUNT_COLS)]
        existing_accounts = {
            r.account_ref: r for r in _select_in(conn, cols, ACCOUNT.c.account_ref, account_wants)
        }
        for ref, want in account_wants.items():
            if ref in existing_accounts:
                _merge_recorded_dates(want.values, existing_accounts[ref])
        account_outcome = _sync(
            conn, ACCOUNT, account_wants.values(), existing_accounts, _ACCOUNT_COLS, self.stamp
        )

        self._contact_points(conn, accounts, person_ids, moved)

        first_line: dict[str, int] = {}
        first_person_line: dict[str, int] = {}
        for a in accounts:
            first_line.setdefault(a.account_ref, a.row.line)
            first_person_line.setdefault(a.person_ref, a.row.line)
            if not a.final:
                a.status = SUPERSEDED
            elif account_wants[a.account_ref].source is not a:
                a.status = UNCHANGED  # two final rows cannot share a key; defensive
            else:
                outcome = account_outcome[a.account_ref]
                a.status = UPDATED if outcome == UNCHANGED and a.changed else outcome
        new_accounts = {r: first_line[r] for r, o in account_outcome.items() if o == INSERTED}
        new_persons = {r: first_person_line[r] for r in created}
        return new_accounts, new_persons

    def _contact_points(
        self,
        conn: Connection,
        accounts: list[_AccountIn],
        person_ids: Mapping[str, int],
        moved: set[str],
    ) -> None:
        wants: list[_Want] = []
        for a in accounts:
            pid = person_ids[a.person_ref]
            for cp in a.contacts:
                values = cp | {"person_id": pid}
                wants.append(_Want((pid, cp["kind"], cp["value"]), values, a.person_final, a))
        chosen = _collapse(wants)
        cols = [
            CONTACT_POINT.c.id, CONTACT_POINT.c.person_id, CONTACT_POINT.c.kind,
            CONTACT_POINT.c.value, CONTACT_POINT.c.valid,
            *(CONTACT_POINT.c[c] for c in _CONTACT_COLS),
        ]  # fmt: skip
        rows = _select_in(conn, cols, CONTACT_POINT.c.person_id, set(person_ids.values()))
        existing = {(r.person_id, r.kind, r.value): r for r in rows}
        outcome = _sync(conn, CONTACT_POINT, chosen.values(), existing, _CONTACT_COLS, self.stamp)
        for key, want in chosen.items():
            if outcome[key] != UNCHANGED:
                want.source.changed = True

        # The address a full row gives is the person's one valid postal point. An address the
        # lender just changed to is valid even if it once bounced; the same address sent again
        # leaves a returned-mail invalidation alone. Read after the inserts: a superseded row of
        # this chunk may just have added an older address.
        current: dict[int, _Want] = {
            want.values["person_id"]: want
            for want in chosen.values()
            if want.full and want.values["kind"] == "postal"
        }
        # Only a person who had contact points, or got an older address from a superseded row
        # of this chunk, can hold another postal point: skip the read for everyone else.
        maybe_more = {r.person_id for r in rows}
        maybe_more.update(
            w.values["person_id"]
            for w in chosen.values()
            if w.values["kind"] == "postal" and not w.full
        )
        current = {pid: want for pid, want in current.items() if pid in maybe_more}
        if not current:
            return
        moved_ids = {person_ids[ref] for ref in moved}
        cols = [
            CONTACT_POINT.c.id, CONTACT_POINT.c.person_id, CONTACT_POINT.c.kind,
            CONTACT_POINT.c.value, CONTACT_POINT.c.valid,
        ]  # fmt: skip
        flips: list[dict[str, Any]] = []
        for r in _select_in(conn, cols, CONTACT_POINT.c.person_id, current):
            want = current[r.person_id]
            if r.kind != "postal":
                continue
            if r.value != want.values["value"] and r.valid:
                flips.append({"b_id": r.id, "b_valid": False, "b_updated_at": self.stamp})
                want.source.changed = True
            elif not r.valid and r.value == want.values["value"] and r.person_id in moved_ids:
                flips.append({"b_id": r.id, "b_valid": True, "b_updated_at": self.stamp})
                want.source.changed = True
        if flips:
            conn.execute(
                update(CONTACT_POINT)
                .where(CONTACT_POINT.c.id == bindparam("b_id"))
                .values(valid=bindparam("b_valid"), updated_at=bindparam("b_updated_at")),
                flips,
            )

    def _known_accounts(self, conn: Connection, refs: Collection[str]) -> dict[str, _AccountRef]:
        cols = [
            ACCOUNT.c.id,
            ACCOUNT.c.account_ref,
            ACCOUNT.c.person_id,
            ACCOUNT.c.jurisdiction_country,
        ]
        return {
            r.account_ref: _AccountRef(r.id, r.person_id, r.jurisdiction_country)
            for r in _select_in(conn, cols, ACCOUNT.c.account_ref, refs)
        }

    def _contact_ids(
        self, conn: Connection, person_ids: Collection[int]
    ) -> dict[tuple[int, str, str], int]:
        cols = [
            CONTACT_POINT.c.id,
            CONTACT_POINT.c.person_id,
            CONTACT_POINT.c.kind,
            CONTACT_POINT.c.value,
        ]
        return {
            (r.person_id, r.kind, r.value): r.id
            for r in _select_in(conn, cols, CONTACT_POINT.c.person_id, person_ids)
        }

    # records that refer to an account

    def _payments(self, conn: Connection, payments: list[tuple[_PaymentIn, _AccountRef]]) -> None:
        if not payments:
            return
        wants = _collapse(
            _Want(
                p.payment_ref,
                {
                    "payment_ref": p.payment_ref,
                    "account_id": a.id,
                    "paid_on": p.paid_on,
                    "amount": p.amount,
                },
                p.final,
                p,
            )
            for p, a in payments
        )
        cols = [
            PAYMENT.c.id,
            PAYMENT.c.payment_ref,
            PAYMENT.c.account_id,
            PAYMENT.c.paid_on,
            PAYMENT.c.amount,
        ]
        existing = {r.payment_ref: r for r in _select_in(conn, cols, PAYMENT.c.payment_ref, wants)}
        outcome = _sync(
            conn, PAYMENT, wants.values(), existing, ("account_id", "paid_on", "amount"), None
        )
        _settle([p for p, _ in payments], wants, outcome, lambda p: p.payment_ref)

    def _holds(self, conn: Connection, holds: list[tuple[_HoldIn, _AccountRef]]) -> None:
        if not holds:
            return
        wants = _collapse(
            _Want(
                (a.id, h.kind, _stored(h.started_on, self.sqlite)),
                {
                    "account_id": a.id,
                    "kind": h.kind,
                    "started_on": h.started_on,
                    "ended_on": h.ended_on,
                    "source": SOURCE,
                },  # fmt: skip
                h.final,
                h,
            )
            for h, a in holds
        )
        cols = [HOLD.c.id, HOLD.c.account_id, HOLD.c.kind, HOLD.c.started_on, HOLD.c.ended_on]
        rows = _select_in(conn, cols, HOLD.c.account_id, {a.id for _, a in holds})
        existing = {(r.account_id, r.kind, r.started_on): r for r in rows}
        outcome = _sync(conn, HOLD, wants.values(), existing, ("ended_on",), None)
        keys = {id(h): (a.id, h.kind, _stored(h.started_on, self.sqlite)) for h, a in holds}
        _settle([h for h, _ in holds], wants, outcome, lambda h: keys[id(h)])

    def _events(
        self,
        conn: Connection,
        events: list[tuple[_EventIn, _AccountRef]],
        contact_ids: Mapping[tuple[int, str, str], int],
        rejects: list[tuple[_Row, str | None, str]],
    ) -> None:
        wanted: list[tuple[_EventIn, _Want]] = []
        for e, a in events:
            if e.dest is None:  # a national-format number: read in the account's country
                try:
                    e.dest = _destination(e.channel, cast(str, e.destination), a.country)
                except _Reject as rej:
                    e.status = REJECTED
                    rejects.append((e.row, rej.field, rej.reason))
                    continue
                e.ref = e.event_ref or _derived_event_ref(e, e.dest)
            dest, ref = e.dest, cast(str, e.ref)
            kind = _destination_kind(e.channel)
            # Unknown destinations are kept (contact_point_id NULL): dropping a past call would
            # undercount attempts for the frequency rules, the unsafe direction.
            cp_id = contact_ids.get((a.person_id, kind, dest)) if dest else None
            values = {
                "event_ref": ref, "account_id": a.id, "occurred_at": e.occurred_at,
                "channel": e.channel, "contact_point_id": cp_id, "direction": e.direction,
                "outcome": e.outcome, "source": SOURCE, "ledger_key": None,
            }  # fmt: skip
            wanted.append((e, _Want(ref, values, e.final, e)))
        if not wanted:
            return
        wants = _collapse(w for _, w in wanted)
        compare = (
            "account_id",
            "occurred_at",
            "channel",
            "contact_point_id",
            "direction",
            "outcome",
        )
        cols = [EVENT.c.id, EVENT.c.event_ref, *(EVENT.c[c] for c in compare)]
        existing = {r.event_ref: r for r in _select_in(conn, cols, EVENT.c.event_ref, wants)}
        outcome = _sync(conn, EVENT, wants.values(), existing, compare, None)
        keys = {id(e): w.key for e, w in wanted}
        _settle([e for e, _ in wanted], wants, outcome, lambda e: keys[id(e)])

    def _opt_out_people(
        self,
        conn: Connection,
        opt_outs: list[_OptOutIn],
        known: Mapping[str, _AccountRef],
        new_accounts: Mapping[str, int],
        new_persons: Mapping[str, int],
        rejects: list[tuple[_Row, str | None, str]],
    ) -> list[tuple[_OptOutIn, _AccountRef]]:
        """Resolve each opt-out to its person (as an _AccountRef carrying person id and country)."""
        refs = {o.person_ref for o in opt_outs if o.person_ref}
        cols = [PERSON.c.id, PERSON.c.person_ref, PERSON.c.country]
        people = {r.person_ref: r for r in _select_in(conn, cols, PERSON.c.person_ref, refs)}
        out: list[tuple[_OptOutIn, _AccountRef]] = []
        for o in opt_outs:
            line = o.row.line
            account = None
            if o.account_ref:
                account = known.get(o.account_ref)
                if account is None or new_accounts.get(o.account_ref, 0) > line:
                    o.status = REJECTED
                    rejects.append((o.row, "account_ref", _UNKNOWN_ACCOUNT))
                    continue
            if o.person_ref:
                person = people.get(o.person_ref)
                if person is None or new_persons.get(o.person_ref, 0) > line:
                    o.status = REJECTED
                    rejects.append((o.row, "person_ref", _UNKNOWN_PERSON))
                    continue
                if account is not None and account.person_id != person.id:
                    o.status = REJECTED
                    rejects.append((o.row, "account_ref", "belongs to another person_ref"))
                    continue
                account = account or _AccountRef(0, person.id, person.country)
            out.append((o, cast(_AccountRef, account)))
        return out

    def _opt_outs(
        self,
        conn: Connection,
        opt_outs: list[tuple[_OptOutIn, _AccountRef]],
        contact_ids: Mapping[tuple[int, str, str], int],
        rejects: list[tuple[_Row, str | None, str]],
    ) -> None:
        wanted: list[tuple[_OptOutIn, tuple[int, str, str]]] = []
        for o, a in opt_outs:
            scope = "*"
            if o.destination != "*":
                try:
                    dest = _destination(o.channel, o.destination, a.country)
                except _Reject as rej:
                    o.status = REJECTED
                    rejects.append((o.row, rej.field, rej.reason))
                    continue
                cp_id = contact_ids.get((a.person_id, _destination_kind(o.channel), dest))
                if cp_id is None:
                    o.status = REJECTED
                    rejects.append(
                        (
                            o.row,
                            "destination",
                            "not a contact point of this person; use * for the whole channel",
                        )
                    )
                    continue
                scope = str(cp_id)
            wanted.append((o, (a.person_id, o.channel, scope)))
        if not wanted:
            return
        # An opt-out holds from the first time it was recorded, whatever order rows come in:
        # keeping the earliest instant makes the result independent of order and of re-imports.
        earliest: dict[tuple[int, str, str], _OptOutIn] = {}
        for o, key in wanted:
            if key not in earliest or o.recorded_at < earliest[key].recorded_at:
                earliest[key] = o
        cols = [
            OPT_OUT.c.id,
            OPT_OUT.c.person_id,
            OPT_OUT.c.channel,
            OPT_OUT.c.scope,
            OPT_OUT.c.recorded_at,
        ]
        rows = _select_in(conn, cols, OPT_OUT.c.person_id, {k[0] for k in earliest})
        existing = {(r.person_id, r.channel, r.scope): r for r in rows}
        wants: dict[Any, _Want] = {}
        for key, o in earliest.items():
            old = existing.get(key)
            values = {
                "person_id": key[0], "channel": key[1], "scope": key[2],
                "recorded_at": o.recorded_at, "source": SOURCE,
            }  # fmt: skip
            full = old is not None and _stored(o.recorded_at, self.sqlite) < old.recorded_at
            wants[key] = _Want(key, values, full, o)
        outcome = _sync(conn, OPT_OUT, wants.values(), existing, ("recorded_at",), None)
        for o, key in wanted:
            o.status = outcome[key] if wants[key].source is o else UNCHANGED


_UNKNOWN_ACCOUNT = "unknown account_ref: not in the database nor on an earlier line of this file"
_UNKNOWN_PERSON = "unknown person_ref: not in the database nor on an earlier line of this file"


def _settle(
    items: Sequence[_Item],
    wants: Mapping[Any, _Want],
    outcome: Mapping[Any, str],
    key_of: Any,
) -> None:
    for item in items:
        key = key_of(item)
        if not item.final:
            item.status = SUPERSEDED
        elif wants[key].source is item:
            item.status = outcome[key]
        else:
            item.status = UNCHANGED  # an identical event earlier in the chunk inserted it


def _derived_event_ref(event: _EventIn, destination: str) -> str:
    # Every field is part of the identity: two rows that differ in anything are two events, so
    # an event without a ref never changes and re-importing it is a no-op.
    parts = (
        event.account_ref,
        event.occurred_at.isoformat(),
        event.channel,
        destination,
        event.direction,
        event.outcome,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --- the import ---------------------------------------------------------------------------------


class _RejectsFile:
    """Writes rejects as JSON lines; the default file is only created when there is a reject."""

    def __init__(self, path: Path, always: bool) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        if always:
            self._open()

    def _open(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        return self._handle

    def write(self, row: _Row, field_name: str | None, reason: str) -> None:
        head = json.dumps({"line": row.line, "field": field_name, "reason": reason})
        self._open().write(f'{head[:-1]}, "record": {row.raw_json()}}}\n')

    @property
    def written(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _default_rejects_path(path: Path, stamp: dt.datetime) -> Path:
    stem = path.name
    for suffix in reversed(path.suffixes):
        stem = stem.removesuffix(suffix)
    return settings.data_dir() / "rejects" / f"{stem}-{stamp:%Y%m%dT%H%M%S%fZ}.rejects.jsonl"


def import_file(
    path: Path,
    *,
    engine: Engine,
    rejects_path: Path | None = None,
    chunk_size: int = CHUNK_LINES,
) -> ImportReport:
    """Import one portfolio file; see docs/import-format.md for the format and the rules.

    Raises ImportFileError when the file cannot be read at all (nothing written); bad rows are
    rejected one by one. Raises ImportInterruptedError when the import stops part-way (the
    chunks before the line it names are committed; importing the file again finishes).
    """
    path = Path(path)
    began = time.monotonic()
    fmt = _file_format(path)
    # One instant for the whole run: every row it writes carries it as updated_at.
    stamp = utcnow()
    scan = _prescan(path, fmt)
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(IMPORT_RUN).values(
                file_name=str(path)[-300:],
                file_sha256=scan.sha256,
                started_at=stamp,
                rows_read=0,
                rows_upserted=0,
                rows_unchanged=0,
                rows_rejected=0,
            )  # fmt: skip
        ).inserted_primary_key[0]  # type: ignore[index]
    report = ImportReport(path=path, import_run_id=run_id)
    rejects = _RejectsFile(
        rejects_path or _default_rejects_path(path, stamp), always=rejects_path is not None
    )
    chunks = _Chunks(engine, stamp, scan.later, fmt)
    # The import allocates millions of short-lived, acyclic objects: collecting the young
    # generation every 700 allocations costs ~15% of the run for nothing.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 100_000), *thresholds[1:])
    committed = 0  # the last line of the last committed chunk
    try:
        for parsed in _parse_chunks(path, fmt, chunk_size):
            try:
                found = chunks.apply(parsed)
            except (DataError, IntegrityError):
                # A row the database refuses (a constraint the validation does not know): find
                # it by applying the chunk's rows one by one, and reject it like any other.
                found = _apply_one_by_one(chunks, parsed)
            _count(report, rejects, parsed, found)
            committed = parsed[-1].row.line
    except Exception as exc:
        # The type only: a driver's message may quote the rows.
        log.error("import run %d stopped after line %d: %s", run_id, committed,
                  type(exc).__name__)  # fmt: skip
        done = (
            f"lines 1-{committed} are in the database, the rest are not"
            if committed
            else "nothing was imported"
        )
        raise ImportInterruptedError(
            f"{path.name}: the import stopped after line {committed} ({type(exc).__name__}): "
            f"{done}; import the file again to finish (a re-import leaves what is already "
            "there unchanged)"
        ) from exc
    finally:
        gc.set_threshold(*thresholds)
        rejects.close()
        report.rejects_path = rejects.path if rejects.written else None
        report.seconds = time.monotonic() - began
        _finish_run(engine, report)
    log.info(
        "import run %d: %d rows read, %d inserted, %d updated, %d unchanged, %d superseded, "
        "%d rejected in %.1fs",
        report.import_run_id, report.rows_read, report.inserted, report.updated,
        report.unchanged, report.superseded, report.rejected, report.seconds,
    )  # fmt: skip
    return report


def _apply_one_by_one(
    chunks: _Chunks, items: list[_Item | _Bad]
) -> list[tuple[_Row, str | None, str]]:
    """Apply a chunk the database refused one row at a time (each its own transaction), the
    rows it refuses becoming rejects; the result is the chunk's, as the file's split into
    chunks never changes it."""
    rejected: list[tuple[_Row, str | None, str]] = []
    for item in items:
        if isinstance(item, _Item):
            item.status, item.changed = "", False  # what the failed attempt had set
        try:
            rejected.extend(chunks.apply([item]))
        except (DataError, IntegrityError) as exc:
            assert isinstance(item, _Item)  # a _Bad is never written
            item.status = REJECTED
            refused = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            rejected.append((item.row, None, f"refused by the database ({refused})"))
    return rejected


def _count(
    report: ImportReport,
    rejects: _RejectsFile,
    items: list[_Item | _Bad],
    rejected: list[tuple[_Row, str | None, str]],
) -> None:
    for row, field_name, reason in sorted(rejected, key=lambda r: r[0].line):
        rejects.write(row, field_name, reason)
    for item in items:
        if isinstance(item, _Bad):
            record = item.row.record if item.row.record in RECORD_TYPES else "invalid"
            status = REJECTED
        else:
            record, status = item.row.record, item.status
            if not status:
                raise RuntimeError(f"line {item.row.line}: no outcome recorded (importer bug)")
        counts = report.by_record.setdefault(record, dict.fromkeys(("read", *STATUSES), 0))
        counts["read"] += 1
        counts[status] += 1
        report.rows_read += 1
        setattr(report, status, getattr(report, status) + 1)


def _finish_run(engine: Engine, report: ImportReport) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(IMPORT_RUN)
            .where(IMPORT_RUN.c.id == report.import_run_id)
            .values(
                rows_read=report.rows_read,
                rows_upserted=report.inserted + report.updated,
                # The table has no superseded column: those rows decided nothing, like unchanged.
                rows_unchanged=report.unchanged + report.superseded,
                rows_rejected=report.rejected,
                rejects_path=str(report.rejects_path) if report.rejects_path else None,
            )
        )
