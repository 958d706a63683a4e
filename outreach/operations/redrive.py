"""Redrive: give contacts that failed only transiently back to the dispatcher, while their window lasts.

The dispatcher gives up on a contact after ``MAX_TRANSIENT_ATTEMPTS`` transient failures (429s,
5xx replies, refused connections) and leaves it ``failed`` for a person or for this redrive.
Nothing reached the consumer for such a contact, so it may be sent again: the redrive moves it
back to ``planned`` with its attempts reset, and the normal dispatch (``dispatch_range``) claims
it, judges it again with the send-time gate (an opt-out, a payment or a dispute recorded since
is honoured there) and sends it.

What a failure was is decided by ``contact_channels.retry`` (``classify`` and ``OUTCOMES``),
the same table the adapter used at send time, from the ``error_code`` and ``error_detail`` that
``outreach.dispatch.recording.settle`` recorded. Permanent failures, uncertain contacts (never
resent automatically) and codes the table does not call transient are never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, text

from contact_channels.registry import PROVIDER_FOR_KIND
from contact_channels.retry import OUTCOMES, Outcome, classify
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_instant

log = logging.getLogger(__name__)

# ``retry.http_error`` words an error reply "<provider> refused: HTTP <status>, code <code>...";
# the ledger keeps the code in ``error_code`` and that text in ``error_detail``.
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
# What ``settle`` records when an error carried no code: the class's own classification.
_BARE_OUTCOMES = {o.value: o for o in Outcome}
REDRIVE_NOTE = "redriven after transient failure"


@dataclass
class RedriveCounts:
    failed: int = 0  # failed rows of the day and channel looked at
    redriven: int = 0  # moved back to planned
    not_transient: int = 0  # permanent, uncertain or unknown codes: left alone
    window_passed: int = 0  # transient, but too late to send today

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def failure_outcome(
    channel: str, error_code: str | None, error_detail: str | None, backend: str | None = None
) -> Outcome:
    """What a recorded failure was, by the shared classification table.

    ``net:*`` and ``http:*`` codes are looked up as they are. A provider's own code (Twilio's
    ``20429``) is classified as the adapter classified it, with the HTTP status read back from
    the recorded detail (Twilio sends 20503 with a 503, which only the status makes transient).
    A code the table does not know is uncertain, so it is never redriven.
    """
    if not error_code:
        return Outcome.UNCERTAIN
    if error_code in _BARE_OUTCOMES:
        return _BARE_OUTCOMES[error_code]
    if error_code.startswith("net:"):
        return OUTCOMES.get(error_code, OUTCOMES["net:unknown"]).outcome
    provider = backend or PROVIDER_FOR_KIND.get(channel, ("", ""))[0]
    if error_code.startswith("http:"):
        status = error_code.removeprefix("http:")
        return classify(provider, status=int(status) if status.isdigit() else None).outcome
    found = _HTTP_STATUS.search(error_detail or "")
    return classify(
        provider, status=int(found.group(1)) if found else None, code=error_code
    ).outcome


def redrive_failed(
    engine: Engine,
    day: dt.date,
    channel: str,
    *,
    now: Callable[[], dt.datetime] = utcnow,
) -> dict[str, int]:
    """Move ``channel``'s transiently failed contacts of ``day`` whose window is still open back
    to ``planned``, in one transaction; returns counts (no personal data).

    Each redriven row gets ``attempts = 0`` (the dispatcher's transient budget starts again),
    ``error_code`` cleared, and ``error_detail`` saying which code it was redriven after (the
    history line the sent row keeps until ``mark_sent`` clears it). The update re-checks that
    the row is still ``failed`` with the same code, so a concurrent change is never overwritten.
    Running it twice redrives nothing the second time: the rows are no longer ``failed``.
    """
    at = now()
    counts = RedriveCounts()
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT key, error_code, error_detail, backend, window_end FROM contact "
                "WHERE plan_date = :day AND channel = :channel AND state = 'failed'"
            ),
            {"day": day, "channel": channel},
        ).all()
        counts.failed = len(rows)
        redrive: list[dict[str, object]] = []
        for r in rows:
            if failure_outcome(channel, r.error_code, r.error_detail, r.backend) is not (
                Outcome.TRANSIENT
            ):
                counts.not_transient += 1
            elif r.window_end is None or as_instant(r.window_end) <= at:
                counts.window_passed += 1
            else:
                redrive.append(
                    {
                        "k": r.key,
                        "code": r.error_code,
                        "now": at,
                        "note": f"{REDRIVE_NOTE} {r.error_code}"[:300],
                    }
                )
        for params in redrive:  # one by one: each row's own rowcount says whether it moved
            counts.redriven += conn.execute(
                text(
                    "UPDATE contact SET state = 'planned', attempts = 0, claim_token = NULL, "
                    "error_code = NULL, error_detail = :note, updated_at = :now "
                    "WHERE key = :k AND state = 'failed' AND error_code = :code"
                ),
                params,
            ).rowcount
    log.info("redrive %s %s: %s", channel, day, counts.as_dict())
    return counts.as_dict()
