"""Account records: their checks, and their writing with their persons and contact points
(docs/import-format.md, "account")."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

import phonenumbers
from sqlalchemy import Connection, Table, bindparam, update

from outreach.kernel import zones
from outreach.portfolio.contact_points import contact, emails, phones
from outreach.portfolio.rows import (
    INSERTED,
    SUPERSEDED,
    UNCHANGED,
    UPDATED,
    Item,
    Reject,
    Row,
    blank,
    choice,
    date,
    flag,
    money,
    required_text,
    shown_value,
    text,
)
from outreach.portfolio.upsert import Want, collapse, select_in, sync
from outreach.storage.models import Account, ContactPoint, Person
from policies.timeblocks import TimeBlockError
from policies.timeblocks import normalize as normalize_times

PERSON = cast(Table, Person.__table__)
ACCOUNT = cast(Table, Account.__table__)
CONTACT_POINT = cast(Table, ContactPoint.__table__)

LANGUAGES = {"en": "en", "zh-cn": "zh-CN"}
PRODUCTS = frozenset({"credit_card", "consumer_loan"})
# The reference dates 12 CFR 1006.34(b)(3) allows for the validation notice's itemization.
ITEMIZATION_KINDS = frozenset(
    {"last_statement", "charge_off", "last_payment", "transaction", "judgment"}
)
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


@dataclass(slots=True, eq=False, kw_only=True)
class AccountIn(Item):
    account_ref: str
    person_ref: str
    person: dict[str, Any]
    account: dict[str, Any]
    contacts: list[dict[str, Any]]
    person_final: bool = True


def parse_account(row: Row, fmt: str) -> AccountIn:
    d = row.data
    account_ref = required_text(d.get("account_ref"), "account_ref", 64)
    person_ref = required_text(d.get("person_ref"), "person_ref", 64)
    full_name = required_text(d.get("full_name"), "full_name", 200)
    language = LANGUAGES[choice(d.get("language"), "language", LANGUAGES, shown="en, zh-CN")]
    product = choice(d.get("product"), "product", PRODUCTS)
    currency = required_text(d.get("currency"), "currency", 3).upper()
    if currency not in CURRENCIES:
        raise Reject(
            "currency", f"{shown_value(d.get('currency'))} is not an ISO 4217 currency code"
        )
    balance = money(d.get("balance"), "balance")
    past_due = money(d.get("amount_past_due"), "amount_past_due")
    if past_due > balance:
        raise Reject("amount_past_due", "greater than balance")
    due_date = date(d.get("due_date"), "due_date")
    if past_due > 0 and due_date is None:
        raise Reject("due_date", "required when amount_past_due is above zero")
    balance_as_of = date(d.get("balance_as_of"), "balance_as_of", required=True)

    country = required_text(d.get("country"), "country", 2).upper()
    if country not in COUNTRIES:
        raise Reject("country", f"{shown_value(d.get('country'))} is not an ISO 3166 country code")
    region = _region(d.get("region"), country)
    city = required_text(d.get("city"), "city", 100)
    address_line1 = required_text(d.get("address_line1"), "address_line1", 200)
    postal_code = _postal_code(d.get("postal_code"), country)
    segment = text(d.get("segment"), "segment", max_len=32)
    charge_off_date = date(d.get("charge_off_date"), "charge_off_date")
    limitation_date = date(d.get("limitation_date"), "limitation_date")
    validation_notice_sent_on = date(
        d.get("validation_notice_sent_on"), "validation_notice_sent_on"
    )
    initial_communication_on = date(d.get("initial_communication_on"), "initial_communication_on")
    final_notice_sent_on = date(d.get("final_notice_sent_on"), "final_notice_sent_on")
    scra_checked_on = date(d.get("scra_checked_on"), "scra_checked_on")
    scra_active_duty = flag(d.get("scra_active_duty"), "scra_active_duty")
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
    for cp in phones(d, fmt, country) + emails(d, fmt):
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
        raise Reject("address_line1", "the address is longer than 300 characters in all")
    contacts.append(contact("postal", postal, None, address_zones, priority=1))
    return AccountIn(
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
             if not blank(d.get(name))]  # fmt: skip
    if not given:
        return dict.fromkeys(_ITEMIZATION_FIELDS + _SINCE_ITEMIZATION_FIELDS)
    for name in _ITEMIZATION_FIELDS:
        if name not in given:
            raise Reject(name, f"required with {given[0]}")
    when = cast(dt.date, date(d.get("itemization_date"), "itemization_date"))
    if when > balance_as_of:
        raise Reject("itemization_date", "after balance_as_of (the reference date is past)")
    kind = choice(d.get("itemization_kind"), "itemization_kind", ITEMIZATION_KINDS)
    if kind == "charge_off" and charge_off_date is not None and when != charge_off_date:
        raise Reject("itemization_date", "differs from charge_off_date for kind charge_off")
    values: dict[str, Any] = {
        "itemization_date": when,
        "itemization_kind": kind,
        "itemization_amount": money(d.get("itemization_amount"), "itemization_amount"),
    }
    for name in _SINCE_ITEMIZATION_FIELDS:
        values[name] = None if blank(d.get(name)) else money(d.get(name), name)
    return values


def _inconvenient_times(value: Any) -> str | None:
    """The consumer's inconvenient times in canonical text (policies.timeblocks), or None."""
    given = text(value, "inconvenient_times", max_len=500)
    try:
        canonical = normalize_times(given)
    except TimeBlockError as exc:
        raise Reject("inconvenient_times", str(exc)) from None
    if canonical is not None and len(canonical) > 500:
        raise Reject("inconvenient_times", "longer than 500 characters once written out")
    return canonical


def _region(value: Any, country: str) -> str | None:
    # A US account may come without its state: its candidate zones are then every clock of
    # the states (outreach.kernel.zones.US_NO_STATE_ZONES). China still needs its province.
    region = text(value, "region", required=country == "CN", max_len=16)
    if region is None:
        return None
    code = region.upper().removeprefix(f"{country}-")
    if country == "US" and code not in zones.US_STATE_ZONES:
        raise Reject("region", f"{shown_value(value)} is not a US state code")
    if country == "CN" and code not in zones.CN_PROVINCES:
        raise Reject("region", f"{shown_value(value)} is not an ISO 3166-2:CN province code")
    return code if country in ("US", "CN") else region


def _postal_code(value: Any, country: str) -> str | None:
    check = _POSTAL_FORMATS.get(country)
    code = text(value, "postal_code", required=check is not None, max_len=20)
    if code is not None and check is not None and check[0].fullmatch(code) is None:
        raise Reject("postal_code", check[1])
    return code


# --- writing ------------------------------------------------------------------------------------


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


def _account_values(item: AccountIn, person_id: int) -> dict[str, Any]:
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
    """A stored date: a date already (PostgreSQL) or ISO text (SQLite, see upsert.stored)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


@dataclass(slots=True)
class AccountRef:
    id: int
    person_id: int
    country: str


def write_accounts(
    conn: Connection, accounts: list[AccountIn], stamp: dt.datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Upsert persons, accounts, contact points; return refs first created in this chunk
    with the line that created them (rows above that line must not see them)."""
    if not accounts:
        return {}, {}
    person_wants = collapse(Want(a.person_ref, a.person, a.person_final, a) for a in accounts)
    cols = [PERSON.c.id, PERSON.c.person_ref, *(PERSON.c[c] for c in _PERSON_COLS)]
    existing = {r.person_ref: r for r in select_in(conn, cols, PERSON.c.person_ref, person_wants)}
    person_outcome = sync(conn, PERSON, person_wants.values(), existing, _PERSON_COLS, stamp)
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
    for r in select_in(conn, [PERSON.c.id, PERSON.c.person_ref], PERSON.c.person_ref, created):
        person_ids[r.person_ref] = r.id
    for ref, want in person_wants.items():
        if person_outcome[ref] != UNCHANGED:
            want.source.changed = True

    account_wants = collapse(
        Want(a.account_ref, _account_values(a, person_ids[a.person_ref]), a.final, a)
        for a in accounts
        if a.person_ref in person_ids
    )
    cols = [ACCOUNT.c.id, ACCOUNT.c.account_ref, *(ACCOUNT.c[c] for c in _ACCOUNT_COLS)]
    existing_accounts = {
        r.account_ref: r for r in select_in(conn, cols, ACCOUNT.c.account_ref, account_wants)
    }
    for ref, want in account_wants.items():
        if ref in existing_accounts:
            _merge_recorded_dates(want.values, existing_accounts[ref])
    account_outcome = sync(
        conn, ACCOUNT, account_wants.values(), existing_accounts, _ACCOUNT_COLS, stamp
    )

    _contact_points(conn, accounts, person_ids, moved, stamp)

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
    conn: Connection,
    accounts: list[AccountIn],
    person_ids: Mapping[str, int],
    moved: set[str],
    stamp: dt.datetime,
) -> None:
    wants: list[Want] = []
    for a in accounts:
        pid = person_ids[a.person_ref]
        for cp in a.contacts:
            values = cp | {"person_id": pid}
            wants.append(Want((pid, cp["kind"], cp["value"]), values, a.person_final, a))
    chosen = collapse(wants)
    cols = [
        CONTACT_POINT.c.id, CONTACT_POINT.c.person_id, CONTACT_POINT.c.kind,
        CONTACT_POINT.c.value, CONTACT_POINT.c.valid,
        *(CONTACT_POINT.c[c] for c in _CONTACT_COLS),
    ]  # fmt: skip
    rows = select_in(conn, cols, CONTACT_POINT.c.person_id, set(person_ids.values()))
    existing = {(r.person_id, r.kind, r.value): r for r in rows}
    outcome = sync(conn, CONTACT_POINT, chosen.values(), existing, _CONTACT_COLS, stamp)
    for key, want in chosen.items():
        if outcome[key] != UNCHANGED:
            want.source.changed = True

    # The address a full row gives is the person's one valid postal point. An address the
    # lender just changed to is valid even if it once bounced; the same address sent again
    # leaves a returned-mail invalidation alone. Read after the inserts: a superseded row of
    # this chunk may just have added an older address.
    current: dict[int, Want] = {
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
    for r in select_in(conn, cols, CONTACT_POINT.c.person_id, current):
        want = current[r.person_id]
        if r.kind != "postal":
            continue
        if r.value != want.values["value"] and r.valid:
            flips.append({"b_id": r.id, "b_valid": False, "b_updated_at": stamp})
            want.source.changed = True
        elif not r.valid and r.value == want.values["value"] and r.person_id in moved_ids:
            flips.append({"b_id": r.id, "b_valid": True, "b_updated_at": stamp})
            want.source.changed = True
    if flips:
        conn.execute(
            update(CONTACT_POINT)
            .where(CONTACT_POINT.c.id == bindparam("b_id"))
            .values(valid=bindparam("b_valid"), updated_at=bindparam("b_updated_at")),
            flips,
        )


def known_accounts(conn: Connection, refs: Collection[str]) -> dict[str, AccountRef]:
    cols = [
        ACCOUNT.c.id,
        ACCOUNT.c.account_ref,
        ACCOUNT.c.person_id,
        ACCOUNT.c.jurisdiction_country,
    ]
    return {
        r.account_ref: AccountRef(r.id, r.person_id, r.jurisdiction_country)
        for r in select_in(conn, cols, ACCOUNT.c.account_ref, refs)
    }
