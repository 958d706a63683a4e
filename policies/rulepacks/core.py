"""The house rules: every account, every jurisdiction, every role. Jurisdiction packs supersede
some of them with the law's own version (and citation)."""

from __future__ import annotations

import datetime as dt

from policies.pack_model import (
    ALL_CHANNELS,
    CALL,
    CONSUMER_CHANNELS,
    LEGAL,
    TIMED_CHANNELS,
    Applies,
    Pack,
    Rule,
)

AGENCY = frozenset({"agency"})
AGENCY_OR_LEGAL = frozenset({"agency", "legal"})
# What still goes while a kept arrangement or an open promise pauses collection: the notices the
# law requires, and the resolution loop's own reminders and statements.
REQUIRED_NOTICES = ("validation_notice", "verification")
PLAN_PURPOSES = ("instalment_offer", "instalment_reminder", "statement", "promise_reminder",
                 *REQUIRED_NOTICES)
PROMISE_PURPOSES = ("promise_reminder", "instalment_reminder", "statement", *REQUIRED_NOTICES)

CORE = Pack(
    name="core",
    version="2026.12.3",
    title="House rules (every account)",
    applies=Applies(),
    effective_from=dt.date(2020, 1, 1),
    rules=(
        Rule("core.not_delinquent", "not_delinquent",
             "House rule: no collection contact once nothing is past due."),
        Rule("core.cease_communication", "hold",
             "House rule; US: 15 U.S.C. 1692c(c)", CONSUMER_CHANNELS,
             {"holds": ("cease_communication",)}),
        Rule("core.dispute_open", "hold",
             "House rule; US: 15 U.S.C. 1692g(b)", ALL_CHANNELS,
             {"holds": ("dispute", "original_creditor_request"),
              "except_purposes": ("verification",)}),
        Rule("core.verification_not_due", "needs_hold",
             "House rule: a verification letter (12 CFR 1006.38) goes only to an account whose "
             "dispute waits for its verification (an open verification task).",
             ALL_CHANNELS,
             {"holds": ("verification_due",), "purposes": ("verification",)}),
        Rule("core.bankruptcy", "hold",
             "US: 11 U.S.C. 362(a) (automatic stay); house rule elsewhere", ALL_CHANNELS,
             {"holds": ("bankruptcy",)}),
        Rule("core.deceased", "hold",
             "US: 12 CFR 1006.2(e), 1006.6(a)(4); house rule elsewhere", CONSUMER_CHANNELS,
             {"holds": ("deceased",), "except_relations": ("estate_representative",)}),
        Rule("core.attorney_represented", "hold",
             "US: 12 CFR 1006.6(b)(2); 15 U.S.C. 1692c(a)(2)", CONSUMER_CHANNELS,
             {"holds": ("attorney",)}),
        Rule("core.payment_plan_kept", "hold",
             "House rule: an instalment agreement that is being kept stops collection (an "
             "imported instalment_plan hold, or an active arrangement with no instalment "
             "missed past its grace period); its reminders, statements and the notices the "
             "law requires still go.",
             ALL_CHANNELS,
             {"holds": ("instalment_plan",), "except_purposes": PLAN_PURPOSES}),
        Rule("core.promise_open", "hold",
             "House rule: while a promise to pay is open and not yet due (its due date plus "
             "the grace days), collection pauses; the reminder before it falls due and the "
             "notices the law requires still go.",
             ALL_CHANNELS,
             {"holds": ("promise_open",), "except_purposes": PROMISE_PURPOSES}),
        Rule("core.hardship_pause", "hold",
             "House rule: a consumer in hardship (an agent's disposition or a self-service "
             "answer) gets no automated collection for the configured pause "
             "(hardship.pause_days); the repayment offer, the plan's reminders and statements "
             "and the notices the law requires still go.",
             ALL_CHANNELS,
             {"holds": ("hardship",), "except_purposes": PLAN_PURPOSES}),
        Rule("core.settlement_completed", "hold",
             "House rule: a settlement paid in full closes the account for collection.",
             ALL_CHANNELS, {"holds": ("settlement_completed",)}),
        Rule("core.opted_out", "opted_out",
             "US: 12 CFR 1006.6(e); 47 CFR 64.1200(a)(10) (TCPA revocation)", CONSUMER_CHANNELS),
        Rule("core.no_destination", "destination",
             "House rule: a valid destination is needed.", CONSUMER_CHANNELS),
        Rule("core.third_party_contact", "third_party",
             "US: 12 CFR 1006.10, 1006.6(d); house rule elsewhere", CONSUMER_CHANNELS,
             {"allowed_purposes": ("locate",)}),
        Rule("core.quiet_hours", "hours", "House default contact hours.", TIMED_CHANNELS,
             {"start_hour": 8, "end_hour": 21}),
        Rule("core.stated_inconvenient_time", "stated_times",
             "House rule: times the consumer said are inconvenient.", TIMED_CHANNELS),
        Rule("core.call_frequency_7in7", "call_cap", "House default call frequency.", CALL,
             {"max_attempts": 7, "days": 7, "not_counted": ("busy", "not_in_service")}),
        Rule("core.call_after_conversation", "after_conversation",
             "House default pause after a conversation.", CALL, {"days": 7}),
        Rule("core.dispute_before_referral", "hold",
             "House rule: no agency placement or legal referral of a debt the consumer "
             "disputes, whenever the dispute came, until it is resolved.", AGENCY_OR_LEGAL,
             {"holds": ("dispute", "original_creditor_request"),
              "except_purposes": ("verification",)}),
        Rule("core.cease_before_placement", "hold",
             "House rule; US: 15 U.S.C. 1692c(c): a consumer who asked us to stop is not handed "
             "to an agency that would contact them.", AGENCY,
             {"holds": ("cease_communication",)}),
        Rule("core.agency_unassigned", "agency_assigned",
             "House rule: a placement waits for an agency licensed for the account's "
             "jurisdiction, approved and with capacity left.", AGENCY),
        Rule("core.placed_with_agency", "hold",
             "House rule: while an external agency works the account, we do not contact the "
             "consumer, place it again or refer it; the agency's recall ends it.", ALL_CHANNELS,
             {"holds": ("agency_placement",)}),
        Rule("core.referred_to_counsel", "hold",
             "House rule: once referred to a law firm, the firm speaks for us about the debt.",
             ALL_CHANNELS, {"holds": ("legal_referral",)}),
        Rule("core.legal_min_balance", "min_balance",
             "House rule: a legal referral only above the balance that justifies its cost.",
             LEGAL, {"min_balance": 2500}),
        Rule("core.final_notice_wait", "final_notice_wait",
             "House rule; US: 15 U.S.C. 1692e(5) (no threat of action not intended): the final "
             "notice announces the referral and gives the consumer time to respond first.",
             LEGAL, {"days": 30}),
        Rule("core.household_one_per_day", "household",
             "House rule: one person with several accounts is one consumer; at most one "
             "contact per person per channel per local day across their accounts (the "
             "highest-priority account's step goes: most days past due, then highest balance, "
             "then account reference). On unless config/policy.yaml sets householding: false.",
             CONSUMER_CHANNELS),
        Rule("core.time_barred", "time_barred",
             "US: 12 CFR 1006.26(b); house rule elsewhere: no suit, no threat of suit, on a "
             "time-barred debt. Whether a message threatens suit is its template's declaration "
             "({# outreach: threatens_suit #}, checked against its text by the template lint).",
             ALL_CHANNELS),
        Rule("core.time_barred_disclosure", "time_barred_disclosure",
             "Where a state requires a disclosure on time-barred debt (policies.disclosures: "
             "Cal. Civ. Code 1788.14(d); 23 NYCRR 1.3), letters and emails carry it; an SMS "
             "cannot hold it, so no text goes to such an account (house rule).",
             frozenset({"sms"})),
    ),
)  # fmt: skip
