"""Letters: what each letter says beyond its template (the validation notice's itemization and
validation period, an instalment offer's plans, the postal address), the daily print batch
for the mail house, and the mail it sends back.

``LetterHooks`` (the dispatcher's hooks for ``letter``) fills ``OutboundMessage.fields``;
``contact_channels.letters.PrintChannel`` lays them out. ``close_print_batch`` writes the day's
manifest; ``import_returned_mail`` marks the addresses letters came back from. Format and
sources of every field: docs/letters.md.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from contact_channels.csvsafe import restore, safe_writer
from contact_channels.letters import (
    BACKEND,
    DEFAULT_MAIL_HOUSE,
    DOCUMENT_KIND,
    drop_root,
    insert_document,
    is_complete_pdf,
    letter_path,
    read_manifest_line,
    write_file,
)
from outreach import settings
from outreach.kernel.facts import as_date
from outreach.kernel.identity import identity
from outreach.kernel.ledger import DueContact
from outreach.planning.kinds import ChannelHooks, MessageContext, channel_settings
from outreach.planning.messages import brand, message_context, money, render
from outreach.portfolio.files import ImportFileError
from policies.calendar import validation_period
from policies.model import ROLES, SELF, Verdict
from policies.packs import all_packs, jurisdiction, packs_for

log = logging.getLogger(__name__)

MANIFEST_KIND = "print_manifest"
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "key", "account_ref", "template", "language", "pages", "sha256", "size", "file_name",
    "recipient_name", "address_line_1", "address_line_2", "address_line_3", "address_line_4",
    "postal_code", "country",
)  # fmt: skip
ADDRESS_COLUMNS = 4

# Instalment offers: the plans offered, when the first payment falls due and by when to accept,
# counted from the letter's date. A plan whose payment would be below the minimum is left out
# (the shortest is always offered).
INSTALMENT_TERMS = (3, 6, 12)
MIN_INSTALMENT = Decimal("10.00")
FIRST_INSTALMENT_AFTER = dt.timedelta(days=30)
ACCEPT_WITHIN = dt.timedelta(days=21)
CENT = Decimal("0.01")

# The rule whose parameters give the validation period (policies' own, never restated here).
VALIDATION_PACK, VALIDATION_CHECK = "us_reg_f", "validation_period"

RETURNED_MAIL_COLUMNS = ("key", "account_ref", "returned_on", "reason")
MAX_REASON = 120


# --- what a letter says ---------------------------------------------------------------------------


def collector(language: str | None = None) -> tuple[str, list[str]]:
    """Who writes the letter and where disputes go: the sender's name (the collector's for role
    collector, the creditor's for role creditor: the same name the template signs with; in
    Chinese the Chinese name when configured) and the mailing address lines
    (``outreach.kernel.identity``; nothing has a default)."""
    from outreach.kernel.policy_settings import policy_settings

    who = identity(policy_settings().role).localized(language, None)
    return who.sender, list(who.address_lines)


def validation_period_for(sent_on: dt.date) -> tuple[dt.date, dt.date]:
    """(assumed receipt, last day of the validation period) for a notice sent on ``sent_on``,
    with the parameters of the Regulation F rule in force that day (us_reg_f's
    ``validation_period`` check), computed by ``policies.calendar.validation_period``: the
    gate's own arithmetic, so the letter and the gate agree on the date."""
    for pack in all_packs():
        if pack.name != VALIDATION_PACK or not pack.in_force(sent_on):
            continue
        for rule in pack.rules:
            if rule.check == VALIDATION_CHECK and rule.in_force(sent_on):
                return validation_period(
                    sent_on, rule.params["receipt_business_days"], rule.params["period_days"]
                )
    raise LookupError(f"no {VALIDATION_PACK} {VALIDATION_CHECK} rule in force on {sent_on}")


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, on the month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class InstalmentOption:
    months: int
    monthly: Decimal  # every payment but the last
    final: Decimal  # the last takes the cents the division left over
    first_due: dt.date
    last_due: dt.date

    @property
    def total(self) -> Decimal:
        return self.monthly * (self.months - 1) + self.final


def instalment_options(
    amount: Decimal,
    first_due: dt.date,
    terms: Iterable[int] = INSTALMENT_TERMS,
    minimum: Decimal = MIN_INSTALMENT,
) -> list[InstalmentOption]:
    """Monthly plans paying exactly ``amount``: each payment rounded down to the cent, the
    last one carrying the remainder, so the payments always add up to the amount."""
    options: list[InstalmentOption] = []
    for months in sorted(set(terms)):
        monthly = (amount / months).quantize(CENT, rounding=ROUND_DOWN)
        if monthly < minimum and options:
            break  # longer plans only get smaller
        final = amount - monthly * (months - 1)
        options.append(
            InstalmentOption(months, monthly, final, first_due, add_months(first_due, months - 1))
        )
    return options


@dataclass(frozen=True, slots=True)
class Itemization:
    """The Regulation F itemization (12 CFR 1006.34(c)(2)(vi)-(ix))."""

    date: dt.date
    basis: str  # last_statement | charge_off | last_payment | transaction | judgment
    amount_then: Decimal
    interest: Decimal
    fees: Decimal
    payments_credits: Decimal
    current: Decimal


class ItemizationUnknown(ValueError):
    """The account has no itemization a validation notice can state (the gate's
    ``us_reg_f.itemization_unknown`` blocks such a notice before it gets here)."""


def itemize(
    current: Decimal,
    itemization_date: dt.date | None,
    itemization_kind: str | None,
    itemization_amount: Decimal | None,
    interest_since: Decimal | None,
    fees_since: Decimal | None,
    payments_since: Decimal,
) -> Itemization:
    """The itemization of a debt whose current amount is ``current``, from the imported
    reference date (one of the five 1006.34(b)(3) allows), the amount owed that day and the
    interest and fees charged since (none imported: none charged); the payments and credits
    since come from the payment records. Figures that do not add up to ``current`` are refused:
    the notice would contradict itself."""
    if itemization_date is None or itemization_kind is None or itemization_amount is None:
        raise ItemizationUnknown("no itemization date, kind and amount imported")
    interest, fees = interest_since or Decimal("0.00"), fees_since or Decimal("0.00")
    if itemization_amount + interest + fees - payments_since != current:
        raise ItemizationUnknown("the itemization does not add up to the current amount")
    return Itemization(itemization_date, itemization_kind, itemization_amount, interest, fees,
                       payments_since, current)  # fmt: skip


# ISO 3166-2:CN subdivision codes and the names a Chinese address prints (GB/T 2260).
CN_PROVINCE_NAMES: Mapping[str, str] = {
    "BJ": "北京市", "TJ": "天津市", "HE": "河北省", "SX": "山西省", "NM": "内蒙古自治区",
    "LN": "辽宁省", "JL": "吉林省", "HL": "黑龙江省", "SH": "上海市", "JS": "江苏省",
    "ZJ": "浙江省", "AH": "安徽省", "FJ": "福建省", "JX": "江西省", "SD": "山东省",
    "HA": "河南省", "HB": "湖北省", "HN": "湖南省", "GD": "广东省", "GX": "广西壮族自治区",
    "HI": "海南省", "CQ": "重庆市", "SC": "四川省", "GZ": "贵州省", "YN": "云南省",
    "XZ": "西藏自治区", "SN": "陕西省", "GS": "甘肃省", "QH": "青海省", "NX": "宁夏回族自治区",
    "XJ": "新疆维吾尔自治区",
}  # fmt: skip


def _cn_place(region: str | None, city: str | None) -> str | None:
    """Province then city, as a Chinese address writes them; a municipality (上海市) once."""
    province = CN_PROVINCE_NAMES.get((region or "").upper(), region or "")
    city = (city or "").strip()
    if province and city and city.rstrip("市") == province.rstrip("市"):
        city = ""
    return "".join(x for x in (province, city) if x) or None


def address_lines(
    country: str | None,
    address_line1: str | None,
    city: str | None,
    region: str | None,
    postal_code: str | None,
) -> list[str]:
    """The address block's lines below the name, in the country's order."""
    if country == "US":
        last = " ".join(x for x in (f"{city}," if city else None, region, postal_code) if x)
        lines = [address_line1, last.rstrip(",")]
    elif country == "CN":
        lines = [_cn_place(region, city), address_line1, postal_code]
    else:
        lines = [address_line1, city, " ".join(x for x in (region, postal_code) if x), country]
    return [x for x in lines if x]


def _money(value: Decimal) -> str:
    return money(value.quantize(CENT))


class LetterHooks(ChannelHooks):
    """Fills a letter's ``fields`` for the print medium: recipient, sender, amounts and, by the
    action's purpose, the validation notice or the instalment offer."""

    def prepare(self, conn: Connection, contacts: Sequence[DueContact], day: dt.date) -> None:
        self._recipients = recipient_rows(conn, [c.key for c in contacts])

    def fields(self, ctx: MessageContext, verdict: Verdict) -> dict[str, Any]:
        rows = getattr(self, "_recipients", None)
        row = rows.get(ctx.contact.key) if rows is not None else None
        return letter_fields(ctx, row)


def recipient_rows(conn: Connection, keys: Sequence[str]) -> dict[str, Any]:
    """Per ledger key, what a letter's address block and itemisation read: one query for a
    group of letters."""
    if not keys:
        return {}
    rows = conn.execute(
        text(
            "SELECT c.key, a.balance_as_of, a.charge_off_date, p.full_name, p.address_line1, "
            "p.city, p.region, p.postal_code, p.country, cp.kind, cp.value, cp.relation, "
            "a.itemization_date, a.itemization_kind, a.itemization_amount, "
            "a.interest_since_itemization, a.fees_since_itemization "
            "FROM contact c JOIN account a ON a.id = c.account_id "
            "JOIN person p ON p.id = a.person_id "
            "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id WHERE c.key IN :keys"
        ).bindparams(bindparam("keys", expanding=True)),
        {"keys": list(keys)},
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def letter_fields(ctx: MessageContext, row: Any = None) -> dict[str, Any]:
    """``OutboundMessage.fields`` of one letter (personal data: never logged). ``row`` is the
    contact's ``recipient_rows`` entry, read here when not given."""
    account, pd, contact = ctx.account, ctx.personal, ctx.contact
    if row is None:
        row = recipient_rows(ctx.conn, [contact.key])[contact.key]
    charge_off_date = as_date(row[1])
    language = str(pd["language"])
    currency = str(pd["currency"])
    purpose = ctx.action.gate_purpose if ctx.action is not None else None
    # A translated validation notice opens with the English one: its sender block is English.
    bilingual = purpose == "validation_notice" and not language.startswith("en")
    creditor = brand(language=None if bilingual else language)["creditor"]
    collector_name, collector_lines = collector(None if bilingual else language)
    phone = brand(country=account.country)["phone"]
    template = contact.template or ""
    days_past_due = (ctx.day - account.due_date).days if account.due_date else 0

    fields: dict[str, Any] = {
        "account_id": account.id,
        "account_ref": account.account_ref,
        "account_last4": account.account_ref[-4:],
        "batch_date": ctx.day.isoformat(),
        "letter_date": ctx.day.isoformat(),
        "language": language,
        "template": template,
        "purpose": purpose,
        "recipient": _recipient(row, language),
        "sender": {"name": collector_name, "lines": collector_lines, "phone": phone},
        "amounts": {
            "currency": currency,
            "past_due": _money(account.past_due),
            "balance": _money(account.balance),
            "due_date": account.due_date.isoformat() if account.due_date else None,
            "days_past_due": days_past_due,
        },
    }
    if purpose == "validation_notice" or template.endswith("/validation_notice"):
        fields["validation"] = _validation(ctx, currency, creditor, collector_name,
                                           collector_lines, row)  # fmt: skip
        if not language.startswith("en"):
            # 12 CFR 1006.34(e): a translated notice goes with the English one, in the same
            # letter: the English text first, the translation after it.
            fields["english"] = english_body(ctx, template)
    wanted = letter_requirements(account, ctx.day, purpose)
    if "cn.collection_notice_contents" in wanted:
        fields["cn_notice"] = {"phone": phone, "creditor": brand(language=language)["creditor"]}
    if purpose == "instalment_offer" or template.endswith("/instalment_offer"):
        fields["instalments"] = _instalments(ctx, currency, charge_off_date)
    return fields


def letter_requirements(account: Any, day: dt.date, purpose: str | None) -> set[str]:
    """The ids of the letter requirements of the packs in force for the account (either
    role) that apply to a letter of ``purpose``."""
    found: set[str] = set()
    for role in ROLES:
        j = jurisdiction(account.country, account.region, account.city, account.product, role)
        for pack in packs_for(j, day):
            found.update(r.requirement_id for r in pack.letter_requirements
                         if purpose in r.purposes)  # fmt: skip
    return found


def _recipient(row: Any, language: str) -> dict[str, Any] | None:
    full_name = row[2]
    kind, value, relation = row[8], row[9], row[10]
    if kind == "postal" and relation and relation != SELF and value:
        # Another person's address (an estate's representative): the contact point's own text.
        name = f"{full_name}的遗产管理人" if language.startswith("zh") else f"Estate of {full_name}"
        return {"name": name, "lines": [x.strip() for x in str(value).split(",") if x.strip()],
                "postal_code": None, "country": None}  # fmt: skip
    lines = address_lines(row[7], row[3], row[4], row[5], row[6])
    if not lines:
        return None  # PrintChannel refuses a letter without an address
    return {"name": full_name, "lines": lines, "postal_code": row[6], "country": row[7]}


def english_body(ctx: MessageContext, template: str) -> str:
    """The English text of a letter's template, rendered with the context the dispatcher
    renders the consumer's language with (the translation's original)."""
    pd, account = ctx.personal, ctx.account
    context = message_context(
        full_name=str(pd["full_name"]), language="en", account_ref=account.account_ref,
        amount_past_due=account.past_due, balance=account.balance,
        currency=str(pd["currency"]),
        days_past_due=(ctx.day - account.due_date).days if account.due_date else 0,
        address=pd.get("address"),
    )  # fmt: skip
    return render(template, "en", "letter", context).text


def notice_sent_on(ctx: MessageContext) -> dt.date:
    """The day the notice counts from, as the dispatcher records it (``validation_notice_sent_on``):
    the day it is mailed, its print batch (the contact's plan day, the consumer's local day), not
    the send instant's UTC date, which is the eve for a zone east of UTC (Guam, China)."""
    return ctx.contact.plan_date


def _validation(
    ctx: MessageContext,
    currency: str,
    creditor: str,
    collector_name: str,
    collector_lines: list[str],
    row: Any,
) -> dict[str, Any]:
    since = as_date(row[11])
    paid = ctx.conn.execute(
        text(
            "SELECT COALESCE(SUM(amount), 0) FROM payment WHERE account_id = :a "
            "AND paid_on > :since AND paid_on <= :day"
        ),
        {"a": ctx.account.id, "since": since, "day": ctx.day},
    ).scalar_one()

    def amount(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value)).quantize(CENT)

    item = itemize(ctx.account.balance, since, row[12], amount(row[13]), amount(row[14]),
                   amount(row[15]), Decimal(str(paid)).quantize(CENT))  # fmt: skip
    sent_on = notice_sent_on(ctx)
    receipt, last_day = validation_period_for(sent_on)
    return {
        "currency": currency,
        "itemization_date": item.date.isoformat(),
        "itemization_basis": item.basis,
        "amount_on_itemization_date": _money(item.amount_then),
        "interest": _money(item.interest),
        "fees": _money(item.fees),
        "payments_credits": _money(item.payments_credits),
        "current_amount": _money(item.current),
        "sent_on": sent_on.isoformat(),
        "assumed_receipt": receipt.isoformat(),
        "validation_period_ends": last_day.isoformat(),
        "collector": collector_name,
        "collector_lines": collector_lines,
        # One creditor is known (the brand): the creditor on the itemization date and now.
        "creditor_then": creditor,
        "creditor_now": creditor,
        "account_number": f"**** {ctx.account.account_ref[-4:]}",
    }


def _instalments(
    ctx: MessageContext, currency: str, charge_off_date: dt.date | None
) -> dict[str, Any]:
    # A charged-off debt is due in full: spread the balance. Otherwise catch up the arrears
    # over the plan while the regular payments go on.
    basis = "balance" if charge_off_date else "past_due"
    amount = (ctx.account.balance if basis == "balance" else ctx.account.past_due).quantize(CENT)
    first_due = ctx.day + FIRST_INSTALMENT_AFTER
    return {
        "currency": currency,
        "basis": basis,
        "amount": _money(amount),
        "respond_by": (ctx.day + ACCEPT_WITHIN).isoformat(),
        "options": [
            {
                "months": o.months,
                "monthly": _money(o.monthly),
                "final": _money(o.final),
                "total": _money(o.total),
                "first_due": o.first_due.isoformat(),
                "last_due": o.last_due.isoformat(),
            }
            for o in instalment_options(amount, first_due)
        ],
    }


def template_extras(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Flat template variables from a letter's ``fields``, for a dispatcher that merges them
    into the letter template's context (see docs/letters.md, "Template variables"): the letter
    date, the validation notice's dates and amounts, the instalment plans."""
    v = fields.get("validation") or {}
    plan = fields.get("instalments") or {}
    extras: dict[str, Any] = {
        "letter_date": fields.get("letter_date", ""),
        "validation_period_ends": v.get("validation_period_ends", ""),
        "itemization_date": v.get("itemization_date", ""),
        "amount_on_itemization_date": v.get("amount_on_itemization_date", ""),
        "current_amount": v.get("current_amount", ""),
        "instalment_respond_by": plan.get("respond_by", ""),
        "instalment_plans": [dict(o) for o in plan.get("options", ())],
    }
    return extras


def sample_template_extras(language: str) -> dict[str, Any]:
    """Long sample values of ``template_extras`` for the template lint, once the dispatcher
    merges them into letter contexts (docs/letters.md, "Template variables")."""
    del language  # the same figures in every language
    plans = [
        {"months": m, "monthly": "41,152.26", "final": "41,152.26", "total": "123,456.78",
         "first_due": "2026-12-31", "last_due": "2027-11-30"}
        for m in INSTALMENT_TERMS
    ]  # fmt: skip
    return {
        "letter_date": "2026-11-23",
        "validation_period_ends": "2026-12-31",
        "itemization_date": "2026-10-01",
        "amount_on_itemization_date": "123,456.78",
        "current_amount": "123,456.78",
        "instalment_respond_by": "2026-12-14",
        "instalment_plans": plans,
    }


# --- the print batch ----------------------------------------------------------------------------


def _letter_settings(drop_url: str | None) -> dict[str, Any]:
    section = dict(channel_settings("letter"))
    if drop_url:
        section["drop"] = drop_url
    return section


def close_print_batch(engine: Engine, day: dt.date, drop_url: str | None = None) -> dict[str, int]:
    """Write ``<drop>/<day>/manifest.csv`` for the mail house: one line per letter the ledger
    has sent for ``day``, sorted by key, from the letters as written (each PDF carries its
    line; its bytes are checked against its document row). Letters a lost worker wrote but never
    recorded get their document row here first. A rerun writes the same bytes and no second
    document row; letters settled since (a recovered send) rewrite the manifest and its row.
    Counts only (XCom-safe)."""
    section = _letter_settings(drop_url)
    root = drop_root(section, None if section.get("drop") else settings.data_dir())
    mail_house = str(section.get("mail_house") or DEFAULT_MAIL_HOUSE)
    recorded_late = _record_unrecorded(engine, root, day, mail_house)
    with engine.connect() as conn:
        letters = conn.execute(
            text(
                "SELECT c.key, d.path, d.sha256, d.size FROM contact c "
                "JOIN document d ON d.ledger_key = c.key AND d.kind = :kind "
                "WHERE c.channel = 'letter' AND c.plan_date = :day AND c.state = 'sent' "
                "ORDER BY c.key, d.id"
            ),
            {"kind": DOCUMENT_KIND, "day": day},
        ).all()
        in_doubt = conn.execute(
            text(
                "SELECT COUNT(*) FROM contact WHERE channel = 'letter' AND plan_date = :day "
                "AND state IN ('sending', 'uncertain')"
            ),
            {"day": day},
        ).scalar_one()
    folder = root / day.isoformat()
    out = io.StringIO()
    # For the mail house: every cell neutralised (names and addresses are the lender's text).
    writer = safe_writer(out, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    pages = 0
    seen: set[str] = set()
    for key, path, sha256, size in letters:
        if key in seen:
            continue  # one file per key; a second row (another drop) is the same letter
        seen.add(key)
        data = _open(path, section).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(
                f"letter {key[:16]}: the file at its document row's path does not match the "
                "recorded sha256; the batch is not closed"
            )
        line = read_manifest_line(data)
        if line is None:
            raise ValueError(f"letter {key[:16]}: the file carries no manifest line")
        pages += int(line["pages"])
        address = list(line.get("address_lines") or [])
        if len(address) > ADDRESS_COLUMNS:
            address = address[: ADDRESS_COLUMNS - 1] + [", ".join(address[ADDRESS_COLUMNS - 1 :])]
        address += [""] * (ADDRESS_COLUMNS - len(address))
        writer.writerow(
            [
                key,
                line.get("account_ref", ""),
                line.get("template", ""),
                line.get("language", ""),
                line["pages"],
                sha256,
                size,
                _relative(str(path), str(folder)),
                line.get("recipient_name", ""),
                *address,
                line.get("postal_code", ""),
                line.get("country", ""),
            ]  # fmt: skip
        )
    data = out.getvalue().encode("utf-8")
    manifest = folder / MANIFEST_NAME
    written = write_file(manifest, data)
    _, new_row = insert_document(
        engine,
        kind=MANIFEST_KIND,
        batch_date=day,
        recipient=mail_house,
        path=str(manifest),
        data=data,
        ledger_key=None,
        account_id=None,
    )
    counts = {
        "letters": len(seen),
        "pages": pages,
        "in_doubt": int(in_doubt),
        "recorded_late": recorded_late,
        "manifest_written": int(written),
        "document_rows": int(new_row),
    }
    log.info("print batch %s: %s", day, counts)
    return counts


def _record_unrecorded(engine: Engine, root: Any, day: dt.date, mail_house: str) -> int:
    """Record the ``document`` rows of letters the ledger has sent without one: their worker
    was lost between writing the file and recording it, and the medium's lookup (which only
    reads) settled them as sent. A sent letter with no complete file stops the close."""
    with engine.connect() as conn:
        missing = conn.execute(
            text(
                "SELECT c.key, c.account_id FROM contact c LEFT JOIN document d "
                "ON d.ledger_key = c.key AND d.kind = :kind WHERE c.channel = 'letter' "
                "AND c.plan_date = :day AND c.state = 'sent' AND c.backend = :backend "
                "AND d.id IS NULL ORDER BY c.key"
            ),
            {"kind": DOCUMENT_KIND, "day": day, "backend": BACKEND},
        ).all()
    for key, account_id in missing:
        path = letter_path(root, day, key)
        data = path.read_bytes() if path.exists() else b""
        if not is_complete_pdf(data):
            raise ValueError(
                f"letter {key[:16]}: sent according to the ledger but there is no complete file "
                "at its path; the batch is not closed"
            )
        insert_document(
            engine,
            kind=DOCUMENT_KIND,
            batch_date=day,
            recipient=mail_house,
            path=str(path),
            data=data,
            ledger_key=key,
            account_id=account_id,
        )
    return len(missing)


def _open(path: str, section: Mapping[str, Any]) -> Any:
    from airflow.sdk import ObjectStoragePath

    conn_id = section.get("conn_id")
    return ObjectStoragePath(path, conn_id=str(conn_id)) if conn_id else ObjectStoragePath(path)


def _relative(path: str, folder: str) -> str:
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


# --- returned mail ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Returned:
    line: int
    record: Mapping[str, Any]


class _Reject(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _rows(
    path_or_rows: str | Path | Iterable[Mapping[str, Any]],
) -> tuple[str, Iterator[_Returned]]:
    """(source name, rows with the line they start on: the header is line 1)."""
    if isinstance(path_or_rows, (str, Path)):
        path = Path(path_or_rows)
        try:
            handle = path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ImportFileError(f"{path.name}: cannot read: {exc.strerror}") from None
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in ("returned_on", "reason") if c not in header]
        if missing or not {"key", "account_ref"} & set(header):
            handle.close()
            need = missing or ["key or account_ref"]
            raise ImportFileError(f"{path.name}: line 1: missing column {need[0]}")

        def from_file() -> Iterator[_Returned]:
            with handle:
                start = reader.line_num + 1
                for record in reader:
                    yield _Returned(start, record)
                    start = reader.line_num + 1

        return path.name, from_file()
    rows = list(path_or_rows)
    return "rows", iter(_Returned(i + 2, r) for i, r in enumerate(rows))


def _cell(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _event_ref(key: str) -> str:
    ref = f"mailhouse:returned:{key}"
    return (
        ref
        if len(ref) <= 64
        else f"mailhouse:returned:h:{hashlib.sha256(key.encode()).hexdigest()[:42]}"
    )


def import_returned_mail(
    engine: Engine,
    path_or_rows: str | Path | Iterable[Mapping[str, Any]],
    at: dt.datetime,
    *,
    rejects_path: Path | None = None,
) -> dict[str, Any]:
    """Record letters the mail house sent back: a CSV (``key`` or ``account_ref``,
    ``returned_on``, ``reason``) or rows with those fields (numbered as lines of such a CSV,
    the header being line 1).

    Each good row marks the letter's postal contact point invalid (later letters to it are
    blocked: ``core.no_destination``), records a ``contact_event`` (outcome ``returned_mail``,
    source ``mailhouse``, one per letter: a re-import changes nothing) and the ledger row's
    outcome. Bad rows are rejected with line, field and reason, as the portfolio import does;
    from a file they also go to a rejects file (JSON lines, as ``outreach import`` writes).
    Returns counts and the rejects' line, field and reason (no values: XCom-safe)."""
    at = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    source, rows = _rows(path_or_rows)
    counts = {"rows": 0, "returned": 0, "duplicate": 0, "rejected": 0}
    rejects: list[tuple[_Returned, str | None, str]] = []
    with engine.begin() as conn:
        for row in rows:
            counts["rows"] += 1
            try:
                applied = _apply_returned(conn, row.record, at)
            except _Reject as rej:
                rejects.append((row, rej.field, rej.reason))
                counts["rejected"] += 1
                continue
            counts["returned" if applied else "duplicate"] += 1
    written = None
    if rejects and (rejects_path is not None or source != "rows"):
        stem = Path(source).stem
        target = rejects_path or (
            settings.data_dir() / "rejects" / f"{stem}-{at:%Y%m%dT%H%M%S}.rejects.jsonl"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as handle:
            for row, field_name, reason in rejects:
                head = json.dumps({"line": row.line, "field": field_name, "reason": reason})
                record = json.dumps(
                    {k: v for k, v in row.record.items() if v not in (None, "")},
                    ensure_ascii=False, default=str,
                )  # fmt: skip
                handle.write(f'{head[:-1]}, "record": {record}}}\n')
        written = str(target)
    log.info("returned mail from %s: %s", source, counts)
    return {
        **counts,
        "rejects": [{"line": r.line, "field": f, "reason": why} for r, f, why in rejects],
        "rejects_path": written,
    }


def _apply_returned(conn: Connection, record: Mapping[str, Any], at: dt.datetime) -> bool:
    """Apply one returned letter; False when it was recorded before. Raises _Reject."""
    # As our manifest had them: a neutralised account_ref matches with its quote or without.
    key, account_ref = restore(_cell(record, "key")), restore(_cell(record, "account_ref"))
    raw_day, reason = _cell(record, "returned_on"), _cell(record, "reason")
    if not key and not account_ref:
        raise _Reject("key", "required: the letter's key or the account_ref")
    if not raw_day:
        raise _Reject("returned_on", "required")
    try:
        returned_on = dt.date.fromisoformat(raw_day)
    except ValueError:
        raise _Reject("returned_on", "not an ISO date (YYYY-MM-DD)") from None
    if returned_on > at.date():
        raise _Reject("returned_on", "in the future")
    if not reason:
        raise _Reject("reason", "required")
    if len(reason) > MAX_REASON:
        raise _Reject("reason", f"longer than {MAX_REASON} characters")

    if key:
        letter = conn.execute(
            text(
                "SELECT c.key, c.account_id, c.contact_point_id, c.channel, c.state, c.plan_date, "
                "a.account_ref FROM contact c JOIN account a ON a.id = c.account_id "
                "WHERE c.key = :k"
            ),
            {"k": key},
        ).first()
        if letter is None:
            raise _Reject("key", "unknown key: no such contact in the ledger")
        if letter[3] != "letter":
            raise _Reject("key", "not a letter")
        if letter[4] != "sent":
            raise _Reject("key", f"the letter was not sent (state {letter[4]})")
        if account_ref and account_ref != letter[6]:
            raise _Reject("account_ref", "does not match the letter's account")
    else:
        account = conn.execute(
            text("SELECT id FROM account WHERE account_ref = :r"), {"r": account_ref}
        ).first()
        if account is None:
            raise _Reject("account_ref", "unknown account_ref")
        # The letter that came back: the latest sent to the account by that day.
        letter = conn.execute(
            text(
                "SELECT key, account_id, contact_point_id, channel, state, plan_date FROM contact "
                "WHERE account_id = :a AND channel = 'letter' AND state = 'sent' "
                "AND plan_date <= :d ORDER BY plan_date DESC, key DESC LIMIT 1"
            ),
            {"a": account[0], "d": returned_on},
        ).first()
        if letter is None:
            raise _Reject("account_ref", "no letter was sent to this account by returned_on")
    if returned_on < as_date(letter[5]):  # type: ignore[operator]
        raise _Reject("returned_on", "before the letter was sent")
    letter_key, account_id, contact_point_id = letter[0], letter[1], letter[2]
    inserted = conn.execute(
        text(
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, "
            "contact_point_id, direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, "
            "'letter', :cp, 'status', 'returned_mail', 'mailhouse', :k) "
            "ON CONFLICT (event_ref) DO NOTHING"
        ),
        {
            "ref": _event_ref(letter_key),
            "a": account_id,
            "at": dt.datetime(returned_on.year, returned_on.month, returned_on.day),
            "cp": contact_point_id,
            "k": letter_key,
        },
    ).rowcount
    if not inserted:
        return False  # recorded before: an address made valid again since stays valid
    if contact_point_id is not None:
        conn.execute(
            text("UPDATE contact_point SET valid = :f, updated_at = :now WHERE id = :id"),
            {"f": False, "now": at, "id": contact_point_id},
        )
    conn.execute(
        text(
            "UPDATE contact SET outcome = 'returned_mail', error_code = 'mailhouse:returned', "
            "error_detail = :d, updated_at = :now WHERE key = :k AND state = 'sent'"
        ),
        {"d": f"returned mail: {reason}"[:300], "now": at, "k": letter_key},
    )
    return True
