"""Agency placement as our own medium: one ``placement`` row (open) per ledger contact.

Nothing is written to the agency per message: the day's placement file per agency is written
afterwards from these rows (``outreach.media.agency.files.write_placement_files``). The row is keyed by
the ledger key, so a send is idempotent and ``lookup`` is authoritative. At most one open
placement per account: the partial unique index enforces it and a clash is a refusal.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Numeric, bindparam, text
from sqlalchemy.exc import IntegrityError

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.media_fields import PlacementFields, Refusal
from outreach.kernel.clock import utcnow
from outreach.media.documents import app_engine

log = logging.getLogger(__name__)

MONEY = Numeric(14, 2)



class AgencyFileChannel:
    """``kind`` agency, ``backend`` agency_files. ``message.fields`` (``PlacementFields``, from
    ``outreach.media.agency.placement.PlacementHooks``) carry the agency, the account id, the balance placed,
    the placement and recall dates and the agency's capacity; or a ``Refusal`` code."""

    kind = "agency"
    backend = "agency_files"

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        self.engine = app_engine(database_url, self.kind)

    @staticmethod
    def _result(placement_id: int) -> SendResult:
        return SendResult(provider_id=f"placement-{placement_id}", provider_status="placed")

    def lookup(self, key: str) -> SendResult | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT id FROM placement WHERE ledger_key = :k"), {"k": key}
            ).scalar()
        return None if found is None else self._result(int(found))

    def send(self, message: OutboundMessage) -> SendResult:
        found = self.lookup(message.key)
        if found is not None:
            return found  # sent before (a rerun, a recovery): nothing new
        f = PlacementFields.from_fields(message.fields)
        if isinstance(f, Refusal):
            raise PermanentError(f"placement refused: {f.refusal}", code=f.refusal)
        if not f.agency:
            raise PermanentError("no agency allocated for this placement", code="no_agency")
        try:
            account_id = int(f.account_id)
            placed_on = dt.date.fromisoformat(str(f.placed_on))
            recall_due_on = dt.date.fromisoformat(str(f.recall_due_on))
            balance = Decimal(str(f.balance))
        except (ValueError, ArithmeticError) as exc:
            raise PermanentError(
                f"placement fields incomplete ({type(exc).__name__})", code="placement.incomplete"
            ) from None
        agency = str(f.agency)
        capacity = f.agency_capacity
        try:
            with self.engine.begin() as conn:
                if capacity is not None:
                    # A backstop for workers that allocated from the same counts at once.
                    open_now = conn.execute(
                        text("SELECT COUNT(*) FROM placement WHERE agency = :g AND state = 'open'"),
                        {"g": agency},
                    ).scalar_one()
                    if int(open_now) >= int(capacity):
                        raise PermanentError("the agency has no capacity left", code="agency_full")
                conn.execute(
                    text(
                        "INSERT INTO placement (account_id, agency, ledger_key, placed_on, "
                        "balance_at_placement, recall_due_on, state, updated_at) VALUES (:a, :g, "
                        ":k, :placed, :balance, :recall, 'open', :now)"
                    ).bindparams(bindparam("balance", type_=MONEY)),
                    {
                        "a": account_id,
                        "g": agency,
                        "k": message.key,
                        "placed": placed_on,
                        "balance": balance,
                        "recall": recall_due_on,
                        "now": utcnow(),
                    },
                )
        except IntegrityError:
            # The ledger key is taken (another worker placed this very contact: it is sent) or
            # the account has an open placement (uq_placement_open_account): a refusal.
            found = self.lookup(message.key)
            if found is not None:
                return found
            raise PermanentError("the account is already placed", code="already_placed") from None
        found = self.lookup(message.key)
        assert found is not None
        log.info("placed %s with %s", message.key[:16], agency)
        return found

    def close(self) -> None:
        self.engine.dispose()
