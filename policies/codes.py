"""Every reason code a gate can give, in one place. Codes are ``PACK.RULE``; docs/compliance.md
lists them with their parameters and citations (generated: ``python -m policies.docs``)."""

from __future__ import annotations

REASON_CODES: dict[str, str] = {
    # core: applies to every account, whatever the jurisdiction
    "core.not_delinquent": "Nothing is past due any more (paid or cured).",
    "core.cease_communication": "The consumer asked us in writing to stop communicating.",
    "core.dispute_open": "The debt is disputed (or the original creditor was asked for) and "
    "verification has not been sent.",
    "core.verification_not_due": "No dispute waits for verification: a verification letter "
    "is not sent.",
    "core.bankruptcy": "The consumer is in bankruptcy: the automatic stay stops collection.",
    "core.deceased": "The consumer is deceased: only the estate's representative may be contacted.",
    "core.attorney_represented": "The consumer is represented by an attorney about this debt.",
    "core.payment_plan_kept": "An instalment agreement is being kept: no collection contact.",
    "core.promise_open": "A promise to pay is open and not yet due: collection pauses.",
    "core.hardship_pause": "The consumer reported hardship: automated collection pauses for "
    "the hardship period (the offer and the required notices still go).",
    "core.settlement_completed": "A settlement was paid in full: the account is closed for "
    "collection.",
    "core.opted_out": "The consumer opted out of this channel or this destination.",
    "core.no_destination": "No valid destination for this channel.",
    "core.third_party_contact": "A third party may be contacted only to locate a debtor who "
    "cannot be reached, and never told of the debt.",
    "core.quiet_hours": "Outside the allowed local hours (house default where no pack sets them).",
    "core.stated_inconvenient_time": "A time the consumer said is inconvenient.",
    "core.call_frequency_7in7": "The call attempt cap for 7 consecutive days is reached.",
    "core.call_after_conversation": "A telephone conversation took place in the last 7 days.",
    "core.dispute_before_referral": "A dispute is open: no placement with an agency and no "
    "legal referral until it is resolved.",
    "core.cease_before_placement": "The consumer asked us to stop: the account is not placed "
    "with an agency.",
    "core.agency_unassigned": "No licensed, approved agency with capacity left: the placement "
    "waits a day.",
    "core.placed_with_agency": "The account is placed with an external agency: no contact, "
    "placement or referral of ours until it is recalled.",
    "core.referred_to_counsel": "The account is referred to a law firm: the firm speaks for us.",
    "core.legal_min_balance": "The balance is under the legal referral threshold.",
    "core.final_notice_wait": "No final notice on record, or sent too recently: no legal "
    "referral yet.",
    "core.time_barred": "The debt is time-barred: no legal action and no threat of it.",
    "core.household_one_per_day": "The same person was already contacted, or is planned to be, "
    "on this channel today through another of their accounts: this one waits for the next day.",
    "core.time_barred_disclosure": "The debt is time-barred in a state that requires a "
    "disclosure an SMS cannot hold: letters and emails carry it, no text goes.",
    # us_reg_f: Regulation F (12 CFR part 1006), third-party debt collectors in the US
    "us_reg_f.inconvenient_time": "Outside 08:00-21:00 in every candidate local time zone.",
    "us_reg_f.consumer_inconvenient_time": "A time the consumer said is inconvenient.",
    "us_reg_f.call_frequency_7in7": "Seven call attempts already placed within 7 consecutive days.",
    "us_reg_f.call_after_conversation": "Within 7 days after a telephone conversation.",
    "us_reg_f.cease_communication": "The consumer asked us in writing to stop: only the notices "
    "1006.6(c)(2) permits may go out.",
    "us_reg_f.validation_notice_overdue": "The validation notice was not sent within 5 days of "
    "the initial communication: no further collection communication until it is.",
    "us_reg_f.itemization_unknown": "No itemization to state on the validation notice: the "
    "reference date (last statement, charge-off, last payment, transaction or judgment) and "
    "the amount then were not imported, or they and the interest, fees and payments since do "
    "not add up to the current amount.",
    "us_reg_f.dispute_in_validation_period": "A dispute or original-creditor request arrived "
    "within the validation period: collection stops until verification is sent.",
    "us_reg_f.validation_period_open": "The validation period has not ended (or the notice's "
    "date is unknown): no legal referral yet.",
    "us_reg_f.workplace_email": "An employer-provided email address the consumer has not used "
    "or agreed to.",
    "us_reg_f.workplace_call_prohibited": "The consumer's employer forbids such calls at work.",
    "us_reg_f.credit_reporting_before_contact": "No prior conversation, and no message sent at "
    "least 14 days earlier without a bounce: no credit reporting yet.",
    # us_tcpa: Telephone Consumer Protection Act
    "us_tcpa.mobile_consent": "A text or an autodialed/prerecorded call to a mobile without "
    "prior express consent.",
    # us_scra: Servicemembers Civil Relief Act
    "us_scra.military_status": "No current military-status check, or the consumer is on active "
    "duty: no legal referral.",
    # US states and cities
    "us_ma.personal_phone_2in7": "Two calls or texts to a personal number already in 7 days "
    "(Massachusetts).",
    "us_ma.other_phone_2in30": "Two calls or texts to a non-personal number already in 30 days "
    "(Massachusetts).",
    "us_nyc.contacts_3in7": "Three contacts or attempts on this account already in 7 days "
    "(New York City).",
    "us_nyc.electronic_consent": "Texts and emails need the consumer's consent (New York City).",
    "us_wa.communications_3_per_week": "Three communications already in a week (Washington).",
    "us_wa.workplace_1_per_week": "One communication at the workplace already in a week "
    "(Washington).",
    "us_ca.inconvenient_time": "Outside 08:00-21:00 local (California, first-party creditors).",
    "us_ca.call_frequency_7in7": "Seven call attempts already in 7 days (California).",
    "us_ca.call_after_conversation": "Within 7 days after a conversation (California).",
    "us_ca.cease_communication": "The consumer asked us in writing to stop (California).",
    "us_ca.workplace_call_prohibited": "The employer forbids such calls at work (California).",
    # cn: China
    "cn.collection_hours": "Outside 08:00-22:00 local (China).",
    "cn.unanswered_attempts_daily": "Six unanswered attempts to this contact method today (China).",
    "cn.third_party_locate_only": "An emergency contact only when the debtor cannot be reached, "
    "only to ask how to reach them (China).",
    "cn.instalment_agreement_kept": "A personalised instalment agreement is being kept (China).",
    "cn.agency_not_approved": "No agency from the approved list is assigned (China).",
    # gb: United Kingdom
    "gb.unreasonable_hours": "Outside 08:00-21:00 local (United Kingdom).",
    "gb.breathing_space": "A Breathing Space moratorium is in force.",
    "gb.mental_health_crisis": "A mental health crisis moratorium is in force (until 30 days "
    "after treatment ends).",
    "gb.vulnerable_customer": "A vulnerable customer: a person handles the account, no "
    "automated contact.",
    # ladder: the escalation config itself
    "ladder.prerequisite_unmet": (
        "The stage requires an earlier action that can never be taken (its cadence is used up); "
        "a required action not yet taken is taken first instead (catch-up)."
    ),
    "ladder.not_applicable": "The ladder in force says this action (or its stage) does not "
    "apply to the account (applies_to: country, region, product, role): not sent.",
    # ops: decisions people make in the ops console (docs/console.md)
    "ops.dropped": "An ops user dropped an uncertain or failed contact by hand (who and why are "
    "recorded with it).",
}
