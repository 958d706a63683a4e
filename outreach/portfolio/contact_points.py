"""The phones and emails of an account record, checked into contact point values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from outreach.kernel import zones
from outreach.portfolio.rows import Reject, blank, choice, email, flag, phone
from policies.model import RELATIONS, SELF

PHONE_TYPES = frozenset({"mobile", "landline", "work"})
MAX_PHONES = 3  # CSV columns phone1..phone3 and email1..email3
MAX_EMAILS = 3


def contact(
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


def phones(d: Mapping[str, Any], fmt: str, country: str) -> list[dict[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    if fmt == "csv":
        for i in range(1, MAX_PHONES + 1):
            p = f"phone{i}"
            if not blank(d.get(p)):
                entries.append({k: d.get(_csv_field(p, k)) for k in _PHONE_KEYS})
    else:
        for i, item in enumerate(_list(d.get("phones"), "phones")):
            if not isinstance(item, dict):
                raise Reject(f"phones[{i}]", "must be an object with number, type and consents")
            entries.append(item)
    out = []
    for i, item in enumerate(entries):
        try:
            number = phone(item.get("number"), "number", country)
            phone_type = choice(item.get("type"), "type", PHONE_TYPES)
            flags = {
                "sms_consent": flag(item.get("sms_consent"), "sms_consent"),
                "call_consent": flag(item.get("call_consent"), "call_consent"),
                "workplace": flag(item.get("workplace"), "workplace"),
                "no_calls_at_work": flag(item.get("no_calls_at_work"), "no_calls_at_work"),
                "used_by_consumer": flag(item.get("used_by_consumer"), "used_by_consumer"),
            }
            relation = choice(item.get("relation"), "relation", RELATIONS, default=SELF)
        except Reject as rej:  # name the field as the file does: phone2_type, phones[1].type
            key = cast(str, rej.field)
            name = _csv_field(f"phone{i + 1}", key) if fmt == "csv" else f"phones[{i}].{key}"
            raise Reject(name, rej.reason) from None
        tz = " ".join(zones.phone_zones(number)) or None
        out.append(
            contact("phone", number, phone_type, tz, priority=i + 1, relation=relation, **flags)
        )
    return out


_PHONE_KEYS = (
    "number", "type", "sms_consent", "call_consent", "workplace", "no_calls_at_work",
    "used_by_consumer", "relation",
)  # fmt: skip
_EMAIL_KEYS = ("address", "workplace", "consent", "used_by_consumer", "relation")


def _csv_field(prefix: str, key: str) -> str:
    return prefix if key in ("number", "address") else f"{prefix}_{key}"


def emails(d: Mapping[str, Any], fmt: str) -> list[dict[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    if fmt == "csv":
        for i in range(1, MAX_EMAILS + 1):
            e = f"email{i}"
            if not blank(d.get(e)):
                entries.append({k: d.get(_csv_field(e, k)) for k in _EMAIL_KEYS})
    else:
        for i, item in enumerate(_list(d.get("emails"), "emails")):
            if not isinstance(item, dict):
                raise Reject(f"emails[{i}]", "must be an object with address and workplace")
            entries.append(item)
    out = []
    for i, item in enumerate(entries):
        try:
            value = email(item.get("address"), "address")
            workplace = flag(item.get("workplace"), "workplace")
            consent = flag(item.get("consent"), "consent")
            used = flag(item.get("used_by_consumer"), "used_by_consumer")
            relation = choice(item.get("relation"), "relation", RELATIONS, default=SELF)
        except Reject as rej:
            key = cast(str, rej.field)
            name = _csv_field(f"email{i + 1}", key) if fmt == "csv" else f"emails[{i}].{key}"
            raise Reject(name, rej.reason) from None
        flags = {"workplace": workplace, "email_consent": consent, "used_by_consumer": used}
        out.append(contact("email", value, None, None, priority=i + 1, relation=relation, **flags))
    return out


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Reject(name, "must be a list")
    return value
