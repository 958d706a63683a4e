"""Every reason code a gate can give, in one place. Codes are ``PACK.RULE``; docs/compliance.md
lists them with their parameters and citations."""

from __future__ import annotations

REASON_CODES: dict[str, str] = {
    # core: applies to every account, whatever the jurisdiction
    "core.cease_communication": "The consumer asked us in writing to stop communicating.",
    "core.dispute_open": "The debt is disputed and verification has not been sent.",
    "core.bankruptcy": "The consumer is in bankruptcy: the automatic stay stops collection.",
    "core.deceased": "The consumer is deceased: only the estate's representative may be contacted.",
    "core.attorney_represented": "The consumer is represented by an attorney about this debt.",
    "core.opted_out": "The consumer opted out of this channel or this destination.",
    "core.not_delinquent": "Nothing is past due any more (paid or cured).",
    "core.no_destination": "No valid destination for this channel.",
    "core.zone_unknown": "The consumer's time zone cannot be determined.",
    "core.quiet_hours": "Outside the allowed local hours (house default where no pack sets them).",
    "core.call_frequency_7in7": "The call attempt cap for 7 consecutive days is reached.",
    "core.call_after_conversation": "A telephone conversation took place in the last 7 days.",
    # us_reg_f: Regulation F (12 CFR part 1006), for US accounts
    "us_reg_f.inconvenient_time": "Outside 08:00-21:00 in every candidate local time zone.",
    "us_reg_f.call_frequency_7in7": "Seven call attempts already placed within 7 consecutive days.",
    "us_reg_f.call_after_conversation": "Within 7 days after a telephone conversation.",
    # ladder: the escalation config itself
    "ladder.prerequisite_unmet": "The stage requires an earlier action that has not happened.",
}

