"""Writes a synthetic, realistic portfolio in the import format (docs/import-format.md).

Deterministic for a seed and an as-of date; fictional people, 555-01XX numbers, reserved domains.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

from outreach.portfolio.generator_people import Email, People, Person, Phone, offset_text
from outreach.portfolio.generator_resolution import Account, Counts, Resolution

# Years until a debt is time-barred, by state (written contracts; most others are 6).
_LIMITATION_YEARS = {"NY": 3, "NC": 3, "CA": 4, "TX": 4, "PA": 4, "FL": 5, "IL": 5, "GA": 6}

CSV_COLUMNS = [
    "record", "account_ref", "person_ref", "full_name", "language", "product", "currency",
    "balance", "amount_past_due", "due_date", "balance_as_of", "country", "region", "city",
    "address_line1", "postal_code", "segment", "charge_off_date", "limitation_date",
    "inconvenient_times", "initial_communication_on", "validation_notice_sent_on",
    "scra_checked_on", "scra_active_duty", "itemization_date", "itemization_kind",
    "itemization_amount", "interest_since_itemization", "fees_since_itemization",
    *(f"phone{i}{s}" for i in (1, 2, 3)
      for s in ("", "_type", "_sms_consent", "_call_consent", "_workplace", "_no_calls_at_work")),
    *(f"email{i}{s}" for i in (1, 2) for s in ("", "_workplace", "_consent", "_used_by_consumer")),
    "payment_ref", "paid_on", "amount", "kind", "started_on", "ended_on",
    "event_ref", "occurred_at", "channel", "destination", "direction", "outcome", "recorded_at",
    "promise_ref", "due_on", "made_at", "source", "arrangement_ref", "total", "term_months",
    "first_due_on", "accepted_at", "state", "monthly_income", "monthly_expenses", "stated_on",
    "cause", "reversed_on", "reason",
]  # fmt: skip


# --- the portfolio ------------------------------------------------------------------------------


@dataclass
class GenerateReport:
    path: Path
    accounts: int = 0
    persons: int = 0
    payments: int = 0
    holds: int = 0
    opt_outs: int = 0
    contact_events: int = 0
    lines: int = 0
    seconds: float = 0.0
    by_country: dict[str, int] = field(default_factory=dict)
    # The resolution loop's records (outreach.portfolio.generator_resolution); its payments
    # (promises kept, instalments, partial and returned ones) are counted in ``payments`` too.
    promises: int = 0
    arrangements: int = 0
    settlements: int = 0  # of the arrangements
    means: int = 0
    causes: int = 0
    partial_payments: int = 0
    payment_reversals: int = 0

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.accounts} accounts of {self.persons} persons, "
            f"{self.payments} payments, {self.holds} holds, {self.opt_outs} opt-outs, "
            f"{self.contact_events} contact events, {self.promises} promises, "
            f"{self.arrangements} arrangements, {self.means} stated means, {self.causes} causes, "
            f"{self.payment_reversals} returned payments ({self.lines} records) "
            f"in {self.seconds:.1f}s"
        )

    def add_resolution(self, counts: Counts) -> None:
        self.payments += counts.payments
        for name in ("promises", "arrangements", "settlements", "means", "causes",
                     "partial_payments", "payment_reversals"):  # fmt: skip
            setattr(self, name, getattr(counts, name))


class _Writer:
    """One record per line, as JSON lines or as CSV rows over the union of all columns."""

    def __init__(self, handle: IO[str], as_csv: bool) -> None:
        self._handle = handle
        self._csv = csv.writer(handle, lineterminator="\n") if as_csv else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.lines += 1
        if self._csv is None:
            self._handle.write(self._dumps(record))
            self._handle.write("\n")
            return
        flat = dict(record)
        for i, p in enumerate(flat.pop("phones", ()), start=1):
            flat[f"phone{i}"] = p["number"]
            flat[f"phone{i}_type"] = p["type"]
            for key in ("sms_consent", "call_consent", "workplace", "no_calls_at_work"):
                if key in p:
                    flat[f"phone{i}_{key}"] = _tf(p[key])
        for i, e in enumerate(flat.pop("emails", ()), start=1):
            flat[f"email{i}"] = e["address"]
            for key in ("workplace", "consent", "used_by_consumer"):
                if key in e:
                    flat[f"email{i}_{key}"] = _tf(e[key])
        if "scra_active_duty" in flat:
            flat["scra_active_duty"] = _tf(flat["scra_active_duty"])
        self._csv.writerow(["" if (v := flat.get(c)) is None else v for c in CSV_COLUMNS])


def _tf(value: bool) -> str:
    return "true" if value else "false"


def _phone_entry(p: Phone) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "number": p.number,
        "type": p.type,
        "sms_consent": p.sms_consent,
        "call_consent": p.call_consent,
        "workplace": p.workplace,
    }
    if p.type == "work":
        entry["no_calls_at_work"] = p.no_calls_at_work
    return entry


def _email_entry(e: Email) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": e.address, "workplace": e.workplace, "consent": e.consent}
    if e.workplace:
        entry["used_by_consumer"] = e.used_by_consumer
    return entry


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        as_of: dt.date,
        writer: _Writer,
        report: GenerateReport,
        resolution: Resolution,
    ) -> None:
        self.rng = rng
        self.as_of = as_of
        self.writer = writer
        self.report = report
        self.resolution = resolution

    # accounts

    def account(self, person: Person, n: int, product: str) -> None:
        r = self.rng
        as_of = self.as_of
        us = person.country == "US"
        dpd = 0 if r.random() < 0.03 else _days_past_due(r)
        due_date = as_of - dt.timedelta(days=dpd) if dpd else None
        median, sigma = (2500.0, 0.9) if product == "credit_card" else (9000.0, 0.7)
        scale = 1.0 if us else 7.0
        balance = min(250_000.0, max(50.0, r.lognormvariate(math.log(median * scale), sigma)))
        if dpd == 0:
            past_due = 0.0
        elif dpd > (180 if product == "credit_card" else 120):
            past_due = balance  # charged off: the whole balance is due
        else:
            cycles = dpd // 30 + 1
            if product == "credit_card":
                per_cycle = max(25.0 * scale, 0.03 * balance)
            else:
                per_cycle = balance / r.randint(12, 60)
            past_due = min(balance, cycles * per_cycle * r.uniform(0.9, 1.1))
        charge_off = None
        limitation = None
        if due_date is not None:
            if dpd > (180 if product == "credit_card" else 120):
                charge_off = due_date + dt.timedelta(days=180 if product == "credit_card" else 120)
            years = _LIMITATION_YEARS.get(person.region, 6) if us else 3
            limitation = due_date.replace(year=due_date.year + years, day=min(due_date.day, 28))
        ref = f"AC{n:09d}"
        x = r.random()
        notice = self._notice_dates(us, due_date, dpd)
        scra = self._scra_check(us)
        payments = self._draw_payments(n, past_due, balance)
        hold = self._draw_hold()
        snapshot = as_of - dt.timedelta(days=1)
        # The itemization reference date (12 CFR 1006.34(b)(3)): the charge-off date, else the
        # last statement (the close of the month before the snapshot). What was owed then is
        # the snapshot balance plus the payments made since, up to the snapshot.
        item_date = charge_off or snapshot.replace(day=1) - dt.timedelta(days=1)
        paid_since = sum(
            round(amount, 2) for _, days_ago, amount in payments
            if item_date < as_of - dt.timedelta(days=days_ago) <= snapshot
        )  # fmt: skip
        # Promises, arrangements and the like draw from a generator of their own (after this
        # account's other draws); their payments before the snapshot are in the itemization too.
        resolution = self.resolution.draw(Account(
            ref=ref, n=n, person=person, product=product, currency="USD" if us else "CNY",
            dpd=dpd, balance=Decimal(f"{balance:.2f}"),
            past_due=Decimal(f"{min(past_due, balance):.2f}"), hold=hold[0] if hold else None,
            itemization_date=item_date, charged_off=charge_off is not None,
            has_payments=bool(payments),
        ))  # fmt: skip
        paid_since += float(resolution.paid_since_itemization)
        record: dict[str, Any] = {
            "record": "account",
            "account_ref": ref,
            **person.record,
            "product": product,
            "currency": "USD" if us else "CNY",
            "balance": f"{balance:.2f}",
            "amount_past_due": f"{min(past_due, balance):.2f}",
            "due_date": due_date.isoformat() if due_date else None,
            "balance_as_of": snapshot.isoformat(),
            "segment": "prime" if x < 0.35 else "near_prime" if x < 0.70 else "subprime",
            "charge_off_date": charge_off.isoformat() if charge_off else None,
            "limitation_date": limitation.isoformat() if limitation else None,
            "itemization_date": item_date.isoformat(),
            "itemization_kind": "charge_off" if charge_off else "last_statement",
            "itemization_amount": f"{round(balance, 2) + paid_since:.2f}",
            **notice,
            **scra,
            "phones": [_phone_entry(p) for p in person.phones],
            "emails": [_email_entry(e) for e in person.emails],
        }
        self.writer.write(record)
        self.report.accounts += 1
        self.report.by_country[person.country] = self.report.by_country.get(person.country, 0) + 1
        for payment_ref, days_ago, amount in payments:
            self._payment(payment_ref, ref, days_ago, amount)
        if hold is not None:
            self._hold(ref, hold)
        self._history(person, ref, n, dpd)
        for extra in resolution.records:
            self.writer.write(extra)

    def _notice_dates(self, us: bool, due_date: dt.date | None, dpd: int) -> dict[str, str]:
        """US accounts past a week: the first contact (often older than the history in the
        file) and, for ~95%, the validation notice a few days after it (never after the as-of
        day); the rest have none on record, which the Regulation F gates must notice."""
        r = self.rng
        if not us or due_date is None or dpd <= 6:
            return {}
        first = due_date + dt.timedelta(days=r.randint(1, 5))
        out = {"initial_communication_on": first.isoformat()}
        notice = first + dt.timedelta(days=r.randint(1, 5))
        if r.random() < 0.95 and notice < self.as_of:
            out["validation_notice_sent_on"] = notice.isoformat()
        return out

    def _scra_check(self, us: bool) -> dict[str, Any]:
        """~1% of US accounts had a military-status (SCRA) check lately; a few found active duty."""
        r = self.rng
        if not us or r.random() >= 0.013:
            return {}
        checked = self.as_of - dt.timedelta(days=r.randint(1, 120))
        return {"scra_checked_on": checked.isoformat(), "scra_active_duty": r.random() < 0.1}

    def _draw_payments(
        self, n: int, past_due: float, balance: float
    ) -> list[tuple[str, int, float]]:
        """The account's payments as (payment_ref, days before the as-of day, amount)."""
        r = self.rng
        out: list[tuple[str, int, float]] = []
        count = 0
        if r.random() < 0.20:
            count = 1 if r.random() < 0.7 else 2
        for i in range(count):
            days_ago = r.randint(2, 60)  # before balance_as_of: already in the balance
            amount = max(5.0, (past_due or balance) * r.uniform(0.1, 0.6))
            out.append((f"PAY{n:09d}-{i + 1}", days_ago, amount))
        if past_due and r.random() < 0.02:  # paid today: the planner must notice
            out.append((f"PAY{n:09d}-T", 0, past_due * r.choice((0.5, 1.0))))
        return out

    def _payment(self, payment_ref: str, ref: str, days_ago: int, amount: float) -> None:
        self.writer.write(
            {
                "record": "payment",
                "payment_ref": payment_ref,
                "account_ref": ref,
                "paid_on": (self.as_of - dt.timedelta(days=days_ago)).isoformat(),
                "amount": f"{amount:.2f}",
            }
        )
        self.report.payments += 1

    def _draw_hold(self) -> tuple[str, int, int | None] | None:
        """The account's hold, if any: (kind, started days ago, ended days ago or None)."""
        r = self.rng
        x = r.random()
        # (kind, started days ago, ended days ago or None); disjoint slices of one draw.
        hold: tuple[str, int, int | None]
        if x < 0.030:
            hold = ("dispute", r.randint(1, 30), None)
        elif x < 0.040:
            hold = ("dispute", r.randint(40, 120), r.randint(5, 35))
        elif x < 0.050:
            hold = ("bankruptcy", r.randint(1, 200), None)
        elif x < 0.053:
            hold = ("deceased", r.randint(1, 90), None)
        elif x < 0.063:
            hold = ("cease_communication", r.randint(1, 120), None)
        elif x < 0.068:
            hold = ("attorney", r.randint(1, 90), None)
        elif x < 0.088:
            ended = r.randint(1, 20) if r.random() < 0.3 else None
            hold = ("hardship", r.randint(25, 90), ended)
        elif x < 0.098:  # an instalment agreement being kept
            hold = ("instalment_plan", r.randint(5, 90), None)
        else:
            return None
        return hold

    def _hold(self, ref: str, hold: tuple[str, int, int | None]) -> None:
        kind, started, ended = hold
        self.writer.write(
            {
                "record": "hold",
                "account_ref": ref,
                "kind": kind,
                "started_on": (self.as_of - dt.timedelta(days=started)).isoformat(),
                "ended_on": (self.as_of - dt.timedelta(days=ended)).isoformat() if ended else None,
            }
        )
        self.report.holds += 1

    def _history(self, person: Person, ref: str, n: int, dpd: int) -> None:
        """Contacts over the 14 days before as_of, shaped like the default ladder's stages."""
        if dpd == 0:
            return
        r = self.rng
        window = min(14, dpd)
        callable_phones = [p for p in person.phones if p.call_consent] or person.phones
        texts = [p for p in person.phones if p.type == "mobile" and p.sms_consent]
        calls: list[tuple[int, str]] = []  # (days ago, outcome)
        if dpd >= 16:
            x = r.random()
            if x < 0.06 and dpd >= 20:  # worked hard: 6 or 7 attempts in the last 7 days
                days = sorted(r.sample(range(1, 8), 7 if r.random() < 0.4 else 6))
                calls = [(d, r.choice(("no_answer", "voicemail", "busy"))) for d in days]
            elif x < 0.16:  # talked to them 1 to 8 days ago
                calls = [(min(window, r.randint(1, 8)), "conversation")]
                calls += [(r.randint(1, window), "no_answer") for _ in range(r.randint(0, 2))]
            elif dpd <= 120:
                calls = [(r.randint(1, window), _call_outcome(r)) for _ in range(r.randint(0, 2))]
        call_no = 0
        for days_ago, outcome in calls:
            call_no += 1
            phone = r.choice(callable_phones)
            self._event(
                person, ref, days_ago, "call", phone.number, outcome, f"CALL{n:09d}-{call_no}"
            )
        if r.random() < 0.01:  # they called us
            phone = r.choice(person.phones)
            self._event(person, ref, r.randint(1, window), "call", phone.number, "conversation",
                        f"CALL{n:09d}-IN", direction="inbound")  # fmt: skip
        if texts and dpd <= 60:
            sends = (1 if r.random() < 0.5 else 2) if dpd <= 15 else int(r.random() < 0.3)
            for _ in range(sends):
                outcome = (
                    "delivered" if (y := r.random()) < 0.85 else "sent" if y < 0.95 else "failed"
                )
                self._event(person, ref, r.randint(1, window), "sms", texts[0].number, outcome)
        if person.emails and dpd <= 15 and r.random() < 0.4:
            outcome = "delivered" if (y := r.random()) < 0.85 else "sent" if y < 0.95 else "bounced"
            self._event(
                person, ref, r.randint(1, window), "email", person.emails[0].address, outcome
            )
        if 61 <= dpd <= 150 and r.random() < 0.25:
            self._event(person, ref, r.randint(1, window), "letter", "", "sent")

    def _event(
        self,
        person: Person,
        ref: str,
        days_ago: int,
        channel: str,
        destination: str,
        outcome: str,
        event_ref: str | None = None,
        direction: str = "outbound",
    ) -> None:
        r = self.rng
        day = self.as_of - dt.timedelta(days=days_ago)
        hour = r.randint(8, 20)
        at = f"{day.isoformat()}T{hour:02d}:{r.randrange(60):02d}:{r.randrange(60):02d}"
        record: dict[str, Any] = {"record": "contact_event", "account_ref": ref}
        if event_ref:
            record["event_ref"] = event_ref  # the dialer's call id; SMS and email rows have none
        record |= {
            "occurred_at": at + offset_text(person.zone, day),
            "channel": channel,
            "destination": destination,
            "direction": direction,
            "outcome": outcome,
        }
        self.writer.write(record)
        self.report.contact_events += 1

    def opt_out(self, person: Person, account_ref: str) -> None:
        r = self.rng
        x = r.random()
        channel = "sms" if x < 0.4 else "call" if x < 0.65 else "email" if x < 0.9 else "letter"
        destination = "*"
        if r.random() >= 0.4:  # most name one number or address, the rest the whole channel
            if channel == "sms":
                texts = [p for p in person.phones if p.type == "mobile"]
                destination = texts[0].number if texts else "*"
            elif channel == "call":
                destination = r.choice(person.phones).number
            elif channel == "email" and person.emails:
                destination = person.emails[0].address
        day = self.as_of - dt.timedelta(days=r.randint(1, 90))
        when = f"{day.isoformat()}T{r.randint(0, 23):02d}:{r.randrange(60):02d}:00Z"
        who = {"person_ref": person.ref} if r.random() < 0.5 else {"account_ref": account_ref}
        self.writer.write(
            {
                "record": "opt_out",
                **who,
                "channel": channel,
                "destination": destination,
                "recorded_at": when,
            }
        )
        self.report.opt_outs += 1


def _days_past_due(r: random.Random) -> int:
    # Exponential: most accounts are early-stage, a long tail reaches charge-off and beyond.
    while True:
        dpd = 1 + int(r.expovariate(1 / 70))
        if dpd <= 400:
            return dpd


def _call_outcome(r: random.Random) -> str:
    x = r.random()
    if x < 0.50:
        return "no_answer"
    if x < 0.78:
        return "voicemail"
    if x < 0.86:
        return "busy"
    if x < 0.94:
        return "conversation"
    if x < 0.97:
        return "not_in_service"
    return "wrong_number"


def generate(accounts: int, seed: int, out: Path, as_of: dt.date) -> GenerateReport:
    """Write ``accounts`` accounts (with people, history, holds, payments, opt-outs) to ``out``.

    JSON lines, or CSV when ``out`` ends in .csv (either may end in .gz). Same seed and as_of,
    same bytes.
    """
    began = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffixes = [s.lower() for s in out.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    as_csv = ".csv" in suffixes[-2:]
    report = GenerateReport(path=out)
    rng = random.Random(seed)
    binary: IO[bytes]
    if gzipped:  # mtime=0: the gzip header would otherwise carry the clock
        binary = cast(IO[bytes], gzip.GzipFile(out, "wb", compresslevel=6, mtime=0))
    else:
        binary = out.open("wb")
    with binary, io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
        writer = _Writer(text, as_csv)
        resolution = Resolution(seed, as_of)
        gen = _Generator(rng, as_of, writer, report, resolution)
        people = People(rng)
        n_person = 0
        n_account = 0
        while n_account < accounts:
            n_person += 1
            person = people.person(n_person)
            # About 5% of people hold a card and a loan: two account rows, one person.
            both = rng.random() < 0.05 and accounts - n_account >= 2
            products = ("credit_card", "consumer_loan") if both else (
                "credit_card" if rng.random() < 0.65 else "consumer_loan",
            )  # fmt: skip
            for product in products:
                n_account += 1
                gen.account(person, n_account, product)
            if rng.random() < 0.03:
                gen.opt_out(person, f"AC{n_account:09d}")
        report.persons = n_person
        report.add_resolution(resolution.counts)
        report.lines = writer.lines
    report.seconds = time.monotonic() - began
    return report
