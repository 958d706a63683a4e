"""The channel-kind registry: what each of our own media (calls, letters, agency, legal) adds to
dispatch, and each kind's settings from ``config/channels.yaml``."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from outreach.kernel.channel_config import channels_config
from outreach.kernel.facts import AccountRecord
from outreach.kernel.ledger import DueContact
from outreach.planning.ladder import Action
from policies.model import Step, Verdict


def channel_settings(kind: str) -> dict[str, Any]:
    """``kind``'s section of ``config/channels.yaml`` as a plain dict of what is set. The whole
    file is validated first (outreach.kernel.channel_config): a broken or unknown key in any section
    stops every kind, so a typo never falls back to a default."""
    return channels_config().section(kind)


@dataclass(slots=True)
class MessageContext:
    """One contact being judged and worded, for a channel's hooks. ``conn`` is open for
    reads while its group is judged."""

    conn: Connection
    contact: DueContact
    account: AccountRecord
    personal: dict[str, Any]
    day: dt.date
    at: dt.datetime
    action: Action | None


class ChannelHooks:
    """What a people-or-paper channel adds to dispatch, built once per dispatch run (it may
    keep state across the run, such as agency loads). The base adds nothing."""

    def __init__(self, engine: Engine | None = None, day: dt.date | None = None) -> None:
        self.engine, self.day = engine, day

    def prepare(self, conn: Connection, contacts: Sequence[DueContact], day: dt.date) -> None:
        """Load, once for a claimed group, what ``step`` and ``fields`` read per contact (one
        query for the group rather than one per contact)."""

    def preview(self, step: Step, account: AccountRecord) -> Step:
        """The step as the gate would see it at send time, for the planner (no side effect,
        nothing reserved). The base adds nothing."""
        return step

    def step(self, step: Step, ctx: MessageContext) -> Step:
        """The step the gate judges (e.g. with the agency a placement would go to)."""
        return step

    def fields(self, ctx: MessageContext, verdict: Verdict) -> dict[str, Any]:
        """``OutboundMessage.fields`` for a contact the gate lets through."""
        return {}


# Channel kind -> "module:class" of its hooks (a ChannelHooks subclass).
HOOKS = {
    "call": "outreach.media.calls.queue:CallQueueHooks",
    "letter": "outreach.media.letters.mailing:LetterHooks",
    "agency": "outreach.media.agency.placement:PlacementHooks",
    "legal": "outreach.media.legal.referral:LegalHooks",
}


def hooks_for(channel: str, engine: Engine, day: dt.date) -> ChannelHooks:
    target = HOOKS.get(channel)
    if target is None:
        return ChannelHooks(engine, day)
    module, _, name = target.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return ChannelHooks(engine, day)
    hooks: ChannelHooks = getattr(loaded, name)(engine, day)
    return hooks
