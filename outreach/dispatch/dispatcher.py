"""Dispatch: claim planned contacts, judge them again at the send instant, send, record.

Exactly once: a row moves planned -> sending in its own committed transaction before the provider
is called, and only the claimer (matching ``claim_token``) may record the result. A rerun finds
sent rows already sent. A row left in ``sending`` by a worker that died is never resent blindly:
after the lease it is resolved by asking the backend (the outbox knows for sure), or else marked
``uncertain`` for a callback or a person.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from contact_channels.base import (
    Channel,
    ChannelError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    is_local,
)
from contact_channels.registry import build_channel
from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import AccountRecord, as_date, as_instant, load_accounts
from outreach.kernel.identity import Identity, identity
from outreach.kernel.ledger import DueContact
from outreach.kernel.policy_settings import policy_settings
from outreach.planning.consequences import consequences
from outreach.planning.household import attach_sent, note_sent
from outreach.planning.kinds import ChannelHooks, MessageContext, channel_settings, hooks_for
from outreach.planning.ladder import Action, Ladder, Stage, not_applicable
from outreach.planning.messages import message_context, render
from outreach.planning.planner import (
    DECISION_COLUMNS,
    DECISION_TYPES,
    account_pack_versions,
    decision_row,
    party_of,
    step_for,
)
from outreach.storage.bulk import insert_rows
from policies.gate import evaluate
from policies.model import BLOCK, SEND, PastContact, RuleResult, Verdict
from policies.packs import assert_valid

log = logging.getLogger(__name__)

CLAIM_CHUNK = 25  # contacts claimed per transaction: what a killed worker can leave in doubt
MAX_TRANSIENT_ATTEMPTS = 3
EVENT_OUTCOME = {"call": "attempted"}  # what our own send means in the contact history



def sending_lease() -> dt.timedelta:
    """How long a claim is trusted before its worker is presumed dead."""
    return dt.timedelta(seconds=settings.sending_lease_seconds())


@dataclass
class DispatchCounts:
    due: int = 0
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    deferred: int = 0
    failed: int = 0
    retry_later: int = 0
    uncertain: int = 0
    recovered: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SendRules:
    """What the send-time gate needs besides the facts: the user's role and each ladder
    action's traits (purpose, dialer), looked up by the ledger row's stage and action."""

    role: str
    actions: dict[tuple[str, str], Action]
    stages: dict[str, Stage] = field(default_factory=dict)
    householding: bool = True  # core.household_one_per_day (config/policy.yaml)
    ladder: Ladder | None = None  # what the letters may say will follow (outreach.planning.consequences)
    # Read once per run rather than once per message (config/policy.yaml, the identity).
    approved_agencies: frozenset[str] = frozenset()
    who: Identity | None = None

    def action(self, contact: DueContact) -> Action | None:
        # An action no longer in the ladder is judged by its channel's defaults.
        return self.actions.get((contact.stage, contact.action))

    def not_applicable(self, contact: DueContact, account: AccountRecord, day: dt.date
                       ) -> Verdict | None:  # fmt: skip
        """A block when the ladder in force says the contact's stage or action does not apply
        to the account (``applies_to``): a row planned before the ladder changed is not sent."""
        stage, action = self.stages.get(contact.stage), self.action(contact)
        if stage is None or action is None:
            return None
        why = not_applicable(stage, action, party_of(account, self.role))
        if why is None:
            return None
        result = RuleResult(NOT_APPLICABLE, BLOCK, "Ladder configuration (applies_to)", "",
                            {"stage": stage.id, "action": action.id, "why": why})  # fmt: skip
        return Verdict(BLOCK, (NOT_APPLICABLE,), results=(result,),
                       pack_versions=account_pack_versions(account, self.role, day))  # fmt: skip


NOT_APPLICABLE = "ladder.not_applicable"


def send_rules(engine: Engine) -> SendRules:
    """The rules in force now: validated packs, the policy settings, the ladder in force (the
    approved version in ``engine``'s database, or the configured file before any approval)."""
    assert_valid()
    from outreach.planning.ladder_versions import ladder_in_force

    role = policy_settings().role
    # Who is writing must be configured before anything is sent: no message names a
    # placeholder company or sends disputes to a box nobody reads.
    who = identity(role)
    ladder = ladder_in_force(engine=engine)
    actions = {(st.id, a.id): a for st in ladder.stages for a in st.actions}
    settings = policy_settings()
    return SendRules(role=role, actions=actions, householding=settings.householding,
                     stages={st.id: st for st in ladder.stages}, ladder=ladder,
                     approved_agencies=settings.approved_agencies, who=who)


def open_channel(kind: str) -> Channel:
    return build_channel(
        kind,
        channel_settings(kind),
        outbox_url=settings.outbox_url(),
        state_dir=settings.data_dir(),
        database_url=settings.database_url(),
    )


def dispatch_ranges(
    engine: Engine, day: dt.date, channel: str, batch_size: int
) -> list[tuple[int, int]]:
    """Account-id ranges covering about ``batch_size`` planned contacts each."""
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT account_id FROM contact WHERE plan_date = :day AND channel = :channel "
                    "AND state IN ('planned', 'sending', 'uncertain') ORDER BY account_id"
                ),
                {"day": day, "channel": channel},
            )
        ]
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(ids):
        j = min(i + batch_size, len(ids)) - 1
        while j + 1 < len(ids) and ids[j + 1] == ids[j]:  # keep an account in one batch
            j += 1
        ranges.append((ids[i], ids[j]))
        i = j + 1
    return ranges


def _due(conn: Connection, day: dt.date, channel: str, lo: int, hi: int) -> list[DueContact]:
    rows = conn.execute(
        text(
            "SELECT key, account_id, contact_point_id, template, stage, action, plan_date, "
            "window_start, window_end, defer_until FROM contact WHERE plan_date = :day "
            "AND channel = :channel AND state = 'planned' AND account_id BETWEEN :lo AND :hi "
            "ORDER BY account_id, key"
        ),
        {"day": day, "channel": channel, "lo": lo, "hi": hi},
    )
    return [
        DueContact(r[0], r[1], r[2], r[3], r[4], r[5], day, as_instant(r[7]), as_instant(r[8]),
                   as_instant(r[9]) if r[9] is not None else None)  # fmt: skip
        for r in rows
    ]


# The logical clock walks the day again for contacts the gate deferred to later the same day;
# every pass moves each of them at least an hour on, so a day has at most this many.
MAX_LOGICAL_PASSES = 26


def _deferred_within_day(
    due: list[DueContact], judged_at: dict[str, dt.datetime]
) -> list[DueContact]:
    """Of the contacts still planned after a logical walk, those it judged and put back for
    later today: each starts again at the later of its deferral and an hour after its last
    judging, if that is still inside its window."""
    again: list[DueContact] = []
    for c in due:
        last = judged_at.get(c.key)
        if last is None:
            continue  # not judged by this walk (e.g. planned meanwhile): the next run's
        start = max(c.window_start, c.defer_until or c.window_start, last + dt.timedelta(hours=1))
        if start < c.window_end:
            c.window_start = start
            again.append(c)
    return again


def _send_instants(
    due: list[DueContact], clock: str, now: dt.datetime
) -> list[tuple[dt.datetime, list[DueContact]]]:
    """Group due contacts by the instant they go out. Wall clock: now, for those whose window
    holds it and whose deferral (the first instant the gate could allow them) has come.
    Logical clock: the first top of the hour inside each window from its deferral, as the
    hourly dispatcher would have sent them."""
    if clock == "wall":
        ready = [c for c in due if c.defer_until is None or c.defer_until <= now]
        return [(now, [c for c in ready if c.window_start <= now < c.window_end])]
    by_instant: dict[dt.datetime, list[DueContact]] = {}
    for c in due:
        start = max(c.window_start, c.defer_until or c.window_start)
        at = start.replace(minute=0, second=0, microsecond=0)
        if at < start:
            at += dt.timedelta(hours=1)
        if at < c.window_end:
            by_instant.setdefault(at, []).append(c)
    return sorted(by_instant.items())


def _claim(engine: Engine, keys: list[str], token: str, now: dt.datetime) -> set[str]:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE contact SET state = 'sending', claim_token = :token, claimed_at = :now, "
                "attempts = attempts + 1, updated_at = :now WHERE key IN :keys AND state = 'planned'"
            ).bindparams(bindparam("keys", expanding=True)),
            {"token": token, "now": now, "keys": keys},
        )
        return {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT key FROM contact WHERE key IN :keys AND claim_token = :token "
                    "AND state = 'sending'"
                ).bindparams(bindparam("keys", expanding=True)),
                {"keys": keys, "token": token},
            )
        }


def _personal_data(conn: Connection, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
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


def _message(
    contact: DueContact,
    channel: str,
    account: AccountRecord,
    pd: dict[str, Any],
    day: dt.date,
    fields: dict[str, Any],
    rules: SendRules | None = None,
) -> OutboundMessage:
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


def _decision_rows(
    judged: Iterable[tuple[DueContact, Verdict, str]], at: dt.datetime
) -> list[tuple[Any, ...]]:
    return [
        decision_row(c.key, c.account_id, "send", c.plan_date, at, verdict, config_version)
        for c, verdict, config_version in judged
    ]


@dataclass(frozen=True, slots=True)
class SentRow:
    """A contact the backend accepted, as the ledger records it."""

    key: str
    account_id: int
    channel: str
    contact_point_id: int | None
    provider_id: str | None
    at: dt.datetime


def mark_sent(
    conn: Connection, rows: list[SentRow], token: str | None, backend: str, now: dt.datetime
) -> None:
    """Record ``rows`` as sent, with their outbound contact event, in ``conn``'s transaction.

    A live sender (``token``) settles only its own claims; recovery and callbacks (no token)
    may settle any row still ``sending`` or ``uncertain``."""
    if not rows:
        return
    conn.execute(
        text(
            "UPDATE contact SET state = 'sent', backend = :b, provider_id = :p, sent_at = :at, "
            "outcome = 'accepted', error_code = NULL, error_detail = NULL, updated_at = :now "
            "WHERE key = :k AND state IN ('sending', 'uncertain')"
            + (" AND claim_token = :t" if token is not None else "")
        ),
        [
            {"b": backend, "p": r.provider_id, "at": r.at, "now": now, "k": r.key, "t": token}
            for r in rows
        ],
    )
    conn.execute(
        text(
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, contact_point_id, "
            "direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, :ch, :cp, 'outbound', "
            ":o, 'dispatch', :k) ON CONFLICT (event_ref) DO NOTHING"
        ),
        [
            {
                "ref": f"ledger:{r.key}",
                "a": r.account_id,
                "at": r.at,
                "ch": r.channel,
                "cp": r.contact_point_id,
                "o": EVENT_OUTCOME.get(r.channel, "sent"),
                "k": r.key,
            }
            for r in rows
        ],
    )


def _set_state(
    conn: Connection, key: str, token: str, state: str, now: dt.datetime, **fields: Any
) -> None:
    assignments = "".join(f", {name} = :{name}" for name in fields)
    conn.execute(
        text(
            f"UPDATE contact SET state = :state, updated_at = :now{assignments} "
            "WHERE key = :key AND claim_token = :token AND state = 'sending'"
        ),
        {"state": state, "now": now, "key": key, "token": token, **fields},
    )


def _release(conn: Connection, keys: Iterable[str], token: str) -> None:
    """Give claimed rows that never reached the provider back to the queue, uncounted."""
    params = [{"k": k, "t": token} for k in keys]
    if params:
        conn.execute(
            text(
                "UPDATE contact SET state = 'planned', claim_token = NULL, "
                "attempts = attempts - 1 WHERE key = :k AND claim_token = :t AND state = 'sending'"
            ),
            params,
        )


def _apply_permanent(
    conn: Connection,
    err: PermanentError,
    account_id: int,
    channel: str,
    contact_point_id: int | None,
    now: dt.datetime,
) -> None:
    if contact_point_id is None:
        return
    if err.destination_invalid:
        conn.execute(
            text("UPDATE contact_point SET valid = :f, updated_at = :now WHERE id = :id"),
            {"f": False, "now": now, "id": contact_point_id},
        )
    if err.opted_out:
        conn.execute(
            text(
                "INSERT INTO opt_out (person_id, channel, scope, recorded_at, source) "
                "SELECT person_id, :ch, :scope, :now, 'provider' FROM account WHERE id = :a "
                "ON CONFLICT (person_id, channel, scope) DO NOTHING"
            ),
            {"ch": channel, "scope": str(contact_point_id), "now": now, "a": account_id},
        )


def recover_stale(
    engine: Engine,
    channel_impl: Channel,
    channel: str,
    lo: int,
    hi: int,
    now: dt.datetime,
    rules: SendRules | None = None,
) -> int:
    """Resolve rows left ``sending`` past the lease (their worker died) and, for a backend that
    knows every message it took (our own media), rows marked ``uncertain``.

    The backend is asked before the write transaction opens (a lookup may read the same
    database), and a recovered notice records its day as a live send would."""
    authoritative = is_local(channel_impl)
    states = "('sending', 'uncertain')" if authoritative else "('sending')"
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT key, account_id, contact_point_id, state, claimed_at, stage, action, "
                f"plan_date FROM contact WHERE channel = :ch AND account_id BETWEEN :lo AND :hi "
                f"AND state IN {states}"
            ),
            {"ch": channel, "lo": lo, "hi": hi},
        ).all()
    stale = [
        r
        for r in rows
        if not (
            r.state == "sending"
            and r.claimed_at is not None
            and as_instant(r.claimed_at) > now - sending_lease()
        )  # a live worker may still hold it
    ]
    found = {r.key: channel_impl.lookup(r.key) for r in stale}
    with engine.begin() as conn:
        for r in stale:
            result = found[r.key]
            if result is not None:
                at = as_instant(r.claimed_at or now)
                row = SentRow(r.key, r.account_id, channel, r.contact_point_id, result.provider_id, at)
                mark_sent(conn, [row], None, channel_impl.backend, now)
                action = rules.actions.get((r.stage, r.action)) if rules else None
                if action is not None and action.gate_purpose in NOTICE_DATES:
                    conn.execute(
                        text(NOTICE_DATES[action.gate_purpose]),
                        {"d": as_date(r.plan_date), "a": r.account_id},
                    )
            elif authoritative:
                conn.execute(
                    text(
                        "UPDATE contact SET state = 'planned', claim_token = NULL, updated_at = :now, "
                        "error_detail = 'released: backend has no such message' "
                        "WHERE key = :k AND state IN ('sending', 'uncertain')"
                    ),
                    {"now": now, "k": r.key},
                )
            else:
                conn.execute(
                    text(
                        "UPDATE contact SET state = 'uncertain', updated_at = :now, "
                        "error_detail = 'worker lost during send' WHERE key = :k AND state = 'sending'"
                    ),
                    {"now": now, "k": r.key},
                )
    return len(stale)


def dispatch_range(
    engine: Engine,
    day: dt.date,
    channel: str,
    lo: int,
    hi: int,
    *,
    clock: str = "wall",
    channel_impl: Channel | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    concurrency: int | None = None,
) -> DispatchCounts:
    """Send the planned ``channel`` contacts of accounts ``lo..hi`` for ``day``.

    Groups of ``group_size`` contacts are claimed, judged and handed to ``concurrency`` sender
    threads; while one group is at the provider the next is claimed and judged, and each
    group's results are recorded in one transaction. ``concurrency`` and ``group_size`` come
    from the channel's settings (``channels.yaml``) unless given.
    """
    if clock not in ("wall", "logical"):
        raise ValueError(f"clock must be 'wall' or 'logical', not {clock!r}")
    impl = channel_impl or open_channel(channel)
    if clock == "logical" and not is_local(impl):
        raise ValueError(
            "clock='logical' simulates the day's send times and is only allowed "
            f"with the outbox or our other own media (the call queue, drop files); the {channel} "
            f"channel uses {impl.backend}"
        )
    tuning = send_tuning(channel, impl, concurrency=concurrency)
    counts = DispatchCounts()
    rules = send_rules(engine)
    pool = SenderPool(impl, tuning.concurrency)
    hooks = hooks_for(channel, engine, day)
    in_flight: deque[_Group] = deque()
    try:
        counts.recovered = recover_stale(engine, impl, channel, lo, hi, now(), rules)
        with engine.connect() as conn:
            due = _due(conn, day, channel, lo, hi)
        counts.due = len(due)
        judged_at: dict[str, dt.datetime] = {}
        for _ in range(MAX_LOGICAL_PASSES if clock == "logical" else 1):
            for at, contacts in _send_instants(due, clock, now()):
                for i in range(0, len(contacts), tuning.group_size):
                    if pool.broken is not None:
                        break  # an adapter failed unexpectedly: claim nothing more
                    chunk = contacts[i : i + tuning.group_size]
                    judged_at.update((c.key, at) for c in chunk)
                    group = _start_group(
                        engine, impl, pool, channel, day, chunk, at, clock, counts, now, rules,
                        hooks,
                    )  # fmt: skip
                    in_flight.append(group)
                    # Keep about two groups at the provider: enough to hide one group's
                    # judging and recording behind the other's round trips.
                    while in_flight and (len(in_flight) > 2 or in_flight[0].done()):
                        _finish_group(engine, impl, channel, in_flight.popleft(), counts, now())
            while in_flight:
                _finish_group(engine, impl, channel, in_flight.popleft(), counts, now())
            if clock != "logical" or pool.broken is not None:
                break
            # The hourly dispatcher would meet a contact deferred to later today again: walk
            # on for those (they are planned again, with their deferral).
            with engine.connect() as conn:
                due = _deferred_within_day(_due(conn, day, channel, lo, hi), judged_at)
            if not due:
                break
    finally:
        # On an error, what is at the provider is waited for and recorded if the database
        # allows; a row left `sending` is settled by recover_stale after the lease.
        for group in in_flight:
            try:
                _finish_group(engine, impl, channel, group, counts, now(), reraise=False)
            except Exception:
                log.exception("dispatch %s: could not record a group after an error", channel)
        pool.close()
        if channel_impl is None:
            impl.close()
    log.info("dispatch %s %s accounts %s-%s: %s", channel, day, lo, hi, counts.as_dict())
    return counts


@dataclass(frozen=True, slots=True)
class SendTuning:
    concurrency: int  # sender threads; 1 sends from the dispatching thread itself
    group_size: int  # contacts claimed per transaction: what a killed worker can leave in doubt


PROVIDER_CONCURRENCY = 16


def send_tuning(channel: str, impl: Channel, *, concurrency: int | None = None) -> SendTuning:
    """``concurrency`` and ``group_size`` from ``channels.yaml``, checked, with defaults."""
    section = channel_settings(channel)
    values: dict[str, int] = {}
    defaults = {
        # Our own media are local writes: no round trip to hide behind threads.
        "concurrency": 1 if is_local(impl) else PROVIDER_CONCURRENCY,
        "group_size": CLAIM_CHUNK,
    }
    for name, default in defaults.items():
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise ValueError(
                f"channels.{channel}.{name}: must be a whole number from 1 to 1000, not {value!r}"
            )
        values[name] = value
    if concurrency is not None:
        values["concurrency"] = concurrency
    return SendTuning(**values)


class NotSent:
    """The outcome of a send unit skipped because the pool stopped: nothing left this process."""


NOT_SENT = NotSent()


class SenderPool:
    """Runs sends on ``size`` threads (or inline when ``size`` is 1). A send unit is one
    message, or a batch for a channel that sends several in one request (``send_batch``).

    An exception that is not a ChannelError is an adapter bug: the pool stops (``broken``), and
    units that had not started yet come back NOT_SENT, so the dispatcher can release them."""

    def __init__(self, impl: Channel, size: int) -> None:
        self.impl = impl
        self.batch_limit = max(1, int(getattr(impl, "max_batch", 1) or 1))
        self.broken: BaseException | None = None
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="send") if size > 1 else None

    def submit(self, messages: list[OutboundMessage]) -> list[Future[list[SendOutcome]]]:
        units = [
            messages[i : i + self.batch_limit] for i in range(0, len(messages), self.batch_limit)
        ]
        futures: list[Future[list[SendOutcome]]] = []
        for unit in units:
            if self._executor is None:
                done: Future[list[SendOutcome]] = Future()
                done.set_result(self._send_unit(unit))
                futures.append(done)
            else:
                futures.append(self._executor.submit(self._send_unit, unit))
        return futures

    def _send_unit(self, unit: list[OutboundMessage]) -> list[SendOutcome]:
        if self.broken is not None:
            return [NOT_SENT] * len(unit)
        try:
            if len(unit) > 1:
                return list(self.impl.send_batch(unit))  # type: ignore[attr-defined]
            return [self.impl.send(unit[0])]
        except ChannelError as exc:
            return [exc] * len(unit)
        except Exception as exc:  # a bug: every message of the unit is in doubt
            self.broken = exc
            return [exc] * len(unit)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


SendOutcome = SendResult | Exception | NotSent


@dataclass
class _Group:
    """One claimed group whose send verdicts are at the provider."""

    token: str
    at: dt.datetime
    judged: list[_Judged]
    futures: list[Future[list[SendOutcome]]]

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def outcomes(self) -> list[SendOutcome]:
        return [outcome for f in self.futures for outcome in f.result()]


@dataclass(slots=True)
class _Judged:
    contact: DueContact
    verdict: Verdict
    config_version: str
    action: Action | None


def _start_group(
    engine: Engine,
    impl: Channel,
    pool: SenderPool,
    channel: str,
    day: dt.date,
    group: list[DueContact],
    at: dt.datetime,
    clock: str,
    counts: DispatchCounts,
    now: Callable[[], dt.datetime],
    rules: SendRules,
    hooks: ChannelHooks,
) -> _Group:
    """Claim one group, judge each claimed contact on facts read after the claim (so an
    opt-out or a dispute recorded before the claim is always seen), record what is not sent,
    and hand the rest to the sender pool."""
    token = uuid.uuid4().hex
    claimed = _claim(engine, [c.key for c in group], token, now())
    counts.claimed += len(claimed)
    pending = [c for c in group if c.key in claimed]
    to_send: list[_Judged] = []
    messages: list[OutboundMessage] = []
    held: list[tuple[_Judged, str]] = []  # (judged, state) for block and defer verdicts
    if not pending:
        return _Group(token, at, [], [])
    try:
        cutoff = at if clock == "logical" else now()
        with engine.connect() as conn:
            ids = [c.account_id for c in pending]
            accounts = load_accounts(conn, min(ids), max(ids), day=day, cutoff=cutoff, only=ids)
            # The same person's other accounts: what they were sent (one contact per channel
            # a day, caps counted per consumer), and what this group sends meanwhile.
            people = attach_sent(conn, accounts, cutoff, enabled=rules.householding)
            personal = _personal_data(conn, [c.key for c in pending])
            hooks.prepare(conn, pending, day)
            for contact in pending:
                account = accounts[contact.account_id]
                pd = personal[contact.key]
                destination = next(
                    (
                        d
                        for d in account.destinations
                        if d.contact_point_id == contact.contact_point_id
                    ),
                    None,
                )
                action = rules.action(contact)
                ctx = MessageContext(conn, contact, account, pd, day, at, action)
                verdict = rules.not_applicable(contact, account, contact.plan_date) or evaluate(
                    hooks.step(step_for(channel, destination, action), ctx),
                    account.gate_facts(rules.role),
                    day=contact.plan_date,
                    at=at,
                )
                judged = _Judged(contact, verdict, pd["config_version"], action)
                if verdict.verdict == SEND:
                    note_sent(people, account, PastContact(
                        at, channel, EVENT_OUTCOME.get(channel, "sent"), contact.contact_point_id,
                        destination.phone_type if destination else None,
                        bool(destination and destination.is_workplace),
                    ))  # fmt: skip
                    fields = hooks.fields(ctx, verdict)
                    messages.append(_message(contact, channel, account, pd, day, fields, rules))
                    to_send.append(judged)
                elif verdict.verdict == BLOCK:
                    held.append((judged, "suppressed"))
                else:
                    back_today = (
                        verdict.defer_until is not None
                        and verdict.defer_until < contact.window_end
                    )
                    held.append((judged, "planned" if back_today else "deferred"))
        with engine.begin() as conn:
            _record_held(conn, held, token, at, counts, now())
    except BaseException:
        # Nothing of this group reached the provider: give it back to the queue.
        with engine.begin() as conn:
            _release(conn, claimed, token)
        raise
    return _Group(token, at, to_send, pool.submit(messages))


def _record_held(
    conn: Connection,
    held: list[tuple[_Judged, str]],
    token: str,
    at: dt.datetime,
    counts: DispatchCounts,
    now: dt.datetime,
) -> None:
    """Record the block and defer verdicts of a group: decision rows and ledger states."""
    insert_rows(
        conn,
        "policy_decision",
        DECISION_COLUMNS,
        _decision_rows(((j.contact, j.verdict, j.config_version) for j, _ in held), at),
        DECISION_TYPES,
    )
    for judged, state in held:
        verdict, key = judged.verdict, judged.contact.key
        reasons = " ".join(verdict.reasons)
        if state == "suppressed":
            _set_state(conn, key, token, state, now, verdict=BLOCK, reasons=reasons)
            counts.suppressed += 1
        else:
            _set_state(
                conn,
                key,
                token,
                state,
                now,
                verdict=verdict.verdict,
                reasons=reasons,
                defer_until=verdict.defer_until,
                claim_token=None,
            )
            counts.deferred += 1


def _finish_group(
    engine: Engine,
    impl: Channel,
    channel: str,
    group: _Group,
    counts: DispatchCounts,
    now: dt.datetime,
    *,
    reraise: bool = True,
) -> None:
    """Record a group's send outcomes, its decisions and its sent rows, in one transaction.
    Then, with ``reraise``, raise the first unexpected adapter error of the group."""
    if not group.judged:
        return
    outcomes = group.outcomes()
    sent: list[SentRow] = []
    released: list[str] = []
    unexpected: Exception | None = None
    with engine.begin() as conn:
        notices: dict[str, list[dict[str, Any]]] = {}
        for judged, outcome in zip(group.judged, outcomes, strict=True):
            c = judged.contact
            if isinstance(outcome, NotSent):
                released.append(c.key)
                continue
            if isinstance(outcome, SendResult):
                sent.append(
                    SentRow(
                        c.key, c.account_id, channel, c.contact_point_id, outcome.provider_id, group.at
                    )
                )
                purpose = judged.action.gate_purpose if judged.action is not None else None
                if purpose in NOTICE_DATES:
                    notices.setdefault(purpose, []).append({"d": c.plan_date, "a": c.account_id})
                state = "sent"
            else:
                if not isinstance(outcome, ChannelError) and unexpected is None:
                    unexpected = outcome
                state = _settle(conn, c, channel, group.token, outcome, now)
            setattr(counts, COUNTED_AS[state], getattr(counts, COUNTED_AS[state]) + 1)
        insert_rows(
            conn,
            "policy_decision",
            DECISION_COLUMNS,
            _decision_rows(
                (
                    (j.contact, j.verdict, j.config_version)
                    for j, o in zip(group.judged, outcomes, strict=True)
                    if not isinstance(o, NotSent)
                ),
                group.at,
            ),
            DECISION_TYPES,
        )
        mark_sent(conn, sent, group.token, impl.backend, now)
        _release(conn, released, group.token)
        for purpose, params in notices.items():
            conn.execute(text(NOTICE_DATES[purpose]), params)
    if unexpected is not None and reraise:
        raise unexpected


# Notices whose sending day the gates read later: purpose -> the update that records it. The
# day is the contact's plan day: a letter's print batch, the day it is mailed, which is the
# consumer's local day whose window it went out in (the send instant's UTC date can be the eve,
# for Guam or China). The letter prints the same day (outreach.media.letters.mailing.notice_sent_on).
NOTICE_DATES = {
    # The validation period runs from the first notice (12 CFR 1006.34(b)(5)).
    "validation_notice": "UPDATE account SET validation_notice_sent_on = :d "
    "WHERE id = :a AND validation_notice_sent_on IS NULL",
    # The legal referral waits from the latest final notice (core.final_notice_wait).
    "final_notice": "UPDATE account SET final_notice_sent_on = :d WHERE id = :a",
}

# The ledger state a send ends in -> the DispatchCounts field that counts it.
COUNTED_AS = {
    "sent": "sent",
    "failed": "failed",
    "planned": "retry_later",
    "uncertain": "uncertain",
}


def _settle(
    conn: Connection,
    contact: DueContact,
    channel: str,
    token: str,
    err: Exception,
    now: dt.datetime,
) -> str:
    """Record a send that did not succeed; returns the state it leaves the contact in.

    Permanent: failed, and the contact point updated. Transient: nothing reached the consumer,
    so the next window tries again, up to MAX_TRANSIENT_ATTEMPTS claims, then failed (for a
    person or the redrive). Anything else (uncertain, an unclassified error, a bug in an
    adapter): never resent automatically.
    """
    if not isinstance(err, ChannelError):
        log.error("send %s: unexpected %s", contact.key[:16], type(err).__name__)
        err = ChannelError("unexpected error during send")
    fields: dict[str, str | None] = {"error_detail": str(err)[:300]}
    if isinstance(err, PermanentError):
        state = "failed"
        fields.update(error_code=err.code or "permanent", outcome="rejected")
        _apply_permanent(conn, err, contact.account_id, channel, contact.contact_point_id, now)
    elif isinstance(err, TransientError):
        attempts = conn.execute(
            text("SELECT attempts FROM contact WHERE key = :k"), {"k": contact.key}
        ).scalar_one()
        state = "failed" if attempts >= MAX_TRANSIENT_ATTEMPTS else "planned"
        fields["error_code"] = err.code or "transient"
        if state == "planned":
            fields["claim_token"] = None
    else:
        state = "uncertain"
        fields["error_code"] = err.code or "uncertain"
    _set_state(conn, contact.key, token, state, now, **fields)
    return state
