"""The message of a contact about to be sent: the personal data it needs, loaded only then, and
its rendered text (or, for calls, placements and referrals, its work item)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, text

from contact_channels.base import OutboundMessage
from contact_channels.media_fields import MediaFields
from outreach.dispatch.send_rules import SendRules
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import LOOP_STAGE, AccountRecord
from outreach.kernel.ledger import DueContact
from outreach.kernel.policy_settings import policy_settings
from outreach.kernel.self_service_token import link as self_service_link
from outreach.planning.consequences import consequences
from outreach.planning.messages import message_context, render
from outreach.planning.statements import loop_context
from outreach.resolution.policy import resolution_policy

# The channels whose messages may carry the consumer's self-service link.
LINK_CHANNELS = frozenset({"sms", "email"})


def personal_data(conn: Connection, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What the message needs, loaded only for the contacts about to be sent."""
    rows = conn.execute(
        text(
            "SELECT c.key, a.account_ref, a.currency, a.due_date, p.full_name, p.language, "
            "p.address_line1, p.city, p.region, p.postal_code, cp.value, c.config_version, "
            "p.country "
            "FROM contact c JOIN account a ON a.id = c.account_id JOIN person p ON p.id = a.person_id "
            "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id WHERE c.key IN :keys"
        ).bindparams(bindparam("keys", expanding=True)),
        {"keys": list(keys)},
    )
    out = {}
    for r in rows:
        address = ", ".join(x for x in (r[6], r[7], r[8], r[9]) if x)
        out[r[0]] = {
            "account_ref": r[1],
            "currency": r[2],
            "due_date": r[3],
            "full_name": r[4],
            "language": r[5] or "en",
            "address": address,
            "destination": r[10],
            "config_version": r[11],
            "country": r[12],
        }
    return out


def outbound_message(
    contact: DueContact,
    channel: str,
    account: AccountRecord,
    pd: dict[str, Any],
    day: dt.date,
    media_fields: MediaFields | None,
    rules: SendRules | None = None,
    conn: Connection | None = None,
) -> OutboundMessage:
    """The contact's message; ``conn`` reads what a resolution action's message says of the
    promise, the instalments or the statement (``outreach.planning.statements``)."""
    # The hooks' typed fields travel as a plain mapping (contact_channels.media_fields).
    fields = media_fields.as_fields() if media_fields is not None else {}
    dpd = (day - account.due_date).days if account.due_date else 0
    tags = {
        "stage": contact.stage,
        "action": contact.action,
        "language": pd["language"],
        "template": contact.template or "",
    }
    if contact.template is None:  # calls, placements, referrals: a work item, not a text
        body = f"{channel} for account {pd['account_ref']}: {contact.stage}/{contact.action}"
        return OutboundMessage(
            contact.key,
            channel,
            pd["destination"] or pd["account_ref"],
            body,
            tags=tags,
            fields=fields,
        )
    if rules is not None:
        role, approved, who, ladder = rules.role, rules.approved_agencies, rules.who, rules.ladder
    else:
        policy = policy_settings()
        role, approved, who, ladder = policy.role, policy.approved_agencies, None, None
    may = consequences(ladder, account, day, role, approved)
    loop = None
    if contact.stage == LOOP_STAGE and conn is not None:
        loop = loop_context(conn, account.id, day)
    ctx = message_context(
        full_name=pd["full_name"],
        language=pd["language"],
        account_ref=pd["account_ref"],
        amount_past_due=account.past_due,
        balance=account.balance,
        currency=pd["currency"],
        days_past_due=dpd,
        address=pd["address"],
        role=role,
        country=account.country,
        region=account.region,
        # No communication on record before today: this one may be the initial one, which
        # carries the full 1006.18(e)(1) disclosure (the fuller text is never wrong).
        initial_communication=(
            account.initial_communication_on is None or account.initial_communication_on >= day
        ),
        time_barred=account.limitation_date is not None and day >= account.limitation_date,
        may_place_with_agency=may.may_place_with_agency,
        may_refer_for_legal_action=may.may_refer_for_legal_action,
        who=who,
        loop=loop,
        self_service_url=_self_service_url(channel, contact.account_id),
    )
    rendered = render(contact.template, pd["language"], channel, ctx)
    return OutboundMessage(
        contact.key,
        channel,
        pd["destination"] or "",
        rendered.text,
        subject=rendered.subject,
        body_html=rendered.html,
        tags=tags,
        fields=fields,
    )



def _self_service_url(channel: str, account_id: int) -> str:
    """The account's self-service link, minted now (it expires ``self_service.link_valid_days``
    from the send), for an SMS or an email; "" for other channels or without a base URL."""
    if channel not in LINK_CHANNELS:
        return ""
    valid_days = resolution_policy().self_service.link_valid_days
    return self_service_link(account_id, utcnow(), valid_days)
