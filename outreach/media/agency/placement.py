"""Agency placement: the agencies and law firms config, allocation at send time, the daily
placement and recall files, and what agencies report back.

``config/agencies.yaml`` (or ``OUTREACH_AGENCIES``) names the agencies (licensed jurisdictions,
capacity, approval, commission, drop location, recall period), the allocation rule (balance
bands, then round robin or by performance), the law firms and the legal referral settings; it
is validated at load and every error names its YAML path. Details: docs/agency-and-legal.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Numeric, bindparam, text

from contact_channels.csvsafe import restore
from contact_channels.media import csv_bytes, drop_location, record_document
from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    read_config_file,
    validate_yaml,
)
from outreach.kernel.facts import AccountRecord, as_date
from outreach.kernel.policy_settings import policy_settings
from outreach.planning.kinds import ChannelHooks, MessageContext, channel_settings
from policies.model import Step, Verdict

log = logging.getLogger(__name__)

# --- the config ---------------------------------------------------------------------------------

Identifier = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
# ISO 3166-1 country ("US", "CN": the whole country) or ISO 3166-2 subdivision ("US-NY").
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agency(_Strict):
    id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    # strict: YAML's `true` is not a capacity, nor "yes" (a string) an approval.
    capacity: int = Field(ge=0, strict=True)  # open placements at most
    approved: bool = Field(strict=True)
    commission_rate: Decimal = Field(ge=0, le=1)
    # Where its placement and recall files go (file://, s3://, sftp://...); credentials never
    # here: ``conn_id`` names the Airflow connection the object storage uses.
    drop: str | None = None
    conn_id: str | None = None
    recall_after_days: int = Field(ge=1, le=3650, strict=True)


class Band(_Strict):
    """Accounts whose balance is in [min_balance, max_balance) may go to these agencies."""

    min_balance: Decimal = Field(default=Decimal(0), ge=0)
    max_balance: Decimal | None = Field(default=None, gt=0)
    agencies: tuple[str, ...] = Field(min_length=1)

    def holds(self, balance: Decimal) -> bool:
        return self.min_balance <= balance and (
            self.max_balance is None or balance < self.max_balance
        )


class Allocation(_Strict):
    strategy: Literal["round_robin", "performance"] = "round_robin"
    # Performance = recovered / placed over the placements of the last this many days.
    performance_days: int = Field(default=365, ge=1, le=3650, strict=True)
    bands: tuple[Band, ...] = Field(min_length=1)


class LawFirm(_Strict):
    id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    drop: str | None = None
    conn_id: str | None = None


class AgencyConfig(_Strict):
    agencies: tuple[Agency, ...] = ()
    allocation: Allocation | None = None
    law_firms: tuple[LawFirm, ...] = ()

    def agency(self, agency_id: str) -> Agency | None:
        return next((a for a in self.agencies if a.id == agency_id), None)

    def firm(self, firm_id: str) -> LawFirm | None:
        return next((f for f in self.law_firms if f.id == firm_id), None)


class AgencyConfigError(ConfigFileError):
    pass


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.path):
        return "must be a URL such as file:///srv/drop/agency or s3://bucket/agency"
    if parts.password is not None or parts.username is not None:
        return "must not carry credentials: name an Airflow connection in conn_id instead"
    return None


def _semantic_errors(model: AgencyConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    pattern = re.compile(JURISDICTION_PATTERN)
    sections: tuple[tuple[str, Sequence[Agency | LawFirm]], ...] = (
        ("agencies", model.agencies),
        ("law_firms", model.law_firms),
    )
    for section, items in sections:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                errors.append((f"{section}[{i}].id", f"duplicate id '{item.id}'"))
            seen.add(item.id)
            for j, code in enumerate(item.jurisdictions):
                if not pattern.fullmatch(code):
                    errors.append(
                        (f"{section}[{i}].jurisdictions[{j}]",
                         f"{code!r} is not a jurisdiction such as US, US-NY or CN")
                    )  # fmt: skip
            if item.drop is not None and (problem := _url_problem(item.drop)):
                errors.append((f"{section}[{i}].drop", problem))
    if model.agencies and model.allocation is None:
        errors.append(("allocation", "required when agencies are configured"))
    if model.allocation is not None:
        ids = {a.id for a in model.agencies}
        bands = model.allocation.bands
        for i, band in enumerate(bands):
            if band.max_balance is not None and band.max_balance <= band.min_balance:
                errors.append((f"allocation.bands[{i}].max_balance", "must be above min_balance"))
            for j, agency_id in enumerate(band.agencies):
                if agency_id not in ids:
                    errors.append(
                        (f"allocation.bands[{i}].agencies[{j}]", f"unknown agency '{agency_id}'")
                    )
            for k, other in enumerate(bands[:i]):
                top = band.max_balance
                other_top = other.max_balance
                if (top is None or other.min_balance < top) and (
                    other_top is None or band.min_balance < other_top
                ):
                    errors.append(
                        (f"allocation.bands[{i}].min_balance",
                         f"the band overlaps allocation.bands[{k}]: an account would be in both")
                    )  # fmt: skip
    return errors


def check_agency_config_text(text: str) -> tuple[AgencyConfig | None, list[ConfigError]]:
    """Parse and validate the config; errors name their YAML path (and line)."""
    model, errors, lines = validate_yaml(text, AgencyConfig)
    if model is None:
        return None, errors
    errors = [
        ConfigError(path, msg, lines.get(path) or lines.get(path.rsplit(".", 1)[0]))
        for path, msg in _semantic_errors(model)
    ]
    return (model if not errors else None), errors


def agency_config_path() -> Path:
    return Path(settings.AGENCIES.get(settings.config_dir() / "agencies.yaml"))


def parse_agency_config(text: str, source: str) -> AgencyConfig:
    model, errors = check_agency_config_text(text)
    if model is None:
        raise AgencyConfigError(source, errors)
    return model


def agency_config() -> AgencyConfig:
    """The config in force; an empty one (no agency, no firm, default legal settings) when the
    file is absent, so that a placement then fails with ``no_agency`` rather than the run."""
    return read_config_file(agency_config_path(), parse_agency_config, AgencyConfig)


def jurisdiction_codes(country: str, region: str | None) -> frozenset[str]:
    """The codes that cover an account: its country and, with a region, its subdivision."""
    codes = {country}
    if region:
        codes.add(region if region.startswith(f"{country}-") else f"{country}-{region}")
    return frozenset(codes)


def licensed(jurisdictions: Iterable[str], country: str, region: str | None) -> bool:
    return not jurisdiction_codes(country, region).isdisjoint(jurisdictions)


def drop_root(kind: str, recipient: str, drop: str | None, conn_id: str | None) -> Any:
    """The recipient's drop location as an ObjectStoragePath: its own ``drop``, else the
    channel's ``drop`` in channels.yaml plus the recipient's id, else under the data dir."""
    return drop_location(
        drop, conn_id, channel_settings(kind).get("drop"), settings.data_dir() / "drop" / kind,
        recipient,
    )  # fmt: skip


# --- what an agency gets about an account -------------------------------------------------------

# The placement line: the least personal data an agency needs to work the account.
PLACEMENT_COLUMNS = (
    "account_ref",
    "full_name",
    "address_line1",
    "city",
    "region",
    "postal_code",
    "country",
    "phone1",
    "phone2",
    "phone3",
    "currency",
    "balance",
    "past_due",
    "charge_off_date",
    "last_payment_date",
    "placed_on",
    "recall_due_on",
)
RECALL_COLUMNS = ("account_ref", "placed_on", "recalled_on", "recall_reason")
MAX_PHONES = 3
CENT = Decimal("0.01")
MONEY = Numeric(14, 2)  # binds a Decimal on every driver (SQLite has no decimal type)


def _decimal(value: object) -> Decimal:
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(CENT)


def _ids_param(sql: str) -> Any:
    return text(sql).bindparams(bindparam("ids", expanding=True))


IN_BATCH = 5000  # ids per IN (...) list: SQLite allows 32766 parameters a statement


def account_lines(
    conn: Connection, account_ids: Sequence[int], day: dt.date
) -> dict[int, dict[str, str]]:
    """Per account: ref, name, postal address, up to three valid phones of the debtor, currency,
    balance and past due after the payments known on ``day``, charge-off and last payment
    dates. Values as text ('' when unknown), ready for a CSV or a message's fields."""
    ids = sorted(set(account_ids))
    out: dict[int, dict[str, str]] = {}
    for i in range(0, len(ids), IN_BATCH):
        out.update(_account_lines(conn, ids[i : i + IN_BATCH], day))
    return out


def _account_lines(conn: Connection, ids: list[int], day: dt.date) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    balance_as_of: dict[int, dt.date] = {}
    amounts: dict[int, tuple[Decimal, Decimal]] = {}
    for r in conn.execute(
        _ids_param(
            "SELECT a.id, a.account_ref, p.full_name, p.address_line1, p.city, p.region, "
            "p.postal_code, p.country, a.currency, a.balance, a.amount_past_due, a.balance_as_of, "
            "a.charge_off_date FROM account a JOIN person p ON p.id = a.person_id "
            "WHERE a.id IN :ids"
        ),
        {"ids": ids},
    ):
        out[r[0]] = {
            "account_ref": r[1],
            "full_name": r[2] or "",
            "address_line1": r[3] or "",
            "city": r[4] or "",
            "region": r[5] or "",
            "postal_code": r[6] or "",
            "country": r[7] or "",
            "currency": r[8],
            "charge_off_date": str(as_date(r[12]) or ""),
            "last_payment_date": "",
            **{f"phone{i + 1}": "" for i in range(MAX_PHONES)},
        }
        amounts[r[0]] = (_decimal(r[9]), _decimal(r[10]))
        balance_as_of[r[0]] = as_date(r[11])  # type: ignore[assignment]
    phones: dict[int, list[str]] = {}
    for account_id, value in conn.execute(
        _ids_param(
            "SELECT a.id, cp.value FROM contact_point cp JOIN account a ON a.person_id = cp.person_id "
            "WHERE a.id IN :ids AND cp.kind = 'phone' AND cp.relation = 'self' AND cp.valid "
            "ORDER BY a.id, cp.priority, cp.id"
        ),
        {"ids": ids},
    ):
        phones.setdefault(account_id, []).append(value)
    for account_id, numbers in phones.items():
        for i, number in enumerate(numbers[:MAX_PHONES]):
            out[account_id][f"phone{i + 1}"] = number
    paid: dict[int, Decimal] = {}
    for account_id, paid_on, amount in conn.execute(
        _ids_param(
            "SELECT account_id, paid_on, amount FROM payment WHERE account_id IN :ids "
            "AND paid_on <= :day ORDER BY account_id, paid_on"
        ),
        {"ids": ids, "day": day},
    ):
        on = as_date(paid_on)
        assert on is not None
        out[account_id]["last_payment_date"] = str(on)
        # As the gate's facts do: payments after the balance's date reduce it.
        if on > balance_as_of[account_id]:
            paid[account_id] = paid.get(account_id, Decimal(0)) + _decimal(amount)
    for account_id, (balance, past_due) in amounts.items():
        p = paid.get(account_id, Decimal(0))
        out[account_id]["balance"] = str(max(Decimal(0), balance - p).quantize(CENT))
        out[account_id]["past_due"] = str(max(Decimal(0), past_due - p).quantize(CENT))
    return out


# --- recall reasons, shared by recall and by the placement itself -------------------------------

# Holds that end a placement at once, strongest first (the first found is the reason given).
RECALL_HOLDS = ("bankruptcy", "dispute", "cease_communication")
RECALL_REASONS = (*RECALL_HOLDS, "paid_in_full", "brought_current", "recall_due")


def recall_reason(
    holds: Iterable[str],
    balance: Decimal,
    past_due: Decimal,
    *,
    recall_due_on: dt.date | None = None,
    day: dt.date | None = None,
) -> str | None:
    """Why a placement must end (or must not start): a hold, nothing owed, nothing past due, or
    its recall date reached. None while it may stay with the agency."""
    active = set(holds)
    for kind in RECALL_HOLDS:
        if kind in active:
            return kind
    if balance <= 0:
        return "paid_in_full"
    if past_due <= 0:
        return "brought_current"
    if recall_due_on is not None and day is not None and recall_due_on <= day:
        return "recall_due"
    return None


# --- allocation (the dispatcher's hooks) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Allocated:
    agency: Agency | None
    band: int | None
    refusal: str | None = None


class PlacementHooks(ChannelHooks):
    """Allocates each placement's agency before the gate judges it, and gives the adapter the
    placement line. Built once per dispatch run: open placements per agency, the round-robin
    position and the agencies' performance are read once, then kept up to date in the run."""

    def __init__(self, engine: Engine | None = None, day: dt.date | None = None) -> None:
        super().__init__(engine, day)
        self.config = agency_config()
        self.allocation = self.config.allocation
        # The approved list of config/policy.yaml, when it names any agency, narrows the
        # agencies approved in agencies.yaml (the China rule needs an approved agency).
        self.policy_approved = policy_settings().approved_agencies
        self.open_counts: Counter[str] = Counter()
        self.last_allocated: dict[int, str] = {}  # band -> the agency that got the latest one
        self.performance: dict[str, Decimal] = {}
        self._pending: dict[str, _Allocated] = {}
        self._placed_accounts: set[int] = set()
        if engine is not None and self.allocation is not None:
            self._load(engine, day)

    def _load(self, engine: Engine, day: dt.date | None) -> None:
        assert self.allocation is not None
        with engine.connect() as conn:
            for agency, n in conn.execute(
                text("SELECT agency, COUNT(*) FROM placement WHERE state = 'open' GROUP BY agency")
            ):
                self.open_counts[agency] = int(n)
            for i, band in enumerate(self.allocation.bands):
                last = conn.execute(
                    text(
                        "SELECT agency FROM placement WHERE agency IN :ids ORDER BY id DESC LIMIT 1"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": list(band.agencies)},
                ).scalar()
                if last is not None:
                    self.last_allocated[i] = last
            if self.allocation.strategy == "performance" and day is not None:
                self.performance = agency_performance(conn, day, self.allocation.performance_days)

    def approved(self, agency: Agency) -> bool:
        return agency.approved and (not self.policy_approved or agency.id in self.policy_approved)

    def allocate(self, balance: Decimal, country: str, region: str | None) -> _Allocated:
        """The agency for an account, by the rule: the balance's band, then the agencies of
        the band licensed for the account's jurisdiction, approved, with capacity left, then
        round robin in id order (after the one that got the latest placement) or the best
        recovered/placed ratio (ties by id)."""
        if self.allocation is None:
            return _Allocated(None, None)
        band_i = next((i for i, b in enumerate(self.allocation.bands) if b.holds(balance)), None)
        if band_i is None:
            return _Allocated(None, None)
        eligible = sorted(
            (
                a
                for a in (self.config.agency(x) for x in self.allocation.bands[band_i].agencies)
                if a is not None
                and licensed(a.jurisdictions, country, region)
                and self.approved(a)
                and self.open_counts[a.id] < a.capacity
            ),
            key=lambda a: a.id,
        )
        if not eligible:
            return _Allocated(None, band_i)
        if self.allocation.strategy == "performance":
            best = min(eligible, key=lambda a: (-self.performance.get(a.id, Decimal(0)), a.id))
            return _Allocated(best, band_i)
        last = self.last_allocated.get(band_i)
        following = [a for a in eligible if last is None or a.id > last]
        return _Allocated((following or eligible)[0], band_i)

    def preview(self, step: Step, account: AccountRecord) -> Step:
        """The step as the gate would see it at send time, for the planner (no side effect:
        nothing is counted against capacity or the round robin until a send)."""
        allocated = self.allocate(account.balance, account.country, account.region)
        if allocated.agency is None:
            return step
        return replace(step, agency=allocated.agency.id, agency_approved=True)

    def step(self, step: Step, ctx: MessageContext) -> Step:
        account = ctx.account
        open_placement = ctx.conn.execute(
            text("SELECT 1 FROM placement WHERE account_id = :a AND state = 'open'"),
            {"a": account.id},
        ).first()
        if open_placement is not None or account.id in self._placed_accounts:
            # Never a second open placement; the gate (core.placed_with_agency) or the
            # adapter refuses it.
            self._pending[ctx.contact.key] = _Allocated(None, None, "already_placed")
            return step
        allocated = self.allocate(account.balance, account.country, account.region)
        self._pending[ctx.contact.key] = allocated
        if allocated.agency is None:
            return step
        return replace(step, agency=allocated.agency.id, agency_approved=True)

    def fields(self, ctx: MessageContext, verdict: Verdict) -> dict[str, Any]:
        account = ctx.account
        allocated = self._pending.pop(ctx.contact.key, None)
        if allocated is None:  # not seen by step (a caller that skipped it): allocate now
            self.step(Step("agency"), ctx)
            allocated = self._pending.pop(ctx.contact.key)
        if allocated.refusal is not None:
            return {"refusal": allocated.refusal}
        # What would recall the placement at once must not start it either. The gates hold each
        # of these already (core.bankruptcy, core.dispute_before_referral,
        # core.cease_before_placement, core.not_delinquent); this keeps the recall's own
        # reading and the start in step if a pack changes.
        reason = recall_reason(account.holds, account.balance, account.past_due)
        if reason is not None:
            return {"refusal": f"placement.{reason}"}
        agency = allocated.agency
        if agency is None:
            return {"refusal": "no_agency"}
        day = ctx.day
        self.open_counts[agency.id] += 1
        if allocated.band is not None:
            self.last_allocated[allocated.band] = agency.id
        self._placed_accounts.add(account.id)
        line = account_lines(ctx.conn, [account.id], day)[account.id]
        recall_due_on = day + dt.timedelta(days=agency.recall_after_days)
        return {
            **line,
            "account_id": account.id,
            "agency": agency.id,
            "agency_capacity": agency.capacity,
            "placed_on": day.isoformat(),
            "recall_due_on": recall_due_on.isoformat(),
        }


def agency_performance(conn: Connection, day: dt.date, days: int) -> dict[str, Decimal]:
    """Recovered / placed per agency over the placements made in the ``days`` up to ``day``:
    payments the agencies reported (placement_return) over the balances placed."""
    since = day - dt.timedelta(days=days)
    out: dict[str, Decimal] = {}
    for agency, placed, recovered in conn.execute(
        text(
            "SELECT p.agency, SUM(p.balance_at_placement), SUM(COALESCE(r.recovered, 0)) "
            "FROM placement p LEFT JOIN (SELECT placement_id, SUM(amount) AS recovered "
            "FROM placement_return WHERE kind = 'payment' GROUP BY placement_id) r "
            "ON r.placement_id = p.id WHERE p.placed_on > :since AND p.placed_on <= :day "
            "GROUP BY p.agency"
        ),
        {"since": since, "day": day},
    ):
        placed_total = _decimal(placed or 0)
        if placed_total > 0:
            out[agency] = _decimal(recovered or 0) / placed_total
    return out


# --- files for the agencies ---------------------------------------------------------------------


def write_if_changed(path: Any, data: bytes) -> bool:
    """Write ``data`` to an ObjectStoragePath unless it already holds exactly these bytes."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True



def _write_agency_files(
    engine: Engine,
    day: dt.date,
    kind: str,
    name: str,
    columns: Sequence[str],
    rows_by_agency: Mapping[str, list[dict[str, str]]],
) -> dict[str, int]:
    config = agency_config()
    counts = {"files_written": 0, "files_unchanged": 0}
    now = utcnow()
    for agency_id in sorted(rows_by_agency):
        rows = sorted(rows_by_agency[agency_id], key=lambda r: (r["account_ref"], r["placed_on"]))
        agency = config.agency(agency_id)
        root = drop_root(
            "agency", agency_id, agency.drop if agency else None, agency.conn_id if agency else None
        )
        path = root / day.isoformat() / f"{name}-{agency_id}.csv"
        data = csv_bytes(columns, rows)
        written = write_if_changed(path, data)
        counts["files_written" if written else "files_unchanged"] += 1
        with engine.begin() as conn:
            record_document(
                conn, kind=kind, day=day, recipient=agency_id, path=str(path), data=data, now=now
            )
    return counts


def write_placement_files(engine: Engine, day: dt.date) -> dict[str, int]:
    """One CSV per agency of the accounts placed with it on ``day`` (recalled since or not, so
    a rerun after a recall writes the same file): ``<drop>/<day>/placements-<agency>.csv``,
    sorted by account, with a ``document`` row (kind placement_file). A rerun of the same day
    on the same data writes nothing and adds no row."""
    with engine.connect() as conn:
        placements = conn.execute(
            text(
                "SELECT account_id, agency, balance_at_placement, placed_on, recall_due_on "
                "FROM placement WHERE placed_on = :day ORDER BY agency, account_id"
            ),
            {"day": day},
        ).all()
        lines = account_lines(conn, [p[0] for p in placements], day)
    by_agency: dict[str, list[dict[str, str]]] = {}
    for account_id, agency, balance, placed_on, recall_due_on in placements:
        by_agency.setdefault(agency, []).append(
            {
                **lines[account_id],
                # The balance as placed: what the agency was given to collect.
                "balance": str(_decimal(balance)),
                "placed_on": str(as_date(placed_on)),
                "recall_due_on": str(as_date(recall_due_on)),
            }
        )
    counts = _write_agency_files(
        engine, day, "placement_file", "placements", PLACEMENT_COLUMNS, by_agency
    )
    return {"agencies": len(by_agency), "placements": len(placements), **counts}


# --- recall -------------------------------------------------------------------------------------


def recall_placements(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Recall the open placements whose recall date has come, and at once those whose account
    is disputed, bankrupt, under a cease request, paid in full or no longer past due (facts as
    of ``day``: holds active on it, payments up to it). Then one recall file per agency of the
    placements recalled on ``day``: ``<drop>/<day>/recalls-<agency>.csv`` (document kind
    recall_file). Idempotent: a rerun recalls nothing new and rewrites the same bytes."""
    now = utcnow()
    recalled: Counter[str] = Counter()
    with engine.begin() as conn:
        # Balance and past due as the gate's facts have them on ``day``: less the payments
        # made after the balance's date.
        placements = conn.execute(
            text(
                "SELECT p.id, p.account_id, p.recall_due_on, a.balance, a.amount_past_due, "
                "(SELECT COALESCE(SUM(y.amount), 0) FROM payment y WHERE y.account_id = p.account_id "
                "AND y.paid_on > a.balance_as_of AND y.paid_on <= :day) "
                "FROM placement p JOIN account a ON a.id = p.account_id "
                "WHERE p.state = 'open' AND p.placed_on <= :day ORDER BY p.id"
            ),
            {"day": day},
        ).all()
        holds: dict[int, set[str]] = {}
        for account_id, kind in conn.execute(
            text(
                "SELECT account_id, kind FROM account_hold WHERE account_id IN "
                "(SELECT account_id FROM placement WHERE state = 'open') "
                "AND kind IN :kinds AND started_on <= :day "
                "AND (ended_on IS NULL OR ended_on > :day)"
            ).bindparams(bindparam("kinds", expanding=True)),
            {"day": day, "kinds": list(RECALL_HOLDS)},
        ):
            holds.setdefault(account_id, set()).add(kind)
        for placement_id, account_id, recall_due_on, balance, past_due, paid in placements:
            reason = recall_reason(
                holds.get(account_id, ()),
                _decimal(balance) - _decimal(paid),
                _decimal(past_due) - _decimal(paid),
                recall_due_on=as_date(recall_due_on),
                day=day,
            )
            if reason is None:
                continue
            conn.execute(
                text(
                    "UPDATE placement SET state = 'recalled', recalled_on = :day, "
                    "recall_reason = :reason, updated_at = :now WHERE id = :id AND state = 'open'"
                ),
                {"day": day, "reason": reason, "now": now, "id": placement_id},
            )
            recalled[reason] += 1
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.agency, a.account_ref, p.placed_on, p.recalled_on, p.recall_reason "
                "FROM placement p JOIN account a ON a.id = p.account_id "
                "WHERE p.state = 'recalled' AND p.recalled_on = :day"
            ),
            {"day": day},
        ).all()
    by_agency: dict[str, list[dict[str, str]]] = {}
    for agency, account_ref, placed_on, recalled_on, reason in rows:
        by_agency.setdefault(agency, []).append(
            {
                "account_ref": account_ref,
                "placed_on": str(as_date(placed_on)),
                "recalled_on": str(as_date(recalled_on)),
                "recall_reason": reason,
            }
        )
    counts = _write_agency_files(engine, day, "recall_file", "recalls", RECALL_COLUMNS, by_agency)
    log.info("recall %s: %d recalled %s", day, sum(recalled.values()), dict(recalled))
    return {
        "open_checked": len(placements),
        "recalled": sum(recalled.values()),
        "by_reason": {r: recalled[r] for r in RECALL_REASONS if recalled[r]},
        "recalled_today": len(rows),
        **counts,
    }


# --- what agencies report back ------------------------------------------------------------------

RETURN_COLUMNS = ("return_ref", "account_ref", "occurred_on", "kind", "amount", "outcome")
RETURN_KINDS = frozenset({"payment", "outcome"})
# Outcomes an agency reports that are holds here too: recorded at once, so the gate and the
# next recall see them.
HOLD_OUTCOMES = frozenset({"dispute", "bankruptcy", "cease_communication", "deceased", "attorney"})


@dataclass
class _Return:
    line: int
    return_ref: str  # '<agency>:<the agency's ref>'
    account_ref: str
    occurred_on: dt.date
    kind: str
    amount: Decimal | None
    outcome: str | None


def _parse_return(agency: str, row: Any) -> _Return:
    from outreach.portfolio.rows import Reject as _Reject
    from outreach.portfolio.rows import choice as _choice
    from outreach.portfolio.rows import date as _date
    from outreach.portfolio.rows import money as _money
    from outreach.portfolio.rows import required_text as _required_text
    from outreach.portfolio.rows import text as _text

    d = row.data
    ref = _required_text(d.get("return_ref"), "return_ref", max_len=63 - len(agency))
    kind = _choice(d.get("kind"), "kind", RETURN_KINDS)
    amount: Decimal | None = None
    if kind == "payment":
        amount = _money(d.get("amount"), "amount", positive=True)
    elif d.get("amount") not in (None, ""):
        amount = _money(d.get("amount"), "amount")
    outcome = _text(d.get("outcome"), "outcome", max_len=64)
    if kind == "outcome" and outcome is None:
        raise _Reject("outcome", "required for an outcome")
    if outcome is not None:
        outcome = outcome.lower()
    occurred_on = _date(d.get("occurred_on"), "occurred_on", required=True)
    assert occurred_on is not None
    return _Return(
        row.line,
        f"{agency}:{ref}",
        # As our placement file had it: a neutralised ref matches with its quote or without.
        restore(_required_text(d.get("account_ref"), "account_ref", max_len=64)),
        occurred_on,
        kind,
        amount,
        outcome,
    )


def _read_returns_text(path: str | Path) -> str:
    if "://" in str(path):
        from airflow.sdk import ObjectStoragePath

        data: bytes = ObjectStoragePath(str(path)).read_bytes()
    else:
        data = Path(path).read_bytes()
    return data.decode("utf-8-sig")


def import_agency_returns(
    engine: Engine, agency: str, path: str | Path, at: dt.datetime
) -> dict[str, Any]:
    """Import an agency's returns file (CSV: return_ref, account_ref, occurred_on, kind
    payment|outcome, amount, outcome) into ``placement_return``, payments also into ``payment``
    (payment_ref '<agency>:<return_ref>') so the account's facts see them; outcomes that are
    holds (dispute, bankruptcy, cease_communication, ...) into ``account_hold``. Idempotent on
    return_ref. Bad rows go to a rejects file (JSON lines: line, field, reason, record), as the
    portfolio import writes them. ``at`` is the import's instant (recorded_at, rejects name)."""
    from outreach.portfolio.files import ImportFileError
    from outreach.portfolio.files import RejectsFile as _RejectsFile
    from outreach.portfolio.files import default_rejects_path as _default_rejects_path
    from outreach.portfolio.rows import Reject as _Reject
    from outreach.portfolio.rows import Row as _Row

    source = Path(urlsplit(str(path)).path if "://" in str(path) else path)
    try:
        content = _read_returns_text(path)
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{source.name}: not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(io.StringIO(content), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise ImportFileError(f"{source.name}: line 1: {exc}") from None
    missing = [c for c in ("return_ref", "account_ref", "occurred_on", "kind") if c not in header]
    if missing:
        raise ImportFileError(f"{source.name}: the CSV header lacks {', '.join(missing)}")
    rejects = _RejectsFile(_default_rejects_path(source, at), always=False)
    counts = {
        "rows_read": 0,
        "inserted": 0,
        "payments": 0,
        "holds": 0,
        "duplicates": 0,
        "rejected": 0,
    }
    config = agency_config()
    if config.agencies and config.agency(agency) is None:
        raise ImportFileError(f"{source.name}: unknown agency {agency!r} (config/agencies.yaml)")
    rows: list[_Row] = []
    previous_end = reader.line_num
    try:
        for values in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            data = {h: v for h, v in zip(header, values, strict=False) if v != ""}
            error = (
                f"{len(values)} values for {len(header)} header columns"
                if len(values) > len(header)
                else None
            )
            rows.append(_Row(start, "agency_return", data, values, header, error))
    except csv.Error as exc:
        raise ImportFileError(f"{source.name}: line {previous_end + 1}: {exc}") from None
    try:
        with engine.begin() as conn:
            for row in rows:
                counts["rows_read"] += 1
                try:
                    if row.error is not None:
                        raise _Reject(None, row.error)
                    outcome = _apply_return(conn, agency, _parse_return(agency, row), at)
                except _Reject as rej:
                    rejects.write(row, rej.field, rej.reason)
                    counts["rejected"] += 1
                    continue
                for name in outcome:
                    counts[name] += 1
    finally:
        rejects.close()
    log.info("agency returns %s: %s", agency, counts)
    return {**counts, "rejects_file": str(rejects.path) if rejects.written else None}


def _apply_return(conn: Connection, agency: str, r: _Return, at: dt.datetime) -> list[str]:
    from outreach.portfolio.rows import Reject as _Reject

    placement = conn.execute(
        text(
            "SELECT p.id, p.account_id FROM placement p JOIN account a ON a.id = p.account_id "
            "WHERE a.account_ref = :ref AND p.agency = :agency AND p.placed_on <= :on "
            "ORDER BY p.placed_on DESC, p.id DESC LIMIT 1"
        ),
        {"ref": r.account_ref, "agency": agency, "on": r.occurred_on},
    ).first()
    if placement is None:
        raise _Reject(
            "account_ref", f"no placement of this account with {agency} on or before occurred_on"
        )
    placement_id, account_id = placement
    existing = conn.execute(
        text(
            "SELECT placement_id, occurred_on, kind, amount, outcome FROM placement_return "
            "WHERE return_ref = :ref"
        ),
        {"ref": r.return_ref},
    ).first()
    if existing is not None:
        same = (
            existing[0] == placement_id
            and as_date(existing[1]) == r.occurred_on
            and existing[2] == r.kind
            and (None if existing[3] is None else _decimal(existing[3]))
            == (None if r.amount is None else r.amount)
            and existing[4] == r.outcome
        )
        if not same:
            raise _Reject("return_ref", "already imported with other values")
        return ["duplicates"]
    conn.execute(
        text(
            "INSERT INTO placement_return (return_ref, placement_id, occurred_on, kind, amount, "
            "outcome, recorded_at) VALUES (:ref, :p, :on, :kind, :amount, :outcome, :at)"
        ).bindparams(bindparam("amount", type_=MONEY)),
        {
            "ref": r.return_ref,
            "p": placement_id,
            "on": r.occurred_on,
            "kind": r.kind,
            "amount": r.amount,
            "outcome": r.outcome,
            "at": at,
        },
    )
    done = ["inserted"]
    if r.kind == "payment":
        conn.execute(
            text(
                "INSERT INTO payment (payment_ref, account_id, paid_on, amount) "
                "VALUES (:ref, :a, :on, :amount) ON CONFLICT (payment_ref) DO NOTHING"
            ).bindparams(bindparam("amount", type_=MONEY)),
            {"ref": r.return_ref, "a": account_id, "on": r.occurred_on, "amount": r.amount},
        )
        done.append("payments")
    if r.outcome in HOLD_OUTCOMES:
        conn.execute(
            text(
                "INSERT INTO account_hold (account_id, kind, started_on, source) "
                "VALUES (:a, :kind, :on, 'agency') "
                "ON CONFLICT (account_id, kind, started_on) DO NOTHING"
            ),
            {"a": account_id, "kind": r.outcome, "on": r.occurred_on},
        )
        done.append("holds")
    return done


def placements_summary(engine: Engine) -> dict[str, Any]:
    """Open placements per agency and capacity: counts only."""
    config = agency_config()
    with engine.connect() as conn:
        open_counts: dict[str, int] = dict(
            conn.execute(
                text("SELECT agency, COUNT(*) FROM placement WHERE state = 'open' GROUP BY agency")
            ).all()
        )
    return {
        a.id: {"open": int(open_counts.get(a.id, 0)), "capacity": a.capacity}
        for a in config.agencies
    }


__all__ = [
    "PLACEMENT_COLUMNS",
    "RECALL_COLUMNS",
    "AgencyConfig",
    "AgencyConfigError",
    "PlacementHooks",
    "agency_config",
    "check_agency_config_text",
    "import_agency_returns",
    "recall_placements",
    "write_placement_files",
]
