"""The channel-kind registry: one typed entry per channel kind (``KINDS``: its medium, what it
adds to dispatch, how it closes a day), the one channel list (``CHANNELS``), and each kind's
settings from ``config/channels.yaml``."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from contact_channels import registry
from contact_channels.base import CHANNEL_KINDS, Channel
from contact_channels.media_fields import (
    CallFields,
    LegalFields,
    LetterFields,
    MediaFields,
    PlacementFields,
)
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

    def fields(self, ctx: MessageContext, verdict: Verdict) -> MediaFields | None:
        """``OutboundMessage.fields`` for a contact the gate lets through, as the kind's fields
        class (``contact_channels.media_fields``; the dispatcher puts its ``as_fields()`` in the
        message). The base has none: the message's fields are empty."""
        return None


Medium = Literal["provider", "own"]
Closing = Literal["batch", "upkeep"]


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """One channel kind: what carries it, what its medium adds to dispatch, how it closes a day.

    ``medium``: ``provider`` (an outside provider: Twilio, SendGrid; a transient failure is sent
    again while its window is open) or ``own`` (one of our own media: the call queue, the
    print batch, the agencies, the law firms).

    ``hooks`` and ``close_step`` are a plugin point: each names a ``"module:attribute"``
    resolved when first used, so this registry (in planning, below the media) never imports
    the media packages that implement them. ``hooks`` is a ``ChannelHooks`` subclass;
    ``close_step`` is what the kind does for the whole day once its contacts are out:
    ``closing="batch"`` is called as ``step(engine, day)`` after the day's dispatch (the print
    batch's manifest, a placement file per agency); ``closing="upkeep"`` as
    ``step(engine, day, now)`` on the wall clock (the agent call queue).

    ``fields`` is the class of what the hooks put in ``OutboundMessage.fields`` and the kind's
    adapter reads back (``contact_channels.media_fields``); None for a kind without fields.

    ``channel`` is a plugin entry too: the adapter class of an own medium, built as
    ``Class(settings, database_url=..., data_dir=...)`` when channels.yaml names the medium
    as the kind's backend (``build_channel``)."""

    name: str
    medium: Medium
    hooks: str | None = None
    closing: Closing | None = None
    close_step: str | None = None
    fields: type[MediaFields] | None = None
    channel: str | None = None


# The channel kinds, in the order runs and reports take them: the one list everything in
# outreach (and the DAGs, through outreach.services) reads. contact_channels, which imports
# nothing of outreach, keeps the names it can build in contact_channels.base.CHANNEL_KINDS;
# the check below keeps the two the same.
KINDS: Mapping[str, ChannelKind] = {
    kind.name: kind
    for kind in (
        ChannelKind("sms", "provider"),
        ChannelKind("email", "provider"),
        ChannelKind(
            "call",
            "own",
            hooks="outreach.media.calls.hooks:CallQueueHooks",
            fields=CallFields,
            closing="upkeep",
            close_step="outreach.media.calls.upkeep:refresh_call_queue",
            channel="outreach.media.calls.channel:AgentQueueChannel",
        ),
        ChannelKind(
            "letter",
            "own",
            hooks="outreach.media.letters.mailing:LetterHooks",
            fields=LetterFields,
            closing="batch",
            close_step="outreach.media.letters.batch:close_print_batch",
            channel="outreach.media.letters.channel:PrintChannel",
        ),
        ChannelKind(
            "agency",
            "own",
            hooks="outreach.media.agency.placement:PlacementHooks",
            fields=PlacementFields,
            closing="batch",
            close_step="outreach.media.agency.files:write_placement_files",
            channel="outreach.media.agency.channel:AgencyFileChannel",
        ),
        ChannelKind(
            "legal",
            "own",
            hooks="outreach.media.legal.referral:LegalHooks",
            fields=LegalFields,
            channel="outreach.media.legal.channel:CounselChannel",
        ),
    )
}
CHANNELS: tuple[str, ...] = tuple(KINDS)
# Checked at import (not with assert, which python -O drops): a mismatch is a broken install.
if CHANNELS != CHANNEL_KINDS:
    raise RuntimeError("outreach's channel kinds and contact_channels' differ")
if any((KINDS[k].medium == "provider") != (k in registry.PROVIDER_FOR_KIND) for k in CHANNELS):
    raise RuntimeError("a provider kind without a provider backend, or the reverse")
if any(kind.fields is not None and kind.fields.KIND != name for name, kind in KINDS.items()):
    raise RuntimeError("a kind names the fields class of another kind")


def channel_kind(kind: str) -> ChannelKind:
    """``kind``'s entry; an unknown kind is refused by name."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown channel kind {kind!r}; expected one of {', '.join(CHANNELS)}"
        ) from None


def resolve(target: str) -> Any:
    """The attribute a ``"module:attribute"`` plugin entry names, imported on first use."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def hooks_for(channel: str, engine: Engine, day: dt.date) -> ChannelHooks:
    entry = KINDS.get(channel)
    target = entry.hooks if entry is not None else None
    if target is None:
        return ChannelHooks(engine, day)
    hooks: ChannelHooks = resolve(target)(engine, day)
    return hooks


def _builder(target: str) -> Callable[..., Channel]:
    """A builder for the adapter ``target`` names, imported when first built."""

    def build(*args: Any, **kwargs: Any) -> Channel:
        built: Channel = resolve(target)(*args, **kwargs)
        return built

    return build


# The builders of our own media by kind, for contact_channels.registry.build_channel(media=).
OWN_MEDIA: Mapping[str, Callable[..., Channel]] = {
    name: _builder(kind.channel) for name, kind in KINDS.items() if kind.channel is not None
}


def build_channel(
    kind: str, settings: Mapping[str, object] | None, **options: Any
) -> Channel:
    """``contact_channels.registry.build_channel`` with our own media's builders: the one way
    outreach builds a channel (same keywords: ``outbox_url``, ``state_dir``, ``database_url``)."""
    return registry.build_channel(kind, settings, media=OWN_MEDIA, **options)
