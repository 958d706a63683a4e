"""The day's figures: planned and sent by stage and channel, suppressed and deferred by reason."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, text

from outreach import settings
from outreach.portfolio.quarantine import in_quarantine

STATES = ("planned", "sending", "sent", "deferred", "suppressed", "failed", "uncertain", "expired")


def day_summary(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Counts only: safe for XCom and logs."""
    by_stage: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    reasons: dict[str, Counter[str]] = {"suppressed": Counter(), "deferred": Counter()}
    totals: Counter[str] = Counter()
    with engine.connect() as conn:
        for stage, channel, state, n in conn.execute(
            text(
                "SELECT stage, channel, state, COUNT(*) FROM contact WHERE plan_date = :d "
                "GROUP BY stage, channel, state"
            ),
            {"d": day},
        ):
            by_stage[stage][channel][state] = int(n)
            totals[state] += int(n)
        for state, codes, n in conn.execute(
            text(
                "SELECT state, reasons, COUNT(*) FROM contact WHERE plan_date = :d "
                "AND state IN ('suppressed', 'deferred') GROUP BY state, reasons"
            ),
            {"d": day},
        ):
            for code in (codes or "").split():
                reasons[state][code] += int(n)
        accounts = conn.execute(text("SELECT COUNT(*) FROM account")).scalar_one()
        # Accounts that entered at an earlier required step they lacked (the planner's
        # catch-up), instead of their own stage's actions.
        caught_up = conn.execute(
            text("SELECT COUNT(DISTINCT account_id) FROM contact WHERE plan_date = :d "
                 "AND catch_up = :t"),  # fmt: skip
            {"d": day, "t": True},
        ).scalar_one()
        media = {name: _counts(conn, sql, day) for name, sql in MEDIA.items()}
        resolution = resolution_counts(conn, day)
    return {
        "as_of": day.isoformat(),
        "accounts": int(accounts),
        "totals": {s: totals.get(s, 0) for s in STATES},
        "accounts_caught_up": int(caught_up),
        "by_stage": {s: {c: dict(v) for c, v in ch.items()} for s, ch in by_stage.items()},
        "suppressed_by_reason": dict(reasons["suppressed"].most_common()),
        "deferred_by_reason": dict(reasons["deferred"].most_common()),
        "people_and_paper": {name: counts for name, counts in media.items() if counts},
        # What changed in the resolution loop that day: promises made, kept, broken...
        "resolution": resolution,
        # Files the ingest could not read, waiting for a person (outreach.portfolio.quarantine).
        "quarantined_files": in_quarantine(settings.data_dir() / "inbox"),
    }


# What the people and paper channels hold for the day, by a label: (label, count) rows.
MEDIA = {
    "call tasks by state": "SELECT t.state, COUNT(*) FROM call_task t JOIN contact c "
    "ON c.key = t.key WHERE c.plan_date = :d GROUP BY t.state",
    "documents written": "SELECT kind, COUNT(*) FROM document WHERE batch_date = :d "
    "GROUP BY kind",
    "placements made, by agency": "SELECT agency, COUNT(*) FROM placement WHERE placed_on = :d "
    "GROUP BY agency",
    "placements recalled, by reason": "SELECT recall_reason, COUNT(*) FROM placement "
    "WHERE recalled_on = :d GROUP BY recall_reason",
    "legal referrals, by firm": "SELECT firm, COUNT(*) FROM legal_case WHERE referred_on = :d "
    "GROUP BY firm",
}


# The resolution loop's subjects in the order the summary shows them (outreach.resolution.events).
RESOLUTION_SUBJECTS = (
    "promise", "arrangement", "instalment", "payment", "hold", "dispute", "verification",
    "means", "cause",
)  # fmt: skip


def resolution_counts(conn: Connection, day: dt.date) -> dict[str, dict[str, int]]:
    """The day's resolution events by subject and the state each reached (a promise ``open``
    is one made, or reopened by a reversal; ``kept``, ``partly_kept``, ``broken``; an
    arrangement ``active``, ``broken``, ``completed``; an instalment ``paid``, ``missed``; a
    payment ``posted``, ``allocated`` to promises and instalments, ``reversed``...).
    The day is the events' time in UTC; a run on the logical clock stamps its settling on its
    day (outreach.services.daily.on_the_day)."""
    start = dt.datetime.combine(day, dt.time())
    window = {"s": start, "e": start + dt.timedelta(days=1)}
    counts: dict[str, dict[str, int]] = {}
    for subject, state, n in conn.execute(
        text("SELECT subject, to_state, COUNT(*) FROM resolution_event WHERE occurred_at >= :s "
             "AND occurred_at < :e GROUP BY subject, to_state"),  # fmt: skip
        window,
    ):
        counts.setdefault(str(subject), {})[str(state)] = int(n)
    order = {s: i for i, s in enumerate(RESOLUTION_SUBJECTS)}
    return {s: dict(sorted(counts[s].items())) for s in sorted(counts, key=lambda s: (
        order.get(s, len(order)), s))}  # fmt: skip


def _counts(conn: Connection, sql: str, day: dt.date) -> dict[str, int]:
    return {str(label): int(n) for label, n in conn.execute(text(sql), {"d": day})}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"Outreach for {summary['as_of']}: {summary['accounts']:,} accounts in the portfolio",
        "",
        f"{'stage':<18} {'channel':<8} {'planned':>8} {'sent':>8} {'deferred':>9} "
        f"{'suppressed':>10} {'failed':>7} {'uncertain':>9}",
    ]
    for stage, channels in sorted(summary["by_stage"].items()):
        for channel, states in sorted(channels.items()):
            # 'planned' here is everything the plan put in the ledger as sendable today.
            planned = sum(
                states.get(s, 0) for s in ("planned", "sending", "sent", "failed", "uncertain")
            )
            lines.append(
                f"{stage:<18} {channel:<8} {planned:>8} {states.get('sent', 0):>8} "
                f"{states.get('deferred', 0):>9} {states.get('suppressed', 0):>10} "
                f"{states.get('failed', 0):>7} {states.get('uncertain', 0):>9}"
            )
    t = summary["totals"]
    lines += ["", "Totals: " + ", ".join(f"{k} {v:,}" for k, v in t.items() if v)]
    if summary.get("accounts_caught_up"):
        lines += [
            f"Entered by catch-up: {summary['accounts_caught_up']:,} accounts (an earlier step "
            "their stage requires had not happened: they start there)"
        ]
    for title, key in (
        ("Suppressed by reason (a contact counts under each of its reasons)",
         "suppressed_by_reason"),
        ("Deferred by reason (a contact counts under each of its reasons)", "deferred_by_reason"),
    ):  # fmt: skip
        if summary[key]:
            lines += ["", f"{title}:"]
            lines += [f"  {code:<36} {n:>7,}" for code, n in summary[key].items()]
    if summary.get("resolution"):
        lines += ["", "Resolution loop (the state each change reached; who and why: explain):"]
        lines += [
            f"  {subject:<14} " + ", ".join(f"{state.replace('_', ' ')} {n:,}"
                                            for state, n in states.items())
            for subject, states in summary["resolution"].items()
        ]  # fmt: skip
    for title, counts in summary.get("people_and_paper", {}).items():
        lines += ["", f"{title[0].upper()}{title[1:]}:"]
        lines += [f"  {label:<36} {n:>7,}" for label, n in sorted(counts.items())]
    if summary.get("quarantined_files"):
        lines += ["", "Files in quarantine (not imported; fix or remove them, see data/inbox):"]
        lines += [f"  {q['file']}: {q['reason']}" for q in summary["quarantined_files"]]
    return "\n".join(lines)


# Where each of our own media keeps what it took, one row per contact (the ledger key).
MEDIA_RECORDS = {
    "call": "SELECT COUNT(*) FROM call_task",
    "letter": "SELECT COUNT(*) FROM document WHERE kind = 'letter'",
    "agency": "SELECT COUNT(*) FROM placement",
    "legal": "SELECT COUNT(*) FROM legal_case",
}


def sent_and_recorded(database_url: str, outbox_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """The ledger's sent contacts by channel, and what the media recorded by channel (the
    outbox's messages, the call tasks, letters, placements and cases): equal when every sent
    contact went out once and none is missing. Counts only."""
    from sqlalchemy import create_engine

    from contact_channels.outbox import count_outbox_by_channel, dispose_engine

    try:
        recorded = dict(count_outbox_by_channel(outbox_url))
    finally:
        dispose_engine(outbox_url)
    engine = create_engine(database_url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            sent = {
                str(channel): int(n)
                for channel, n in conn.execute(
                    text("SELECT channel, COUNT(*) FROM contact WHERE state = 'sent' "
                         "GROUP BY channel")  # fmt: skip
                )
            }
            for channel, query in MEDIA_RECORDS.items():
                count = int(conn.execute(text(query)).scalar_one())
                if count:
                    recorded[channel] = recorded.get(channel, 0) + count
    finally:
        engine.dispose()
    return sent, recorded


# --- the day's plan decisions, one record each (``outreach plan --json``) ----------------------

PLAN_JSON_QUERY = text(
    "SELECT a.account_ref, c.stage, c.action, c.channel, d.verdict, d.reasons, d.window_start, "
    "d.window_end, d.defer_until, c.key, c.slot, c.contact_point_id, d.config_version, "
    "d.pack_versions, d.evidence FROM policy_decision d JOIN contact c ON c.key = d.contact_key "
    "JOIN account a ON a.id = d.account_id WHERE d.phase = 'plan' AND d.as_of = :day "
    "ORDER BY a.account_ref, c.stage, c.action"
)


def _iso_z(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value.isoformat() + "Z"


def plan_decisions(engine: Engine, day: dt.date) -> Iterator[dict[str, Any]]:
    """The plan's gate decisions of ``day``, by account ref, stage and action: the records
    ``outreach plan --json`` prints (and compliance scenarios compare)."""
    with engine.connect() as conn:
        for r in conn.execute(PLAN_JSON_QUERY, {"day": day}):
            evidence = r[14] if isinstance(r[14], dict) else json.loads(r[14] or "{}")
            yield {
                "account_id": r[0],
                "stage": r[1],
                "action": r[2],
                "channel": r[3],
                "verdict": r[4],
                "reasons": r[5].split() if r[5] else [],
                "window_start": _iso_z(r[6]),
                "window_end": _iso_z(r[7]),
                "defer_until": _iso_z(r[8]),
                "key": r[9],
                "slot": r[10],
                "contact_point_id": r[11],
                "ladder_version": r[12],
                "pack_versions": r[13],
                "evidence": evidence,
                # Why a step out of the stage's order: the earlier required step
                # the account lacked (null for a step of its own stage).
                "catch_up": (evidence.get("ladder.catch_up") or {}).get("facts"),
                # What a paused step waits on: the promise or arrangement each hold that
                # blocked it stands for (hold kind -> ref), null when none.
                "refs": paused_by(evidence),
            }


def paused_by(evidence: dict[str, Any]) -> dict[str, str] | None:
    """The refs named by the rules that blocked a step (``core.promise_open``,
    ``core.payment_plan_kept``: the hold's kind and its promise's or arrangement's ref)."""
    refs: dict[str, str] = {}
    for result in evidence.values():
        if isinstance(result, dict) and result.get("outcome") == "block":
            refs.update((result.get("facts") or {}).get("refs") or {})
    return refs or None
