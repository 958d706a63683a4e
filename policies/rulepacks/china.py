"""China: credit-card and consumer-loan collection by banks, consumer-finance companies and the
agencies they engage."""

from __future__ import annotations

import datetime as dt

from policies.pack_model import (
    ALL_CHANNELS,
    CONSUMER_CHANNELS,
    TIMED_CHANNELS,
    Applies,
    LetterRequirement,
    Pack,
    Rule,
)
from policies.rulepacks.core import PLAN_PURPOSES

CN_REGULATORS = "NFRA/PBOC rules on credit-card and consumer-credit collection"

CN = Pack(
    name="cn",
    # -r2: calls imported without a destination count toward every number's daily cap, and
    # the cap counts across all of the debtor's accounts (per consumer).
    version="2022.07.07-r3",
    title="China: credit-card and consumer-loan collection",
    applies=Applies(countries=frozenset({"CN"}),
                    products=frozenset({"credit_card", "consumer_loan"})),
    effective_from=dt.date(2022, 7, 7),
    rules=(
        Rule("cn.collection_hours", "hours",
             f"{CN_REGULATORS}: no collection contact 22:00-08:00 local", TIMED_CHANNELS,
             {"start_hour": 8, "end_hour": 22}, supersedes=("core.quiet_hours",)),
        Rule("cn.unanswered_attempts_daily", "contact_cap",
             f"{CN_REGULATORS}: at most 6 unanswered attempts a day per contact method; "
             "counted per number across all of the debtor's accounts (the limit is on the "
             "contact method, whichever debt the call is about; to confirm); an attempt whose "
             "number is not on record counts for each of the debtor's numbers",
             frozenset({"call"}),
             {"max_attempts": 6, "days": 1, "counted_channels": ("call",),
              "counted_outcomes": ("no_answer", "busy", "voicemail", "not_in_service",
                                   "attempted"),
              "scope": "destination", "per": "consumer"}),
        Rule("cn.third_party_locate_only", "third_party",
             f"{CN_REGULATORS}: no disclosure of the debt to third parties; an emergency "
             "contact only when the debtor is unreachable, only to ask how to reach them",
             CONSUMER_CHANNELS, {"allowed_purposes": ("locate",)},
             supersedes=("core.third_party_contact",)),
        Rule("cn.instalment_agreement_kept", "hold",
             "CBIRC/PBOC notice on credit-card business (Yinbaojianfa [2022] No. 13): "
             "personalised instalment agreements of up to 5 years stop collection while kept",
             ALL_CHANNELS,
             {"holds": ("instalment_plan",), "except_purposes": PLAN_PURPOSES},
             supersedes=("core.payment_plan_kept",)),
        Rule("cn.agency_not_approved", "agency_approved",
             f"{CN_REGULATORS}: external collection agencies only from the approved list",
             frozenset({"agency"})),
    ),
    notes=("Collection records (calls, messages, visits) are kept at least 2 years.",
           "Personalised instalment agreements run up to 5 years."),
    letter_requirements=(
        LetterRequirement(
            "cn.collection_notice_contents",
            "A collection letter states the cardholder's rights, how to check the account and "
            "raise an objection, the hours and manner of collection, where to complain, and a "
            "domestic contact number.",
            "《商业银行信用卡业务监督管理办法》 (CBRC Order 2011 No. 2) arts. 68-72 on "
            "collection; 《关于进一步促进信用卡业务规范健康发展的通知》 (CBIRC/PBOC, 银保监规"
            "〔2022〕13号) on collection conduct and complaints: the articles and the list of "
            "contents are from memory, to confirm against the texts",
            ("reminder", "final_notice"),
        ),
    ),
)  # fmt: skip
