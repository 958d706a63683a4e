"""KPIs over a period, from the ledger and what the consumers did: collected and recovery rate,
right-party contacts, promises, arrangements, cures, roll rates, contacts and their cost,
suppressions and deferrals, agencies, the causes of delinquency; by day, week, month and by
stage, channel, segment, score band, jurisdiction, agency, ladder version, experiment arm and
bucket. Fills ``report_model.KpiReport``; docs/kpis.md defines every figure.

Reads a handful of set-based queries over the period, then counts in memory: the account
snapshots the daily plan writes (``account_snapshot``) say where each account stood each day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, or_, select

from outreach.kernel.clock import utcnow
from outreach.measurement.attribution import UNATTRIBUTED
from outreach.measurement.kpi_facts import (
    NONE_LABEL,
    TIME_DIMENSIONS,
    Entry,
    Facts,
    Index,
    entries,
    index,
    load_facts,
    payment_key,
    sort_values,
    time_key,
)
from outreach.measurement.measurement_config import (
    BUCKETS,
    MeasurementConfig,
    agency_commission_rates,
    measurement_config,
)
from outreach.measurement.report_model import KpiGroup, KpiReport, Metric, Value
from outreach.storage.models import ExperimentAssignment, Placement, PlacementReturn

# Dimensions read from the account's snapshot of the day.
SNAPSHOT_DIMENSIONS = (
    "segment", "score_band", "jurisdiction", "agency", "ladder_version", "arm", "bucket",
)  # fmt: skip
CENT = Decimal("0.01")
ONE_DAY = dt.timedelta(days=1)

M = Metric
COLLECTED = M("collected", "Collected", "回收金额", "money")
PAST_DUE_AT_ENTRY = M("past_due_at_entry", "Past due at entry", "入组时逾期金额", "money")
RECOVERY_RATE = M("recovery_rate", "Recovery rate", "回收率", "rate")
ACCOUNTS = M("accounts", "Delinquent accounts", "逾期账户数", "count")
CONTACTED = M("contacted", "Accounts contacted", "已联系账户数", "count")
RPC_RATE = M("right_party_contact_rate", "Right-party contact rate", "本人联系率", "rate")
PROMISE_RATE = M("promise_rate", "Promise rate", "承诺还款率", "rate")
PROMISE_KEPT_RATE = M("promise_kept_rate", "Promise-kept rate", "承诺兑现率", "rate")
CURE_RATE = M("cure_rate", "Cure rate", "结清逾期率", "rate")
OFFERED = M("arrangements_offered", "Arrangements offered", "提供的还款安排", "count")
UPTAKE = M("arrangement_uptake", "Arrangement uptake", "还款安排接受率", "rate")
COMPLETION = M("arrangement_completion_rate", "Arrangement completion rate", "还款安排完成率",
               "rate")  # fmt: skip
BREAK = M("arrangement_break_rate", "Arrangement break rate", "还款安排违约率", "rate")
CONTACTS = M("contacts", "Contacts", "联系次数", "count")
COST = M("cost", "Contact cost", "联系成本", "money")
COLLECTED_REPORTING = M("collected_reporting", "Collected (reporting currency)",
                        "回收金额（报告货币）", "money")  # fmt: skip
COST_PER_UNIT = M("cost_per_unit_collected", "Cost per unit collected", "单位回收成本", "ratio")
BLOCKED = M("blocked", "Suppressed (blocked)", "已拦截", "count")
DEFERRED = M("deferred", "Deferred", "已延后", "count")
PLACEMENTS = M("placements", "Placements", "委外笔数", "count")
PLACED = M("placed_balance", "Balance placed", "委外余额", "money")
RECOVERED = M("recovered", "Recovered by the agency", "机构回收金额", "money")
AGENCY_RATE = M("agency_recovery_rate", "Agency recovery rate", "机构回收率", "rate")
COMMISSION = M("commission", "Commission", "佣金", "money")
SHARE = M("share", "Share of accounts", "账户占比", "rate")

DIMENSION_TITLES = {
    "day": ("day", "日"), "week": ("week", "周"), "month": ("month", "月"),
    "stage": ("stage", "阶段"), "channel": ("channel", "渠道"), "segment": ("segment", "客群"),
    "score_band": ("score band", "评分段"), "jurisdiction": ("jurisdiction", "司法辖区"),
    "agency": ("agency", "催收机构"), "ladder_version": ("ladder version", "策略版本"),
    "arm": ("experiment arm", "实验组"), "bucket": ("days-past-due bucket", "逾期天数段"),
}  # fmt: skip

RECOVERY_DIMENSIONS = ("day", "week", "month", "stage", "channel", *SNAPSHOT_DIMENSIONS)
OUTCOME_DIMENSIONS = ("day", "week", "month", "stage", *SNAPSHOT_DIMENSIONS)
CONTACT_DIMENSIONS = ("day", "week", "month", "channel", "stage", "arm")


# --- computing ---------------------------------------------------------------------------------


def _rate(numerator: int | Decimal, denominator: int | Decimal) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT)


def outcome_row(entry: Entry, facts: Facts, ix: Index) -> dict[str, Value]:
    """Accounts, contacts, right-party contacts, promises, cures and arrangements of the
    accounts that entered one value, counting the events on its days."""
    lo, hi = entry.lo, entry.hi
    delinquent = [a for a, snap in entry.accounts.items() if snap.dpd > 0]
    contacted = [a for a in delinquent if ix.any_in(ix.sent.get(a), lo, hi)]
    reached = [a for a in contacted if ix.any_in(ix.rpc.get(a), lo, hi)]
    promising = [a for a in delinquent if ix.any_in(ix.made.get(a), lo, hi)]
    settled = [st for a in entry.accounts for st in ix.within(ix.settled.get(a), lo, hi)]
    # Cured: a snapshot at 0 days past due after the entry, within the value's days.
    cured = sum(ix.any_in(ix.cured.get(a), entry.accounts[a].as_of + ONE_DAY, hi)
                for a in delinquent)  # fmt: skip
    offered = [acc for a in entry.accounts for acc in ix.within(ix.offered.get(a), lo, hi)]
    ended = [st for a in entry.accounts for st in ix.within(ix.ended.get(a), lo, hi)]
    return {
        "accounts": len(delinquent),
        "contacted": len(contacted),
        "right_party_contact_rate": _rate(len(reached), len(contacted)),
        "promise_rate": _rate(len(promising), len(delinquent)),
        "promise_kept_rate": _rate(sum(st == "kept" for st in settled), len(settled)),
        "cure_rate": _rate(cured, len(delinquent)),
        "arrangements_offered": len(offered),
        "arrangement_uptake": _rate(sum(offered), len(offered)),
        "arrangement_completion_rate": _rate(sum(st == "completed" for st in ended), len(ended)),
        "arrangement_break_rate": _rate(sum(st == "broken" for st in ended), len(ended)),
    }


def money_by_value(
    facts: Facts, dimension: str, ents: dict[str, Entry]
) -> tuple[dict[str, dict[str, Decimal]], dict[str, dict[str, Decimal]]]:
    """Collected and past due at entry, by value and currency."""
    collected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    key = payment_key(dimension, facts)
    for p in facts.payments:
        collected[key(p)][p.currency] += p.amount
    past_due: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    if dimension != "channel":
        for value, entry in ents.items():
            for snap in entry.accounts.values():
                past_due[value][snap.currency] += snap.past_due
    return collected, past_due


def converted(amounts: dict[str, Decimal], config: MeasurementConfig,
              missing: set[str]) -> Decimal:  # fmt: skip
    """``amounts`` (currency -> amount) in the reporting currency; currencies without a rate
    are left out and added to ``missing``."""
    total = Decimal(0)
    for currency, amount in amounts.items():
        rate = config.fx(currency)
        if rate is None:
            missing.add(currency)
            continue
        total += amount * rate
    return total


# --- the report ------------------------------------------------------------------------------------


def _title(kind: tuple[str, str], dimension: str) -> tuple[str, str]:
    en, zh = DIMENSION_TITLES[dimension]
    return f"{kind[0]} by {en}", f"按{zh}{kind[1]}"


def targets_for(config: MeasurementConfig, dimension: str, metrics: Iterable[Metric],
                values: Iterable[str]) -> dict[str, dict[str, float]]:  # fmt: skip
    """Each metric's target per value: the dimension's own target for the value, else the
    overall one."""
    out: dict[str, dict[str, float]] = {}
    values = list(values)
    for m in metrics:
        spec = config.targets.get(m.key)
        if not spec:
            continue
        own = spec.get(dimension) or {}
        overall = spec.get("overall")
        per: dict[str, float] = {}
        for v in values:
            if v in own:
                per[v] = float(own[v])
            elif overall is not None and v not in (NONE_LABEL, UNATTRIBUTED):
                per[v] = float(overall)
        if per:
            out[m.key] = per
    return out


def recovery_group(facts: Facts, dimension: str, config: MeasurementConfig) -> KpiGroup:
    # A channel has no accounts entering it: its recovery rate has no denominator.
    ents = entries(facts, dimension) if dimension != "channel" else {}
    collected, past_due = money_by_value(facts, dimension, ents)
    rows: list[dict[str, Any]] = []
    values = sort_values(dimension, set(collected) | set(past_due))
    for value in values:
        for currency in sorted(set(collected.get(value, {})) | set(past_due.get(value, {}))):
            got = collected.get(value, {}).get(currency, Decimal(0))
            owed = past_due.get(value, {}).get(currency)
            rows.append({
                dimension: value, "currency": currency, "collected": _cents(got),
                "past_due_at_entry": None if owed is None else _cents(owed),
                "recovery_rate": None if owed is None else _rate(got, owed),
            })  # fmt: skip
    metrics = [COLLECTED, PAST_DUE_AT_ENTRY, RECOVERY_RATE]
    en, zh = _title(("Recovery", "回收"), dimension)
    note_en = note_zh = ""
    if dimension in ("channel", "stage"):
        note_en = ("Collected by the stage and channel of the contact each payment is "
                   "attributed to; unattributed: no contact in the window.")  # fmt: skip
        note_zh = "回收金额按每笔还款归因的联系所在阶段和渠道统计；未归因：窗口内无联系。"
    return KpiGroup(
        key=f"recovery_by_{dimension}", title_en=en, title_zh=zh, dimension=dimension,
        metrics=metrics, rows=rows,
        targets=targets_for(config, dimension, [RECOVERY_RATE], values),
        chart="line" if dimension in TIME_DIMENSIONS else "bar", note_en=note_en,
        note_zh=note_zh,
    )  # fmt: skip


OUTCOME_METRICS = [ACCOUNTS, CONTACTED, RPC_RATE, PROMISE_RATE, PROMISE_KEPT_RATE, CURE_RATE]
ARRANGEMENT_METRICS = [OFFERED, UPTAKE, COMPLETION, BREAK]


def outcome_groups(facts: Facts, ix: Index, dimension: str,
                   config: MeasurementConfig) -> list[KpiGroup]:  # fmt: skip
    ents = entries(facts, dimension)
    values = sort_values(dimension, ents)
    computed = {v: outcome_row(ents[v], facts, ix) for v in values}
    groups = []
    for kind, metrics in ((("Contacts and promises", "联系与承诺"), OUTCOME_METRICS),
                          (("Arrangements", "还款安排"), ARRANGEMENT_METRICS)):  # fmt: skip
        rows = [{dimension: v, **{m.key: computed[v][m.key] for m in metrics}} for v in values]
        en, zh = _title(kind, dimension)
        prefix = "outcomes" if metrics is OUTCOME_METRICS else "arrangements"
        groups.append(KpiGroup(
            key=f"{prefix}_by_{dimension}", title_en=en, title_zh=zh, dimension=dimension,
            metrics=metrics, rows=rows,
            targets=targets_for(config, dimension, metrics, values),
            chart="line" if dimension in TIME_DIMENSIONS else "bar",
        ))  # fmt: skip
    return groups


def contact_group(facts: Facts, dimension: str, config: MeasurementConfig,
                  missing: set[str]) -> KpiGroup:  # fmt: skip
    """Contacts made and their cost (unit costs in the reporting currency), against what was
    collected under the same value (for channel and stage: by attribution)."""
    counts: dict[str, int] = defaultdict(int)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    accounts: dict[str, set[int]] = defaultdict(set)
    for s in facts.sent:
        if dimension in TIME_DIMENSIONS:
            value = time_key(dimension, s.day)
        elif dimension == "arm":
            value = s.arm or NONE_LABEL
        else:
            value = getattr(s, dimension)
        counts[value] += 1
        cost[value] += config.unit_costs.get(s.channel, Decimal(0))
        accounts[value].add(s.account_id)
    collected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    key = payment_key(dimension, facts)
    for p in facts.payments:
        collected[key(p)][p.currency] += p.amount
    values = sort_values(dimension, set(counts) | set(collected))
    rows = []
    for v in values:
        got = converted(collected.get(v, {}), config, missing)
        row: dict[str, Any] = {
            dimension: v, "currency": config.reporting_currency, "contacts": counts.get(v, 0),
            "cost": _cents(cost.get(v, Decimal(0))), "collected_reporting": _cents(got),
            "cost_per_unit_collected": _rate(cost.get(v, Decimal(0)), got),
        }  # fmt: skip
        if dimension == "channel":
            reached = {a for a, _, channel in facts.rpc if channel == v} & accounts[v]
            row["accounts_contacted"] = len(accounts[v])
            row["right_party_contact_rate"] = _rate(len(reached), len(accounts[v]))
        rows.append(row)
    metrics = [CONTACTS, COST, COLLECTED_REPORTING, COST_PER_UNIT]
    if dimension == "channel":
        metrics += [M("accounts_contacted", "Accounts contacted", "已联系账户数", "count"),
                    RPC_RATE]  # fmt: skip
    en, zh = _title(("Contacts and cost", "联系与成本"), dimension)
    return KpiGroup(
        key=f"contacts_by_{dimension}", title_en=en, title_zh=zh, dimension=dimension,
        metrics=metrics, rows=rows,
        targets=targets_for(config, dimension, [COST_PER_UNIT], values),
        chart="line" if dimension in TIME_DIMENSIONS else "bar",
        note_en=f"Costs and collected in {config.reporting_currency}.",
        note_zh=f"成本与回收金额以 {config.reporting_currency} 计。",
    )  # fmt: skip


def roll_group(facts: Facts) -> KpiGroup:
    """From each account's bucket on its first snapshot of the period to its bucket on its last:
    the share of the row's accounts in each bucket at the end."""
    moves: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for snaps in facts.snaps.values():
        moves[snaps[0].bucket][snaps[-1].bucket] += 1
    metrics = [M("accounts", "Accounts at start", "期初账户数", "count")] + [
        M(f"to_{b}", f"to {b}", f"转入 {b}", "rate") for b in BUCKETS
    ]
    rows = []
    for start in sort_values("bucket", moves):
        total = sum(moves[start].values())
        rows.append({"bucket": start, "accounts": total,
                     **{f"to_{b}": _rate(moves[start].get(b, 0), total) for b in BUCKETS}})  # fmt: skip
    return KpiGroup(
        key="roll_rates", title_en="Roll rates between days-past-due buckets",
        title_zh="逾期天数段迁移率", dimension="bucket", metrics=metrics, rows=rows,
        chart="stacked",
        note_en="Rows: the bucket on the account's first day of the period; columns: its bucket "
                "on the last.",
        note_zh="行：账户在期间首日的逾期段；列：期末所在逾期段。",
    )  # fmt: skip


def suppression_group(facts: Facts) -> KpiGroup:
    """Gate verdicts that blocked or deferred a step (plan and send), by reason code."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"blocked": 0, "deferred": 0})
    for _, verdict, reasons in facts.decisions:
        for code in (reasons or "").split() or ["(no code)"]:
            counts[code]["blocked" if verdict == "block" else "deferred"] += 1
    rows = [{"reason": code, **counts[code]}
            for code in sorted(counts, key=lambda c: (-sum(counts[c].values()), c))]  # fmt: skip
    return KpiGroup(
        key="suppressions_by_reason", title_en="Suppressions and deferrals by reason",
        title_zh="按原因的拦截与延后", dimension="reason", metrics=[BLOCKED, DEFERRED], rows=rows,
        chart="stacked",
    )  # fmt: skip


def agency_group(engine: Engine, facts: Facts, config: MeasurementConfig) -> KpiGroup:
    """Per agency and currency: placements made in the period, the balance placed with it while
    the period ran, what its returns report collected in the period, and the commission on it."""
    rates = agency_commission_rates()
    pl = Placement.__table__.c
    rt = PlacementReturn.__table__.c
    placed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    made: dict[tuple[str, str], int] = defaultdict(int)
    recovered: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with engine.connect() as conn:
        for agency, account_id, placed_on, balance in conn.execute(
            select(pl.agency, pl.account_id, pl.placed_on, pl.balance_at_placement).where(
                pl.placed_on <= facts.date_to,
                or_(pl.recalled_on.is_(None), pl.recalled_on >= facts.date_from),
            )
        ):  # fmt: skip
            k = (agency, facts.currencies.get(account_id, "?"))
            placed[k] += Decimal(balance)
            made[k] += facts.date_from <= placed_on <= facts.date_to
        for agency, account_id, amount in conn.execute(
            select(pl.agency, pl.account_id, rt.amount)
            .select_from(PlacementReturn.__table__.join(Placement.__table__,
                                                        pl.id == rt.placement_id))
            .where(rt.kind == "payment", rt.amount.is_not(None),
                   rt.occurred_on.between(facts.date_from, facts.date_to))
        ):  # fmt: skip
            recovered[(agency, facts.currencies.get(account_id, "?"))] += Decimal(amount)
    rows = []
    for agency, currency in sorted(set(placed) | set(recovered)):
        got = recovered.get((agency, currency), Decimal(0))
        rate = rates.get(agency, config.agencies.commission_rate)
        rows.append({
            "agency": agency, "currency": currency, "placements": made.get((agency, currency), 0),
            "placed_balance": _cents(placed.get((agency, currency), Decimal(0))),
            "recovered": _cents(got),
            "agency_recovery_rate": _rate(got, placed.get((agency, currency), Decimal(0))),
            "commission": _cents(got * rate),
        })  # fmt: skip
    return KpiGroup(
        key="agency_recovery", title_en="Agency recovery and commission",
        title_zh="催收机构回收与佣金", dimension="agency",
        metrics=[PLACEMENTS, PLACED, RECOVERED, AGENCY_RATE, COMMISSION], rows=rows,
        note_en="Commission: config/agencies.yaml's commission_rate, else measurement.yaml's.",
        note_zh="佣金率取自 config/agencies.yaml，未配置时取 measurement.yaml。",
    )  # fmt: skip


def cause_group(facts: Facts) -> KpiGroup:
    """The causes of delinquency of the accounts delinquent in the period (latest recorded)."""
    counts: dict[str, int] = defaultdict(int)
    delinquent = [a for a, snaps in facts.snaps.items() if any(s.dpd > 0 for s in snaps)]
    for a in delinquent:
        counts[facts.causes.get(a, NONE_LABEL)] += 1
    rows = [{"cause": c, "accounts": n, "share": _rate(n, len(delinquent))}
            for c, n in sorted(counts.items(), key=lambda i: (i[0] == NONE_LABEL, -i[1], i[0]))]  # fmt: skip
    return KpiGroup(
        key="cause_mix", title_en="Causes of delinquency", title_zh="逾期原因构成",
        dimension="cause", metrics=[ACCOUNTS, SHARE], rows=rows,
    )  # fmt: skip


# Every headline key, in display order (the money ones per currency, or in the reporting
# currency: collected_reporting, cost).
HEADLINE = [
    COLLECTED, COLLECTED_REPORTING, PAST_DUE_AT_ENTRY, RECOVERY_RATE, ACCOUNTS, CONTACTED,
    RPC_RATE, PROMISE_RATE, PROMISE_KEPT_RATE, CURE_RATE, OFFERED, UPTAKE, COMPLETION, BREAK,
    CONTACTS, COST, COST_PER_UNIT,
]  # fmt: skip


def compute(
    engine: Engine,
    date_from: dt.date,
    date_to: dt.date,
    *,
    lang: str = "en",
    config: MeasurementConfig | None = None,
) -> KpiReport:
    """The KPIs of ``date_from..date_to`` (both included). ``lang`` is the renderer's: every
    metric carries both labels."""
    if date_to < date_from:
        raise ValueError("the period ends before it starts")
    config = config or measurement_config()
    facts = load_facts(engine, date_from, date_to, config)
    ix = index(facts)
    missing: set[str] = set()

    overall = entries(facts, "all")
    collected, past_due = money_by_value(facts, "all", overall)
    got = {c: _cents(v) for c, v in sorted(collected.get("all", {}).items())}
    owed = {c: _cents(v) for c, v in sorted(past_due.get("all", {}).items())}
    got_reporting = converted(got, config, missing)
    owed_reporting = converted(owed, config, missing)
    outcomes = outcome_row(overall["all"], facts, ix) if "all" in overall else {}
    cost = sum((config.unit_costs.get(s.channel, Decimal(0)) for s in facts.sent), Decimal(0))
    headline: dict[str, Value] = {
        "collected": got,
        "collected_reporting": _cents(got_reporting),
        "past_due_at_entry": owed,
        "recovery_rate": _rate(got_reporting, owed_reporting),
        **{m.key: outcomes.get(m.key) for m in OUTCOME_METRICS + ARRANGEMENT_METRICS},
        "contacts": len(facts.sent),
        "cost": _cents(cost),
        "cost_per_unit_collected": _rate(cost, got_reporting),
    }

    groups: list[KpiGroup] = []
    for dimension in RECOVERY_DIMENSIONS:
        groups.append(recovery_group(facts, dimension, config))
    for dimension in OUTCOME_DIMENSIONS:
        groups.extend(outcome_groups(facts, ix, dimension, config))
    for dimension in CONTACT_DIMENSIONS:
        groups.append(contact_group(facts, dimension, config, missing))
    groups += [roll_group(facts), suppression_group(facts), agency_group(engine, facts, config),
               cause_group(facts)]  # fmt: skip

    method = {
        "reporting_currency": config.reporting_currency,
        "fx_rates": {c: str(r) for c, r in sorted(config.fx_rates.items())},
        "currencies_without_rate": sorted(missing),
        "attribution": {
            "window_days": config.attribution.window_days,
            "rule": "each payment goes to the last contact sent, or call answered by the right "
                    "party, on its account within window_days before it was received; else "
                    "unattributed",
        },
        "entry": "past due on the account's first snapshot in the period; for a grouping, on "
                 "its first snapshot with that value (stage entry for by-stage)",
        "collected": "payments received in the period, less those reversed by its last day",
        "targets": {k: v["overall"] for k, v in config.targets.items() if "overall" in v},
        "config": config.fingerprint(),
        "lang": lang,
    }  # fmt: skip
    return KpiReport(
        date_from=date_from, date_to=date_to, generated_at=utcnow(), headline=headline,
        headline_metrics=HEADLINE, groups=groups, method=method,
    )  # fmt: skip


# --- experiments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmOutcome:
    """One assigned account's outcome over a period, for an experiment's statistics."""

    arm: str
    account_id: int
    currency: str
    past_due_at_entry: Decimal  # on its first snapshot in the period (0 without one)
    collected: Decimal  # in the account's currency
    contacted: bool
    right_party: bool
    promises: int  # made in the period
    promises_kept: int  # settled kept in the period


def arm_outcomes(
    engine: Engine,
    experiment_id: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    config: MeasurementConfig | None = None,
) -> list[ArmOutcome]:
    """One row per account assigned in ``experiment_id``, by account id."""
    config = config or measurement_config()
    facts = load_facts(engine, date_from, date_to, config)
    ix = index(facts)
    collected: dict[int, Decimal] = defaultdict(Decimal)
    for p in facts.payments:
        collected[p.account_id] += p.amount
    ea = ExperimentAssignment.__table__.c
    with engine.connect() as conn:
        assigned = conn.execute(
            select(ea.account_id, ea.arm).where(ea.experiment_id == experiment_id)
            .order_by(ea.account_id)
        ).all()  # fmt: skip
    rows = []
    for account_id, arm in assigned:
        snaps = facts.snaps.get(account_id)
        contacted = bool(ix.sent.get(account_id))
        rows.append(ArmOutcome(
            arm=arm, account_id=account_id,
            currency=snaps[0].currency if snaps else facts.currencies.get(account_id, "?"),
            past_due_at_entry=snaps[0].past_due if snaps else Decimal(0),
            collected=_cents(collected.get(account_id, Decimal(0))),
            contacted=contacted,
            right_party=contacted and bool(ix.rpc.get(account_id)),
            promises=len(ix.made.get(account_id, ())),
            promises_kept=sum(st == "kept" for st in ix.within(ix.settled.get(account_id),
                                                                date_from, date_to)),
        ))  # fmt: skip
    return rows
