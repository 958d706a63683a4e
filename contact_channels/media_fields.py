"""What our own media's ``OutboundMessage.fields`` carry, written down once: one frozen
dataclass per channel kind that has fields (``CallFields``, ``LetterFields``,
``PlacementFields``, ``LegalFields``), and ``Refusal``, the marker a placement or a referral
carries instead when the hooks found a reason it must not happen.

The outreach hooks of each kind (``outreach.media.*``) build the dataclass, so mypy checks every
key they set; the dispatcher puts ``as_fields()`` in the message (the wire stays a plain
mapping: a message may be built by hand, or cross a process boundary); each adapter reads it
back once with ``from_fields(message.fields)``. ``from_fields`` checks the keys, not their
values: an unknown key, or a required one missing (or None), is a ``FieldsError`` naming the kind
and the keys, never a value (fields hold personal data). Each adapter converts and checks the
values as before.

Nested blocks stay plain dicts on the wire; their keys are the ``TypedDict``s below. Imports
nothing of ``outreach`` or ``policies``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypedDict

from contact_channels.base import PermanentError


class FieldsError(PermanentError):
    """A message's fields do not fit its kind: ``keys`` unknown or missing. A bug upstream (the
    hooks write every key): the contact fails with ``code`` and nothing is written."""

    def __init__(self, kind: str, problem: str, keys: list[str], *, code: str) -> None:
        super().__init__(f"{kind} fields: {problem} {', '.join(keys)}", code=code)
        self.kind, self.keys = kind, tuple(keys)


class MediaFields:
    """What every kind's fields share: the kind, the plain mapping for the wire and the check
    of a mapping's keys. ``CODE`` is the error code of a mapping that does not fit;
    ``MISSING_CODES`` gives some required keys a code of their own when they are missing (the
    check the adapter made first before these classes)."""

    __slots__ = ()
    KIND: ClassVar[str]
    CODE: ClassVar[str] = "bad_fields"
    MISSING_CODES: ClassVar[Mapping[str, str]] = {}

    def as_fields(self) -> dict[str, Any]:
        """The mapping ``OutboundMessage.fields`` carries: every key, in field order; a key the
        hooks leave out when there is nothing to say (an optional block) is left out when None."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if not (f.metadata.get("omit_none") and getattr(self, f.name) is None)
        }

    @classmethod
    def _checked(cls, fields: Mapping[str, Any]) -> Self:
        """``cls`` from a mapping; FieldsError for an unknown key or a required one missing."""
        known = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = {f.name for f in known}
        unknown = sorted(str(k) for k in fields if k not in names)
        if unknown:
            raise FieldsError(cls.KIND, "unknown keys" if len(unknown) > 1 else "unknown key",
                              unknown, code=cls.CODE)  # fmt: skip
        missing = [
            f.name
            for f in known
            if f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and fields.get(f.name) is None
        ]
        if missing:
            code = next((cls.MISSING_CODES[k] for k in missing if k in cls.MISSING_CODES), cls.CODE)
            raise FieldsError(cls.KIND, "missing keys" if len(missing) > 1 else "missing key",
                              missing, code=code)  # fmt: skip
        return cls(**fields)


def _optional() -> Any:
    """An optional block: None unless the hooks have something to say, and then left off the wire."""
    return dataclasses.field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True, slots=True)
class Refusal(MediaFields):
    """A placement or referral the hooks refuse (no agency or firm, already placed or referred,
    a recall reason): the adapter raises ``PermanentError`` with ``refusal`` as its code."""

    KIND: ClassVar[str] = "refusal"
    refusal: str

    @staticmethod
    def in_fields(fields: Mapping[str, Any]) -> Refusal | None:
        """The refusal a mapping carries, if any (an empty one is none)."""
        refusal = fields.get("refusal")
        return Refusal(str(refusal)) if refusal else None


def _without_refusal(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    return {k: v for k, v in fields.items() if k != "refusal"} if "refusal" in fields else fields


# --- call ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFields(MediaFields):
    """A call task (``outreach.media.calls.hooks.CallQueueHooks`` -> ``agent_queue``): the
    account, the number, the priority and the window (UTC instants, or ISO text)."""

    KIND: ClassVar[str] = "call"
    CODE: ClassVar[str] = "bad_fields"
    MISSING_CODES: ClassVar[Mapping[str, str]] = {
        "account_id": "missing_fields", "priority": "missing_fields",
        "due_start": "missing_fields", "due_end": "missing_fields",
    }  # fmt: skip

    account_id: int
    contact_point_id: int | None = None
    priority: int
    due_start: dt.datetime | str
    due_end: dt.datetime | str

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CallFields:
        return cls._checked(fields)


# --- letter -------------------------------------------------------------------------------------


class LetterRecipient(TypedDict):
    name: str
    lines: list[str]
    postal_code: str | None
    country: str | None


class LetterSender(TypedDict):
    name: str
    lines: list[str]
    phone: str


class LetterAmounts(TypedDict):
    currency: str
    past_due: str
    balance: str
    due_date: str | None
    days_past_due: int


class ValidationNotice(TypedDict):
    """The Regulation F validation notice's itemization and validation period."""

    currency: str
    itemization_date: str
    itemization_basis: str
    amount_on_itemization_date: str
    interest: str
    fees: str
    payments_credits: str
    current_amount: str
    sent_on: str
    assumed_receipt: str
    validation_period_ends: str
    collector: str
    collector_lines: list[str]
    creditor_then: str
    creditor_now: str
    account_number: str


class VerificationNotice(TypedDict):
    """A dispute's verification (12 CFR 1006.38(d)(2)(i), 15 U.S.C. 1692g(b)): the
    itemization of the debt (its figures empty when none is on record), the creditor, and for a
    request for the original creditor its name and address (``original_creditor_lines`` empty
    when it is the current creditor, whose details the letter gives)."""

    currency: str
    disputed_on: str
    itemization_date: str
    itemization_basis: str
    amount_on_itemization_date: str
    interest: str
    fees: str
    payments_credits: str
    current_amount: str
    creditor: str
    account_number: str
    original_creditor_requested: bool
    original_creditor: str
    original_creditor_lines: list[str]


class InstalmentPlan(TypedDict):
    months: int
    monthly: str
    final: str
    total: str
    first_due: str
    last_due: str


class InstalmentOffer(TypedDict):
    currency: str
    basis: str  # balance | past_due
    amount: str
    respond_by: str
    options: list[InstalmentPlan]


class CnNotice(TypedDict):
    """What the China pack's letter requirement asks a collection letter to say."""

    phone: str
    creditor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LetterFields(MediaFields):
    """A letter's structured content (``outreach.media.letters.mailing.LetterHooks`` -> the
    print channel): who it goes to and comes from, the amounts and, by the letter's purpose,
    the validation notice (with the English text of a translated one), the China notice, the
    instalment offer, a dispute's verification. Only ``letter_date`` is required here: the print channel refuses a letter
    without a postal address, or without a batch when it has no ledger row, as before."""

    KIND: ClassVar[str] = "letter"

    account_id: int | None = None
    account_ref: str | None = None
    account_last4: str | None = None
    batch_date: str | None = None
    letter_date: str
    language: str | None = None
    template: str | None = None
    purpose: str | None = None
    recipient: LetterRecipient | None = None
    sender: LetterSender | None = None
    amounts: LetterAmounts | None = None
    validation: ValidationNotice | None = _optional()
    english: str | None = _optional()
    cn_notice: CnNotice | None = _optional()
    instalments: InstalmentOffer | None = _optional()
    verification: VerificationNotice | None = _optional()

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> LetterFields:
        return cls._checked(fields)


# --- agency -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementFields(MediaFields):
    """A placement (``outreach.media.agency.placement.PlacementHooks`` -> ``agency_files``):
    the agency, its capacity, the dates, and the account's placement line (text, '' when
    unknown; the adapter reads its ``balance``)."""

    KIND: ClassVar[str] = "agency"
    CODE: ClassVar[str] = "placement.incomplete"
    MISSING_CODES: ClassVar[Mapping[str, str]] = {"agency": "no_agency"}

    # The placement line (outreach.media.agency.placement.account_lines).
    account_ref: str = ""
    full_name: str = ""
    address_line1: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    currency: str = ""
    charge_off_date: str = ""
    last_payment_date: str = ""
    phone1: str = ""
    phone2: str = ""
    phone3: str = ""
    balance: str
    past_due: str = ""
    # The placement.
    account_id: int
    agency: str
    agency_capacity: int | None = None
    placed_on: str
    recall_due_on: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> PlacementFields | Refusal:
        return Refusal.in_fields(fields) or cls._checked(_without_refusal(fields))


# --- legal --------------------------------------------------------------------------------------


class CaseTable(TypedDict):
    """One CSV of the case package: its columns and its rows (text by column)."""

    columns: list[str]
    rows: list[dict[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class LegalFields(MediaFields):
    """A case package's content (``outreach.media.legal.referral.LegalHooks`` ->
    ``legal_package``): the account, the firm and where its files go, the summary's lines,
    the manifest (the adapter adds the file list), the contact history and the payments."""

    KIND: ClassVar[str] = "legal"
    CODE: ClassVar[str] = "legal.incomplete"

    account_id: int
    account_ref: str
    firm: str
    firm_name: str = ""
    referred_on: str
    balance: str
    title: str
    summary: list[list[str]]
    manifest: dict[str, Any]
    history: CaseTable
    payments: CaseTable
    drop: str | None = None
    conn_id: str | None = None

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> LegalFields | Refusal:
        return Refusal.in_fields(fields) or cls._checked(_without_refusal(fields))


FIELDS_FOR_KIND: Mapping[str, type[MediaFields]] = {
    cls.KIND: cls for cls in (CallFields, LetterFields, PlacementFields, LegalFields)
}
