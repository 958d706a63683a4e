"""United States, states and cities: Massachusetts, New York City, Washington, California."""

from __future__ import annotations

import datetime as dt

from policies.packs import CALL, CONSUMER_CHANNELS, TIMED_CHANNELS, Applies, Pack, Rule
from policies.rulepacks.us_federal import CEASE_PERMITTED

US = frozenset({"US"})
PHONE_CHANNELS = frozenset({"call", "sms"})

# 940 CMR 7.04(1)(f) caps communications a creditor *initiates*. The Attorney General's guidance
# on the rule treats a creditor "truly unable to reach the debtor or to leave a message" as not
# initiating one: a call that never connected (busy, not in service), a wrong number, and a text
# that never arrived are not counted. A call that rang unanswered is counted: the record does not
# tell whether a message could have been left (the cautious reading).
MA_NOT_INITIATED = ("busy", "not_in_service", "wrong_number", "failed", "undelivered")
MA_READING = (
    "; not counted: calls and texts that never reached the debtor nor a voicemail (busy, not in "
    "service, wrong number, failed text), per the Attorney General's guidance that a creditor "
    "“truly unable to reach the debtor or to leave a message” does not initiate a "
    "communication; unanswered calls are counted (the record does not tell whether a message "
    "could be left). Guidance as quoted in Armata v. Target Corp., 480 Mass. 14 (2018): to confirm"
)

US_MA = Pack(
    name="us_ma",
    # -r2: calls and texts that never reached the debtor or a voicemail are not counted.
    version="2023.01.01-r2",
    title="Massachusetts debt collection regulations (creditors and collectors)",
    applies=Applies(countries=US, regions=frozenset({"US-MA"})),
    effective_from=dt.date(2023, 1, 1),
    rules=(
        Rule("us_ma.personal_phone_2in7", "contact_cap", "940 CMR 7.04(1)(f)" + MA_READING,
             PHONE_CHANNELS,
             {"max_attempts": 2, "days": 7, "counted_channels": ("call", "sms"),
              "not_counted": MA_NOT_INITIATED, "scope": "personal_phone"}),
        Rule("us_ma.other_phone_2in30", "contact_cap", "940 CMR 7.04(1)(f)" + MA_READING,
             PHONE_CHANNELS,
             {"max_attempts": 2, "days": 30, "counted_channels": ("call", "sms"),
              "not_counted": MA_NOT_INITIATED, "scope": "other_phone"}),
    ),
)  # fmt: skip

NYC_NAMES = frozenset(
    {"new york", "new york city", "nyc", "manhattan", "brooklyn", "bronx", "the bronx", "queens",
     "staten island"}
)  # fmt: skip

US_NYC = Pack(
    name="us_nyc",
    version="2024.10.01",
    title="New York City debt collection rules (6 RCNY 5-77)",
    applies=Applies(countries=US, regions=frozenset({"US-NY"}), cities=NYC_NAMES,
                    roles=frozenset({"collector"})),
    effective_from=dt.date(2024, 10, 1),
    rules=(
        Rule("us_nyc.contacts_3in7", "contact_cap", "6 RCNY 5-77(b)(1)", CONSUMER_CHANNELS,
             {"max_attempts": 3, "days": 7,
              "counted_channels": ("call", "sms", "email", "letter"), "scope": "account"}),
        Rule("us_nyc.electronic_consent", "consent", "6 RCNY 5-77(e)",
             frozenset({"sms", "email"}), {"phone_types": None}),
    ),
)  # fmt: skip

# Communications that reached the consumer (or may have: an outbox call's outcome is unknown).
WA_COMMUNICATIONS = ("conversation", "voicemail", "sent", "delivered", "attempted")

US_WA = Pack(
    name="us_wa",
    version="2013.07.28",
    title="Washington Collection Agency Act (licensed collection agencies)",
    applies=Applies(countries=US, regions=frozenset({"US-WA"}), roles=frozenset({"collector"})),
    effective_from=dt.date(2013, 7, 28),
    rules=(
        Rule("us_wa.communications_3_per_week", "contact_cap", "RCW 19.16.250(13)",
             CONSUMER_CHANNELS,
             {"max_attempts": 3, "days": 7,
              "counted_channels": ("call", "sms", "email", "letter"),
              "counted_outcomes": WA_COMMUNICATIONS, "scope": "account"}),
        Rule("us_wa.workplace_1_per_week", "contact_cap", "RCW 19.16.250(13)",
             CONSUMER_CHANNELS,
             {"max_attempts": 1, "days": 7, "counted_channels": ("call", "sms", "email"),
              "counted_outcomes": WA_COMMUNICATIONS, "scope": "workplace"}),
    ),
)  # fmt: skip

US_CA = Pack(
    name="us_ca",
    version="2021.11.30",
    title="California Rosenthal Act: federal conduct rules for first-party creditors",
    applies=Applies(countries=US, regions=frozenset({"US-CA"}), roles=frozenset({"creditor"})),
    effective_from=dt.date(2021, 11, 30),
    rules=(
        Rule("us_ca.inconvenient_time", "hours",
             "Cal. Civ. Code 1788.17 (incorporating 15 U.S.C. 1692c(a)(1))", TIMED_CHANNELS,
             {"start_hour": 8, "end_hour": 21}, supersedes=("core.quiet_hours",)),
        Rule("us_ca.call_frequency_7in7", "call_cap",
             "Cal. Civ. Code 1788.11(d)-(e), 1788.17; 12 CFR 1006.14(b)(2)(i) as the measure",
             CALL, {"max_attempts": 7, "days": 7, "not_counted": ("busy", "not_in_service")},
             supersedes=("core.call_frequency_7in7",)),
        Rule("us_ca.call_after_conversation", "after_conversation",
             "Cal. Civ. Code 1788.11(e), 1788.17; 12 CFR 1006.14(b)(2)(ii) as the measure",
             CALL, {"days": 7}, supersedes=("core.call_after_conversation",)),
        Rule("us_ca.cease_communication", "hold",
             "Cal. Civ. Code 1788.17 (incorporating 15 U.S.C. 1692c(c))", CONSUMER_CHANNELS,
             {"holds": ("cease_communication",), "except_purposes": CEASE_PERMITTED},
             supersedes=("core.cease_communication",)),
        Rule("us_ca.workplace_call_prohibited", "workplace_calls",
             "Cal. Civ. Code 1788.17 (incorporating 15 U.S.C. 1692c(a)(3))", CALL),
    ),
)  # fmt: skip
