"""Legal referral as our own medium: the case package written to the law firm's drop location,
and a ``legal_case`` row (status referred) with a ``document`` row per file.

The package (``<drop>/<day>/<account_ref>/``: ``summary.pdf``, ``history.csv``,
``payments.csv``, ``manifest.json``) is rendered by ``contact_channels.legal_package``; the same
message gives the same bytes. Files are written before the rows: a crash in between leaves no
``legal_case``, so ``lookup`` (authoritative) says not sent and the resend rewrites identical
files. The content comes in ``message.fields`` (``LegalFields``) from
``outreach.media.legal.referral.LegalHooks``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Numeric, bindparam, text
from sqlalchemy.exc import IntegrityError

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.drops import drop_location, write_file
from contact_channels.legal_package import PACKAGE_FILES, render_package
from contact_channels.media_fields import LegalFields, Refusal
from outreach.kernel.clock import utcnow
from outreach.media.documents import app_engine, record_document

log = logging.getLogger(__name__)

MONEY = Numeric(14, 2)



class CounselChannel:
    """``kind`` legal, ``backend`` counsel. ``settings`` is the legal section of channels.yaml:
    its ``drop`` is the root for firms without their own drop location."""

    kind = "legal"
    backend = "counsel"

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        self.data_dir = data_dir
        self.engine = app_engine(database_url, self.kind)

    @staticmethod
    def _result(key: str) -> SendResult:
        return SendResult(provider_id=f"case-{key[:16]}", provider_status="referred")

    def lookup(self, key: str) -> SendResult | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM legal_case WHERE key = :k"), {"k": key}
            ).first()
        return None if found is None else self._result(key)

    def _root(self, fields: LegalFields, firm: str) -> Any:
        fallback = Path(self.data_dir) / "drop" / "legal" if self.data_dir is not None else None
        try:
            return drop_location(
                fields.drop, fields.conn_id, self.settings.get("drop"), fallback, firm
            )
        except ValueError:
            raise PermanentError("no drop location for the law firm", code="legal.no_drop") from None

    def send(self, message: OutboundMessage) -> SendResult:
        if self.lookup(message.key) is not None:
            return self._result(message.key)  # referred before: nothing new
        f = LegalFields.from_fields(message.fields)
        if isinstance(f, Refusal):
            raise PermanentError(f"referral refused: {f.refusal}", code=f.refusal)
        try:
            account_id = int(f.account_id)
            account_ref = str(f.account_ref)
            firm = str(f.firm)
            day = dt.date.fromisoformat(str(f.referred_on))
            balance = Decimal(str(f.balance))
            files = render_package(f)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PermanentError(
                f"case package content incomplete ({type(exc).__name__})", code="legal.incomplete"
            ) from None
        with self.engine.connect() as conn:
            other = conn.execute(
                text("SELECT key FROM legal_case WHERE account_id = :a"), {"a": account_id}
            ).scalar()
        if other is not None:
            raise PermanentError("the account is already referred", code="legal.already_referred")
        folder = self._root(f, firm) / day.isoformat() / quote(account_ref, safe="")
        written: list[tuple[str, bytes]] = []
        for name in PACKAGE_FILES:
            path = folder / name
            data = files[name]
            write_file(path, data)
            written.append((str(path), data))
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO legal_case (key, account_id, firm, referred_on, status, "
                        "balance_at_referral, updated_at) VALUES (:k, :a, :firm, :day, 'referred', "
                        ":balance, :now)"
                    ).bindparams(bindparam("balance", type_=MONEY)),
                    {"k": message.key, "a": account_id, "firm": firm, "day": day,
                     "balance": balance, "now": now},
                )  # fmt: skip
                for path, data in written:
                    record_document(
                        conn, kind="case_package", day=day, recipient=firm, path=path, data=data,
                        now=now, ledger_key=message.key, account_id=account_id,
                    )  # fmt: skip
        except IntegrityError:
            if self.lookup(message.key) is not None:
                return self._result(message.key)
            raise PermanentError(
                "the account is already referred", code="legal.already_referred"
            ) from None
        log.info("referred %s to %s (%d files)", message.key[:16], firm, len(written))
        return self._result(message.key)

    def close(self) -> None:
        self.engine.dispose()
