"""Reading a portfolio file (CSV or JSON lines, optionally gzipped) into rows, and writing
the rejects file: the file-level errors, the limits, the text and CSV decoding."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

from outreach import settings
from outreach.portfolio.rows import Row

# The longest CSV field read (the csv module's default is 131,072): no field takes more than
# 500 characters, so a longer one is a row reject, and beyond this bound the row's line is.
CSV_FIELD_LIMIT = 1 << 24
# A file whose first 8 KiB (after gunzip) are more than 5% control bytes is binary (an image, a
# spreadsheet, UTF-16): a NUL or two in a name is a row's problem, not the file's.
_SNIFF_BYTES = 8192
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, binary, broken gzip or CSV, bad header);
    raised before anything is written."""


class ImportInterruptedError(Exception):
    """The import stopped part-way (a database error, the file changed under it): the chunks
    before the line named are in the database, the rest are not; importing the file again
    finishes the work. The message names the file, the line and the error's type only."""


# --- reading ------------------------------------------------------------------------------------


class HashingReader(io.RawIOBase):
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


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: unknown format; expected .csv, .jsonl or .json (.gz)")


def text_stream(path: Path, binary: IO[bytes]) -> io.TextIOWrapper:
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


def sniff(path: Path) -> None:
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


def iter_rows(path: Path, fmt: str, text: io.TextIOWrapper) -> Iterator[Row]:
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
                    yield Row(line, "", {}, _shown_bytes(stripped), error=bad)
                    continue
                try:
                    obj = _JSON.decode(stripped)
                except json.JSONDecodeError as exc:
                    yield Row(line, "", {}, stripped, error=f"not valid JSON: {exc.msg}")
                    continue
                except RecursionError:
                    yield Row(line, "", {}, stripped, error="not valid JSON: nested too deeply")
                    continue
                except ValueError:  # an integer over Python's digit limit
                    digits = sys.get_int_max_str_digits()
                    error = f"not valid JSON: a number longer than {digits} digits"
                    yield Row(line, "", {}, stripped, error=error)
                    continue
                if not isinstance(obj, dict):
                    yield Row(line, "", {}, stripped, error="not a JSON object")
                    continue
                yield Row(line, record_type(obj.get("record")), obj, stripped)
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


def _iter_csv(path: Path, text: io.TextIOWrapper) -> Iterator[Row]:
    # The limit is the csv module's, process-wide: set while this file is read, then restored.
    previous_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield from _iter_csv_rows(path, _RecordLines(text))
    finally:
        csv.field_size_limit(previous_limit)


def _iter_csv_rows(path: Path, lines: _RecordLines) -> Iterator[Row]:
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
            yield Row(start, "", {}, lines.take(), None, error)
            continue
        if values is None:
            return
        previous_end = reader.line_num
        lines.lines.clear()
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) > width:
            error = f"{len(values)} values for {width} header columns"
            yield Row(start, "", {}, [_shown_bytes(v) for v in values], header, error)
            continue
        # Most rows are ASCII: one C-level pass each, the column search only for a bad row.
        if not all(map(str.isascii, values)) and _BAD_BYTE.search("".join(values)):
            bad_column = next(i for i, v in enumerate(values) if _bad_bytes(v))
            name = header[bad_column] or None
            error = cast(str, _bad_bytes(values[bad_column]))
            yield Row(start, "", {"field": name}, [_shown_bytes(v) for v in values], header, error)
            continue
        data = {h: v for h, v in zip(header, values, strict=False) if v != ""}
        yield Row(start, record_type(data.get("record")), data, values, header)


def record_type(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


class RejectsFile:
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

    def write(self, row: Row, field_name: str | None, reason: str) -> None:
        head = json.dumps({"line": row.line, "field": field_name, "reason": reason})
        self._open().write(f'{head[:-1]}, "record": {row.raw_json()}}}\n')

    @property
    def written(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def default_rejects_path(path: Path, stamp: dt.datetime) -> Path:
    stem = path.name
    for suffix in reversed(path.suffixes):
        stem = stem.removesuffix(suffix)
    return settings.data_dir() / "rejects" / f"{stem}-{stamp:%Y%m%dT%H%M%S%fZ}.rejects.jsonl"
