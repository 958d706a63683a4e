"""The fields our own media's hooks hand their adapters (contact_channels.media_fields): one
typed shape per kind, a plain mapping on the wire, and at each adapter an unknown or missing key
refused by kind and key name (never by value: fields hold personal data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage
from contact_channels.media_fields import (
    CallFields,
    FieldsError,
    LegalFields,
    LetterFields,
    MediaFields,
    PlacementFields,
    Refusal,
)
from outreach.media.agency.channel import AgencyFileChannel
from outreach.media.calls.channel import AgentQueueChannel
from outreach.media.legal.channel import CounselChannel
from outreach.media.letters.channel import PrintChannel
from outreach.planning.kinds import KINDS

SECRET = "Pat Secret-Name"  # a value that must never show in an error

CALL = {"account_id": 1, "contact_point_id": None, "priority": 7,
        "due_start": dt.datetime(2026, 11, 23, 14), "due_end": dt.datetime(2026, 11, 23, 22)}
LETTER = {"letter_date": "2026-11-23", "batch_date": "2026-11-23", "language": "en",
          "recipient": {"name": SECRET, "lines": ["1 Main St", "Town, NY 10001"],
                        "postal_code": "10001", "country": "US"}}
PLACEMENT = {"agency": "bravo", "account_id": 1, "balance": "1500.00", "placed_on": "2026-11-23",
             "recall_due_on": "2027-03-23", "agency_capacity": 100}
LEGAL = {"account_id": 1, "account_ref": "A1", "firm": "hartley", "referred_on": "2026-11-23",
         "balance": "1500.00", "title": "Case referral A1", "summary": [["Debtor", SECRET]],
         "manifest": {}, "history": {"columns": [], "rows": []},
         "payments": {"columns": [], "rows": []}}  # fmt: skip


def _channel(kind: str, url: str, tmp_path: Path) -> Any:
    if kind == "call":
        return AgentQueueChannel({}, database_url=url)
    if kind == "letter":
        return PrintChannel({"drop": (tmp_path / "drop").as_uri()}, database_url=url,
                            data_dir=tmp_path)  # fmt: skip
    if kind == "agency":
        return AgencyFileChannel({}, database_url=url)
    return CounselChannel({}, database_url=url, data_dir=tmp_path)


def _refused(channel: Any, kind: str, fields: dict[str, Any]) -> FieldsError:
    with pytest.raises(FieldsError) as refused:
        channel.send(OutboundMessage("k" * 32, kind, "x", "Dear Pat,", fields=fields))
    error = refused.value
    assert error.kind == kind and SECRET not in str(error) and "1500" not in str(error)
    return error


@pytest.mark.parametrize(
    ("kind", "good", "missing", "code"),
    [
        ("call", CALL, "priority", "missing_fields"),
        ("letter", LETTER, "letter_date", "bad_fields"),
        ("agency", PLACEMENT, "recall_due_on", "placement.incomplete"),
        ("legal", LEGAL, "referred_on", "legal.incomplete"),
    ],
)
def test_an_unknown_or_missing_key_is_refused_by_kind_and_key_name(
    kind: str, good: dict[str, Any], missing: str, code: str, engine: Engine, url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    channel = _channel(kind, url, tmp_path)
    unknown = _refused(channel, kind, {**good, "nickname": SECRET})
    assert unknown.keys == ("nickname",) and str(unknown) == f"{kind} fields: unknown key nickname"
    absent = _refused(channel, kind, {k: v for k, v in good.items() if k != missing})
    assert absent.keys == (missing,) and str(absent) == f"{kind} fields: missing key {missing}"
    assert absent.code == code
    with engine.connect() as conn:
        for table in ("call_task", "document", "placement", "legal_case"):
            assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == 0
    assert not (tmp_path / "drop").exists()


def test_a_placement_without_its_agency_keeps_its_own_code_and_a_refusal_needs_nothing_else(
    engine: Engine, url: str
) -> None:
    assert PlacementFields.from_fields({"refusal": "no_agency"}) == Refusal("no_agency")
    assert LegalFields.from_fields({"refusal": "legal.no_firm"}) == Refusal("legal.no_firm")
    with pytest.raises(FieldsError) as refused:
        PlacementFields.from_fields({k: v for k, v in PLACEMENT.items() if k != "agency"})
    assert refused.value.code == "no_agency"


def test_the_wire_is_the_same_plain_mapping_both_ways() -> None:
    call = CallFields.from_fields(CALL)
    assert call.as_fields() == CALL and CallFields.from_fields(call.as_fields()) == call
    letter = LetterFields.from_fields(LETTER)
    # The optional blocks are left off when a letter has none (the layout reads their absence).
    assert not {"validation", "english", "cn_notice", "instalments"} & set(letter.as_fields())
    assert LetterFields.from_fields(letter.as_fields()) == letter
    assert Refusal("no_agency").as_fields() == {"refusal": "no_agency"}
    legal = LegalFields.from_fields(LEGAL)
    assert isinstance(legal, LegalFields) and LegalFields.from_fields(legal.as_fields()) == legal


def test_each_kind_with_hooks_names_its_fields_class() -> None:
    named: dict[str, type[MediaFields] | None] = {k: v.fields for k, v in KINDS.items()}
    assert named == {"sms": None, "email": None, "call": CallFields, "letter": LetterFields,
                     "agency": PlacementFields, "legal": LegalFields}  # fmt: skip
