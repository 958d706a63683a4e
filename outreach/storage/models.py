"""SQLAlchemy 2 models of the application database: portfolio, holds, events, ledger, decisions.

Instants are stored as naive UTC ``DateTime`` on every backend; dates (due dates, payment days)
as ``Date``. Money is ``Numeric(14, 2)``. External references (``*_ref``) are the ids the
lender's systems use; the integer ids are ours and the only ones that go into XCom.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Money = Numeric(14, 2)


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16), default="en")
    address_line1: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(16))  # US state / CN province code
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    # Space-separated IANA zones the postal address may be in (one for most addresses, two for a
    # state split by a zone line), derived at import; phones carry their own candidates.
    time_zones: Mapped[str | None] = mapped_column(String(200))
    # Local times the consumer said are inconvenient, as policies.timeblocks.normalize writes
    # them ("mon-fri 09:00-17:00; sun 00:00-24:00"); None when they said nothing.
    inconvenient_times: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_ref: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    product: Mapped[str] = mapped_column(String(32))  # credit_card | consumer_loan
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money)
    amount_past_due: Mapped[Decimal] = mapped_column(Money)
    # Oldest unpaid due date: days past due derive from it, and it names the delinquency episode.
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    balance_as_of: Mapped[dt.date] = mapped_column(Date)
    jurisdiction_country: Mapped[str] = mapped_column(String(2))
    jurisdiction_region: Mapped[str | None] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(32))
    charge_off_date: Mapped[dt.date | None] = mapped_column(Date)
    limitation_date: Mapped[dt.date | None] = mapped_column(Date)  # time-barred from this day
    # When the Regulation F validation notice went out (by us or a previous system), and the
    # first communication about this debt in a previous system, when known.
    validation_notice_sent_on: Mapped[dt.date | None] = mapped_column(Date)
    initial_communication_on: Mapped[dt.date | None] = mapped_column(Date)
    # The last SCRA military-status check and what it found.
    scra_checked_on: Mapped[dt.date | None] = mapped_column(Date)
    scra_active_duty: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When our final notice before agency or legal action went out (set by the dispatcher).
    final_notice_sent_on: Mapped[dt.date | None] = mapped_column(Date)
    # The Regulation F itemization (12 CFR 1006.34(b)(3), (c)(2)(vi)-(viii)): the reference
    # date the lender chose (last statement, charge-off, last payment, transaction, judgment),
    # what was owed that day, and the interest and fees charged since (None: none imported).
    itemization_date: Mapped[dt.date | None] = mapped_column(Date)
    itemization_kind: Mapped[str | None] = mapped_column(String(16))
    itemization_amount: Mapped[Decimal | None] = mapped_column(Money)
    interest_since_itemization: Mapped[Decimal | None] = mapped_column(Money)
    fees_since_itemization: Mapped[Decimal | None] = mapped_column(Money)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ContactPoint(Base):
    __tablename__ = "contact_point"
    __table_args__ = (
        UniqueConstraint("person_id", "kind", "value"),
        # The webhooks find a number or an address without knowing the person.
        Index("ix_contact_point_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # phone | email | postal
    value: Mapped[str] = mapped_column(String(300))  # E.164, lower-cased email, or address text
    phone_type: Mapped[str | None] = mapped_column(String(16))  # mobile | landline | work
    # Space-separated IANA zones the number's area code may be in (from phonenumbers).
    time_zones: Mapped[str | None] = mapped_column(String(200))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    call_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    is_workplace: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consent to electronic messages at this email address.
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The consumer used this address or number to reach the lender, or agreed to its use (what
    # makes a workplace email usable).
    used_by_consumer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The employer forbids collection calls at this (work) number.
    no_calls_at_work: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Whose destination this is: self | emergency_contact | estate_representative
    # (policies.model.RELATIONS).
    relation: Mapped[str] = mapped_column(String(32), default="self", server_default="self")
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class OptOut(Base):
    """A person's request to stop a channel: for one destination, or ``scope='*'`` for all."""

    __tablename__ = "opt_out"
    __table_args__ = (UniqueConstraint("person_id", "channel", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | call | letter
    scope: Mapped[str] = mapped_column(String(32))  # contact_point id as text, or '*'
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(32))


class AccountHold(Base):
    __tablename__ = "account_hold"
    __table_args__ = (UniqueConstraint("account_id", "kind", "started_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    # dispute | bankruptcy | deceased | cease_communication | attorney | hardship |
    # original_creditor_request | breathing_space | mental_health_crisis | vulnerable |
    # instalment_plan (outreach.portfolio.history.HOLD_KINDS)
    kind: Mapped[str] = mapped_column(String(32))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32))


class Payment(Base):
    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_ref: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(16), server_default="import")
    # posted | reversed (returned or charged back: from reversed_on it no longer counts)
    status: Mapped[str] = mapped_column(String(16), server_default="posted")
    reversed_on: Mapped[dt.date | None] = mapped_column(Date)
    reversal_reason: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ContactEvent(Base):
    """Something that happened on a channel: imported history, our own sends, outcomes."""

    __tablename__ = "contact_event"
    __table_args__ = (Index("ix_contact_event_account_time", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_ref: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(16))
    contact_point_id: Mapped[int | None] = mapped_column(ForeignKey("contact_point.id"))
    direction: Mapped[str] = mapped_column(String(8), default="outbound")
    # conversation | no_answer | voicemail | busy | not_in_service | wrong_number | sent |
    # delivered | bounced | failed | returned_mail | attempted | third_party
    outcome: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # import | dispatch | callback | agent
    ledger_key: Mapped[str | None] = mapped_column(String(64))


class Contact(Base):
    """The contact ledger: one row per contact, keyed by what the contact is.

    State machine: planned -> sending -> sent | failed | uncertain; planned <-> deferred;
    planned | deferred -> suppressed (a gate blocked it). A row is written before any provider
    is called; the dispatcher claims rows by moving them planned -> sending atomically.
    """

    __tablename__ = "contact"
    __table_args__ = (
        Index("ix_contact_dispatch", "plan_date", "channel", "state"),
        Index("ix_contact_account_stage", "account_id", "episode", "stage", "action"),
    )

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    episode: Mapped[dt.date | None] = mapped_column(Date)  # the due date that began it
    stage: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    contact_point_id: Mapped[int | None] = mapped_column(ForeignKey("contact_point.id"))
    template: Mapped[str | None] = mapped_column(String(128))
    plan_date: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str] = mapped_column(String(500), default="")  # space-separated codes
    window_start: Mapped[dt.datetime | None] = mapped_column(DateTime)
    window_end: Mapped[dt.datetime | None] = mapped_column(DateTime)
    defer_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    config_version: Mapped[str] = mapped_column(String(32))
    pack_versions: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # The account entered here at an earlier required step it lacked, not at its own stage's
    # actions (outreach.planning.history.entry_actions): the summary counts these accounts.
    catch_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The experiment arm the account was in when this was planned, "EXPERIMENT/ARM"; none when
    # no experiment ran (outreach.measurement.experiments). config_version is the arm's ladder.
    arm: Mapped[str | None] = mapped_column(String(64))


class PolicyDecision(Base):
    """One gate verdict, at plan time or at send time, with what decided it."""

    __tablename__ = "policy_decision"
    # One index only: a million decisions a day are written, and every reader (explain, the
    # account timeline, a rerun replacing its plan) starts from the account.
    __table_args__ = (Index("ix_policy_decision_account", "account_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_key: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(8))  # plan | send
    as_of: Mapped[dt.date] = mapped_column(Date)
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime)  # the instant the gate judged
    verdict: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str] = mapped_column(String(500))
    window_start: Mapped[dt.datetime | None] = mapped_column(DateTime)
    window_end: Mapped[dt.datetime | None] = mapped_column(DateTime)
    defer_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    config_version: Mapped[str] = mapped_column(String(32))
    pack_versions: Mapped[str] = mapped_column(String(200))
    # Rule id -> {outcome, citation, facts} for every rule that did not simply pass, and the
    # window's candidate zones for sends. `outreach explain` recomputes the full trace.
    evidence: Mapped[dict] = mapped_column(JSON)  # type: ignore[type-arg]
    arm: Mapped[str | None] = mapped_column(String(64))  # "EXPERIMENT/ARM", as on the contact


class ImportRun(Base):
    """One import of one file: counts, and where its rejects went."""

    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(300))
    file_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_upserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejects_path: Mapped[str | None] = mapped_column(Text)


# --- People and paper: the agent call queue, promises, documents, placements, legal cases ---


class CallTask(Base):
    """An agent call the dispatcher queued: one per ``call`` ledger row (same key).

    queued -> claimed (an agent took it) -> done (a disposition was recorded); queued or
    claimed -> withdrawn (a gate blocked it at claim time: paid, disputed, opted out since
    planning) or expired (its window closed unworked)."""

    __tablename__ = "call_task"
    __table_args__ = (Index("ix_call_task_queue", "state", "priority"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    contact_point_id: Mapped[int | None] = mapped_column(ForeignKey("contact_point.id"))
    priority: Mapped[int] = mapped_column(Integer)  # higher first
    due_start: Mapped[dt.datetime] = mapped_column(DateTime)  # the send window, UTC
    due_end: Mapped[dt.datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disposition: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[str | None] = mapped_column(String(500))  # why withdrawn (reason codes)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Promise(Base):
    """A promise to pay: amount and date, from an agent, the console, the self-service page or an
    import. open -> kept | partly_kept | broken (settled after its date plus grace days), or
    cancelled. While open and ``pauses`` (the limits allowed it), collection pauses until
    ``pause_until`` (the due date plus the grace days): core.promise_open."""

    __tablename__ = "promise"
    __table_args__ = (Index("ix_promise_open", "status", "due_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    # The ref the lender's systems (or we: "call-<ledger key>", "ss-...") know the promise by.
    promise_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    ledger_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    due_on: Mapped[dt.date] = mapped_column(Date)
    made_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # when the consumer promised
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(32))  # agent | console | self_service | import | agency
    actor: Mapped[str | None] = mapped_column(String(64))  # who recorded it
    # open | kept | partly_kept | broken | cancelled
    status: Mapped[str] = mapped_column(String(16), default="open")
    pauses: Mapped[bool] = mapped_column(Boolean, server_default=true())
    pause_until: Mapped[dt.date | None] = mapped_column(Date)
    paid_amount: Mapped[Decimal] = mapped_column(Money, server_default="0")
    settled_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Arrangement(Base):
    """A repayment arrangement: an instalment plan or a settlement, with its schedule
    (``arrangement_instalment``). offered -> (pending_approval ->) active -> completed | broken;
    any open state -> cancelled. While active and ``kept``, collection pauses
    (core.payment_plan_kept, cn.instalment_agreement_kept)."""

    __tablename__ = "arrangement"
    __table_args__ = (
        Index(
            "uq_arrangement_active_account",
            "account_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrangement_ref: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # instalment | settlement
    # offered | pending_approval | active | completed | broken | cancelled
    state: Mapped[str] = mapped_column(String(20))
    total: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int] = mapped_column(Integer)
    instalment_amount: Mapped[Decimal] = mapped_column(Money)
    first_due_on: Mapped[dt.date] = mapped_column(Date)
    balance_at_offer: Mapped[Decimal] = mapped_column(Money)
    past_due_at_offer: Mapped[Decimal] = mapped_column(Money)
    band: Mapped[str | None] = mapped_column(String(64))  # the policy band that allowed it
    policy_version: Mapped[str | None] = mapped_column(String(32))
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Kept: no instalment missed past its grace period (the pause holds while true).
    kept: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    missed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kept_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reaged_on: Mapped[dt.date | None] = mapped_column(Date)
    offered_via: Mapped[str | None] = mapped_column(String(32))  # letter | sms | email | agent | ...
    accepted_via: Mapped[str | None] = mapped_column(String(32))
    offered_by: Mapped[str | None] = mapped_column(String(64))
    accepted_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ArrangementInstalment(Base):
    """One instalment of an arrangement: due -> paid | partly_paid | missed."""

    __tablename__ = "arrangement_instalment"
    __table_args__ = (UniqueConstraint("arrangement_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(ForeignKey("arrangement.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1..term
    due_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    state: Mapped[str] = mapped_column(String(16), default="due")  # due | paid | partly_paid | missed
    paid_on: Mapped[dt.date | None] = mapped_column(Date)


class PaymentAllocation(Base):
    """What part of a payment went to which promise or instalment (oldest due first). A reversal
    marks its allocations reversed and reopens what they closed."""

    __tablename__ = "payment_allocation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    target: Mapped[str] = mapped_column(String(16))  # promise | instalment
    target_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    allocated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ResolutionEvent(Base):
    """Every change of a promise, arrangement, payment, hold, dispute, stated means or cause:
    who, why and when (explain and the timeline read it)."""

    __tablename__ = "resolution_event"
    __table_args__ = (Index("ix_resolution_event_account", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    # promise | arrangement | instalment | payment | hold | dispute | verification | means | cause
    subject: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))  # a person, "system", "import", "consumer"
    reason: Mapped[str] = mapped_column(String(300))  # a code or a short text: never personal data


class StatedMeans(Base):
    """Monthly income and expenses the consumer stated (import, disposition, self-service); the
    latest sizes the offers."""

    __tablename__ = "stated_means"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    monthly_income: Mapped[Decimal] = mapped_column(Money)
    monthly_expenses: Mapped[Decimal] = mapped_column(Money)
    stated_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class DelinquencyCause(Base):
    """Why the account fell behind, as a collector or the consumer classified it: job_loss |
    illness | over_indebtedness | forgot | disputes_debt | fraud | unwilling | other."""

    __tablename__ = "delinquency_cause"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    cause: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # agent | self_service | import | console
    actor: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class VerificationTask(Base):
    """A dispute's verification to send (12 CFR 1006.38): open -> sent (the verification letter
    went out; the dispute hold ends where the law allows) | cancelled."""

    __tablename__ = "verification_task"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    hold_id: Mapped[int | None] = mapped_column(Integer)  # the dispute's account_hold row
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ledger_key: Mapped[str | None] = mapped_column(String(64))


class Document(Base):
    """A file written to a drop location: a letter, a print manifest, a placement or recall
    file, a case package. ``sha256`` proves a rerun wrote the same bytes."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("kind", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # letter | print_manifest | placement_file | recall_file | case_package | arrangement_file
    kind: Mapped[str] = mapped_column(String(32))
    batch_date: Mapped[dt.date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(64))  # mail house, agency or law firm id
    path: Mapped[str] = mapped_column(Text)  # URL or path of the drop location's file
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    ledger_key: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Placement(Base):
    """An account placed with an external agency. At most one open placement per account."""

    __tablename__ = "placement"
    __table_args__ = (
        Index(
            "uq_placement_open_account",
            "account_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    agency: Mapped[str] = mapped_column(String(64))
    ledger_key: Mapped[str] = mapped_column(String(64), unique=True)
    placed_on: Mapped[dt.date] = mapped_column(Date)
    balance_at_placement: Mapped[Decimal] = mapped_column(Money)
    recall_due_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))  # open | recalled
    recalled_on: Mapped[dt.date | None] = mapped_column(Date)
    recall_reason: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class PlacementReturn(Base):
    """What an agency reported back about a placement: a payment collected or an outcome."""

    __tablename__ = "placement_return"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    return_ref: Mapped[str] = mapped_column(String(64), unique=True)  # the agency's own id
    placement_id: Mapped[int] = mapped_column(ForeignKey("placement.id"), index=True)
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))  # payment | outcome
    amount: Mapped[Decimal | None] = mapped_column(Money)
    outcome: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LegalCase(Base):
    """An account referred to a law firm, with the case package sent. Later steps read it."""

    __tablename__ = "legal_case"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the ledger key
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), unique=True)
    firm: Mapped[str] = mapped_column(String(64))
    referred_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # referred | closed
    balance_at_referral: Mapped[Decimal] = mapped_column(Money)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LadderVersion(Base):
    """A ladder as proposed by one person and approved by another. Once any version has been
    approved, the active one is the ladder in force; the file in config/ is then a draft."""

    __tablename__ = "ladder_version"
    __table_args__ = (
        Index(
            "uq_ladder_version_active",
            "state",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    version: Mapped[str] = mapped_column(String(32), primary_key=True)  # Ladder.version
    content: Mapped[str] = mapped_column(Text)  # the YAML as proposed
    source: Mapped[str] = mapped_column(String(300))  # the file it was proposed from
    state: Mapped[str] = mapped_column(String(16))  # proposed | active | retired
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


# --- measurement (issue 16): snapshots for KPIs, the score, experiments -----------------------


class AccountSnapshot(Base):
    """Where one account stood on one day, written by the daily plan: the facts KPIs group by
    (stage, bucket, segment, score band, jurisdiction, arm, ladder version, agency) and the
    amounts they divide by (past due and balance on that day). Money in the account's currency."""

    __tablename__ = "account_snapshot"
    __table_args__ = (Index("ix_account_snapshot_day", "as_of"),)

    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dpd: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(8))  # 0, 1-30, 31-60, ..., 180+
    past_due: Mapped[Decimal] = mapped_column(Money)
    balance: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    stage: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(32))
    score_band: Mapped[str | None] = mapped_column(String(32))
    jurisdiction: Mapped[str | None] = mapped_column(String(16))
    ladder_version: Mapped[str | None] = mapped_column(String(32))
    arm: Mapped[str | None] = mapped_column(String(64))
    agency: Mapped[str | None] = mapped_column(String(64))


class ScoreModel(Base):
    """One trained version of the propensity-to-pay score: what it was trained on, how well it
    did on held-out accounts, and the model itself as data (bins and points, never a pickle)."""

    __tablename__ = "score_model"
    __table_args__ = (
        Index(
            "uq_score_model_active",
            "state",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # e.g. binned_logistic
    label: Mapped[str] = mapped_column(String(64))  # what it predicts, e.g. pays_within_30d
    state: Mapped[str] = mapped_column(String(16))  # trained | active | retired
    trained_at: Mapped[dt.datetime] = mapped_column(DateTime)
    trained_by: Mapped[str] = mapped_column(String(64))
    window_from: Mapped[dt.date] = mapped_column(Date)
    window_to: Mapped[dt.date] = mapped_column(Date)
    features: Mapped[list] = mapped_column(JSON)  # type: ignore[type-arg]
    model: Mapped[dict] = mapped_column(JSON)  # type: ignore[type-arg]
    metrics: Mapped[dict] = mapped_column(JSON)  # type: ignore[type-arg]  # auc, calibration


class AccountScore(Base):
    """One account's score on one day, its band and the factors that weighed most."""

    __tablename__ = "account_score"
    __table_args__ = (Index("ix_account_score_day", "as_of"),)

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Numeric(6, 5))
    band: Mapped[str] = mapped_column(String(32))
    factors: Mapped[list] = mapped_column(JSON)  # type: ignore[type-arg]


class ExperimentAssignment(Base):
    """An account's arm in an experiment, fixed the first time the account is planned while the
    experiment runs: sticky for the experiment's life, whatever its shares or ladders become."""

    __tablename__ = "experiment_assignment"
    __table_args__ = (Index("ix_experiment_assignment_arm", "experiment_id", "arm"),)

    experiment_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arm: Mapped[str] = mapped_column(String(32))  # an arm's name, or "holdout"
    assigned_on: Mapped[dt.date] = mapped_column(Date)


class ExperimentEvent(Base):
    """Every change of an experiment's life: started, stopped, winner proposed, promoted; who
    and why."""

    __tablename__ = "experiment_event"
    __table_args__ = (Index("ix_experiment_event_experiment", "experiment_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(48))
    action: Mapped[str] = mapped_column(String(32))
    arm: Mapped[str | None] = mapped_column(String(32))
    ladder_version: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict] = mapped_column(JSON)  # type: ignore[type-arg]
