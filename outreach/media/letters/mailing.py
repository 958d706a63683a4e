"""Letters: what each letter says beyond its template (the validation notice's itemization and
validation period, an instalment offer's plans, the postal address). The daily print batch
for the mail house is in ``batch.py``, the mail it sends back in ``returned.py``.

``LetterHooks`` (the dispatcher's hooks for ``letter``) fills ``OutboundMessage.fields``
(``contact_channels.media_fields.LetterFields``);
``outreach.media.letters.channel.PrintChannel`` lays them out. ``close_print_batch``
(``outreach.media.letters.batch``) writes the day's manifest; ``import_returned_mail``
(``outreach.media.letters.returned``) marks the addresses letters came back from. Format and
sources of every field: docs/letters.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, text

from contact_channels.media_fields import (
    CnNotice,
    InstalmentOffer,
    InstalmentPlan,
    LetterFields,
    LetterRecipient,
    ValidationNotice,
    VerificationNotice,
)
from outreach.kernel.facts import as_date
from outreach.kernel.identity import identity
from outreach.kernel.ledger import DueContact
from outreach.planning.kinds import ChannelHooks, MessageContext
from outreach.planning.messages import brand, message_context, money, render
from outreach.resolution.arrangements import latest_means
from outreach.resolution.offers import Offer
from outreach.resolution.offers import offers as calculate
from outreach.resolution.policy import resolution_policy
from policies.calendar import validation_period
from policies.model import ROLES, SELF, Verdict
from policies.packs import all_packs, jurisdiction, packs_for

log = logging.getLogger(__name__)


CENT = Decimal("0.01")
# What the template lint shows as sample plans.
SAMPLE_TERMS = (3, 6, 12, 24)

# The rule whose parameters give the validation period (policies' own, never restated here).
VALIDATION_PACK, VALIDATION_CHECK = "us_reg_f", "validation_period"


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


def instalment_plans(offers: Iterable[Offer]) -> list[InstalmentPlan]:
    """The letter's table of plans: the calculator's instalment offers (outreach.resolution.
    offers), each with its regular and last payment, total and first and last dates."""
    return [
        {
            "months": o.term_months,
            "monthly": _money(o.instalment_amount),
            "final": _money(o.schedule[-1][1]),
            "total": _money(o.total),
            "first_due": o.first_due_on.isoformat(),
            "last_due": o.schedule[-1][0].isoformat(),
        }
        for o in offers
        if o.kind == "instalment"
    ]


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

    def fields(self, ctx: MessageContext, verdict: Verdict) -> LetterFields:
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


def letter_fields(ctx: MessageContext, row: Any = None) -> LetterFields:
    """``OutboundMessage.fields`` of one letter (personal data: never logged). ``row`` is the
    contact's ``recipient_rows`` entry, read here when not given."""
    account, pd, contact = ctx.account, ctx.personal, ctx.contact
    if row is None:
        row = recipient_rows(ctx.conn, [contact.key])[contact.key]
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

    validation: ValidationNotice | None = None
    english: str | None = None
    cn_notice: CnNotice | None = None
    instalments: InstalmentOffer | None = None
    verification: VerificationNotice | None = None
    if purpose == "validation_notice" or template.endswith("/validation_notice"):
        validation = _validation(ctx, currency, creditor, collector_name, collector_lines, row)
        if not language.startswith("en"):
            # 12 CFR 1006.34(e): a translated notice goes with the English one, in the same
            # letter: the English text first, the translation after it.
            english = english_body(ctx, template)
    wanted = letter_requirements(account, ctx.day, purpose)
    if "cn.collection_notice_contents" in wanted:
        cn_notice = {"phone": phone, "creditor": brand(language=language)["creditor"]}
    if purpose == "instalment_offer" or template.endswith("/instalment_offer"):
        instalments = _instalments(ctx, currency)
    if purpose == "verification" or template.endswith("/verification"):
        verification = _verification(ctx, currency, creditor, row)
    return LetterFields(
        account_id=account.id,
        account_ref=account.account_ref,
        account_last4=account.account_ref[-4:],
        batch_date=ctx.day.isoformat(),
        letter_date=ctx.day.isoformat(),
        language=language,
        template=template,
        purpose=purpose,
        recipient=_recipient(row, language),
        sender={"name": collector_name, "lines": collector_lines, "phone": phone},
        amounts={
            "currency": currency,
            "past_due": _money(account.past_due),
            "balance": _money(account.balance),
            "due_date": account.due_date.isoformat() if account.due_date else None,
            "days_past_due": days_past_due,
        },
        validation=validation,
        english=english,
        cn_notice=cn_notice,
        instalments=instalments,
        verification=verification,
    )


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


def _recipient(row: Any, language: str) -> LetterRecipient | None:
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


def _itemization(ctx: MessageContext, row: Any) -> Itemization:
    """The account's itemization as of the letter's day (ItemizationUnknown without one)."""
    since = as_date(row[11])
    paid = ctx.conn.execute(
        text(
            "SELECT COALESCE(SUM(amount), 0) FROM payment WHERE account_id = :a "
            "AND paid_on > :since AND paid_on <= :day "
            # As the facts count them: a payment reversed by the day no longer counts.
            "AND NOT (status = 'reversed' AND reversed_on <= :day)"
        ),
        {"a": ctx.account.id, "since": since, "day": ctx.day},
    ).scalar_one()

    def amount(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value)).quantize(CENT)

    return itemize(ctx.account.balance, since, row[12], amount(row[13]), amount(row[14]),
                   amount(row[15]), Decimal(str(paid)).quantize(CENT))  # fmt: skip


def _validation(
    ctx: MessageContext,
    currency: str,
    creditor: str,
    collector_name: str,
    collector_lines: list[str],
    row: Any,
) -> ValidationNotice:
    item = _itemization(ctx, row)
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


def _verification(ctx: MessageContext, currency: str, creditor: str, row: Any
                  ) -> VerificationNotice:  # fmt: skip
    """What 12 CFR 1006.38 asks the verification to give: the itemization (as the validation
    notice gives it; the current amount alone when none is on record), the creditor and, when
    the consumer asked for the original creditor, its name. One creditor is known (the
    brand): the original creditor is the current one, whose name the letter gives and whose
    address is the one the letter comes from when the creditor writes."""
    holds = ctx.conn.execute(
        text(
            "SELECT kind, MIN(started_on) FROM account_hold WHERE account_id = :a "
            "AND kind IN ('dispute', 'original_creditor_request') AND started_on <= :day "
            "AND (ended_on IS NULL OR ended_on >= :day) GROUP BY kind"
        ),
        {"a": ctx.account.id, "day": ctx.day},
    ).all()
    started = {str(k): as_date(d) for k, d in holds}
    disputed_on = min((d for d in started.values() if d is not None), default=None)
    try:
        item: Itemization | None = _itemization(ctx, row)
    except ItemizationUnknown:
        item = None
    current = _money(ctx.account.balance)
    return {
        "currency": currency,
        "disputed_on": disputed_on.isoformat() if disputed_on else "",
        "itemization_date": item.date.isoformat() if item else "",
        "itemization_basis": item.basis if item else "",
        "amount_on_itemization_date": _money(item.amount_then) if item else "",
        "interest": _money(item.interest) if item else "",
        "fees": _money(item.fees) if item else "",
        "payments_credits": _money(item.payments_credits) if item else "",
        "current_amount": _money(item.current) if item else current,
        "creditor": creditor,
        "account_number": f"**** {ctx.account.account_ref[-4:]}",
        "original_creditor_requested": "original_creditor_request" in started,
        "original_creditor": creditor,
        "original_creditor_lines": [],
    }


def _instalments(ctx: MessageContext, currency: str) -> InstalmentOffer:
    # The plans the consumer may accept today: the calculator's, sized to stated means where
    # known, repaying the whole balance (docs/resolution.md, "Arrangements and offers").
    account = ctx.account
    policy = resolution_policy()
    dpd = (ctx.day - account.due_date).days if account.due_date else 0
    offers = calculate(
        policy, balance=account.balance, past_due=account.past_due, days_past_due=dpd,
        product=account.product, country=account.country, currency=currency, as_of=ctx.day,
        means=latest_means(ctx.conn, account.id, ctx.day),
    )  # fmt: skip
    return {
        "currency": currency,
        "basis": "balance",
        "amount": _money(account.balance),
        "respond_by": (ctx.day + dt.timedelta(days=policy.arrangements.offer_valid_days)
                       ).isoformat(),  # fmt: skip
        "options": instalment_plans(offers),
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
        for m in SAMPLE_TERMS
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
