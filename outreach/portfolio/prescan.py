"""The pre-scan of a portfolio file: its SHA-256, and which rows a later row with the same key
supersedes ("last one wins", docs/import-format.md)."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outreach.portfolio.files import (
    HashingReader,
    ImportFileError,
    iter_rows,
    record_type,
    sniff,
    text_stream,
)
from outreach.portfolio.rows import Row, blank


def scan_keys(record: str, data: Mapping[str, Any]) -> tuple[Hashable, ...]:
    """Keys "last one wins" applies to (see LaterLines); both passes derive them here."""
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
    if record == "promise":
        return (("promise", _key_text(data.get("promise_ref"))),)
    if record == "arrangement":
        return (("arrangement", _key_text(data.get("arrangement_ref"))),)
    if record == "means":
        return (("means", _key_text(data.get("account_ref")), _key_text(data.get("stated_on"))),)
    if record == "contact_event" and not blank(data.get("event_ref")):
        return (("event", _key_text(data.get("event_ref"))),)
    return ()


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


class LaterLines:
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
class Scan:
    sha256: str
    later: LaterLines


_KEY_FIELD = re.compile(
    r'"(record|account_ref|person_ref|payment_ref|kind|started_on|event_ref)"\s*:\s*'
    r'(?:"([^"]*)"|(-?\d+)(?![\d.eE])|null)'
)


def _iter_key_fields(path: Path, text: io.TextIOWrapper) -> Iterator[Row]:
    """JSON lines with only the fields scan_keys reads, without a full parse where that is safe.

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
                    yield Row(line, record_type(obj.get("record")), obj, None)
                continue
            data: dict[str, Any] = {}
            for key, string, number in _KEY_FIELD.findall(stripped):
                data[key] = _int_key(number) if number else string  # null reads "", like blank
            yield Row(line, record_type(data.get("record")), data, None)
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


def prescan(path: Path, fmt: str) -> Scan:
    sniff(path)
    try:
        size = path.stat().st_size
        binary = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot open: {exc.strerror}") from None
    # ~100 bytes a row at the least; gzip packs about 6 to 1.
    expected = size // 100 * (6 if path.suffix.lower() == ".gz" else 1)
    later = LaterLines(expected)
    with binary:
        hashing = HashingReader(binary)
        buffered = io.BufferedReader(hashing, buffer_size=1 << 20)
        text = text_stream(path, buffered)
        rows = _iter_key_fields(path, text) if fmt == "jsonl" else iter_rows(path, fmt, text)
        for row in rows:
            if not row.error:
                for key in scan_keys(row.record, row.data):
                    later.add(key, row.line)
        try:
            while buffered.read(1 << 20):  # hash whatever trails the last record
                pass
        except OSError as exc:
            raise ImportFileError(f"{path.name}: cannot read: {exc}") from None
        text.detach()
    return Scan(hashing.sha256.hexdigest(), later)
