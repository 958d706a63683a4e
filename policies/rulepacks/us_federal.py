"""United States, federal: Regulation F (12 CFR part 1006) and the FDCPA for debt collectors, the
TCPA for anyone who calls or texts a mobile, the SCRA before a suit."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

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

US = frozenset({"US"})
# 1006.6(c)(2): after a cease request, only these notices may still go out.
CEASE_PERMITTED = ("termination_notice", "remedy_notice")

US_REG_F = Pack(
    name="us_reg_f",
    # 2021.11.30.1: the validation notice needs an imported itemization (issue 13 item 12).
    version="2021.11.30.1",
    title="Regulation F (12 CFR part 1006) and the FDCPA: third-party debt collectors",
    applies=Applies(countries=US, roles=frozenset({"collector"})),
    effective_from=dt.date(2021, 11, 30),
    rules=(
        Rule("us_reg_f.inconvenient_time", "hours",
             "12 CFR 1006.6(b)(1)(i); 15 U.S.C. 1692c(a)(1)", TIMED_CHANNELS,
             {"start_hour": 8, "end_hour": 21}, supersedes=("core.quiet_hours",)),
        Rule("us_reg_f.consumer_inconvenient_time", "stated_times",
             "12 CFR 1006.6(b)(1)(i) (a time the collector knows is inconvenient)",
             TIMED_CHANNELS, supersedes=("core.stated_inconvenient_time",)),
        Rule("us_reg_f.call_frequency_7in7", "call_cap",
             "12 CFR 1006.14(b)(2)(i): every call placed counts, answered or not, voicemail or "
             "not; not counted: calls that do not connect to the dialed number (busy signal, "
             "number not in service), 1006.14(b)(3)(iii) and its commentary (the examples of "
             "comment 14(b)(3)(iii)-1: to confirm)", CALL,
             {"max_attempts": 7, "days": 7, "not_counted": ("busy", "not_in_service")},
             supersedes=("core.call_frequency_7in7",)),
        Rule("us_reg_f.call_after_conversation", "after_conversation",
             "12 CFR 1006.14(b)(2)(ii)", CALL, {"days": 7},
             supersedes=("core.call_after_conversation",)),
        Rule("us_reg_f.cease_communication", "hold",
             "12 CFR 1006.6(c); 15 U.S.C. 1692c(c)", CONSUMER_CHANNELS,
             {"holds": ("cease_communication",), "except_purposes": CEASE_PERMITTED},
             supersedes=("core.cease_communication",)),
        Rule("us_reg_f.validation_notice_overdue", "validation_notice",
             "12 CFR 1006.34(a)(1)(i)(B); 15 U.S.C. 1692g(a)", CONSUMER_CHANNELS,
             {"days": 5, "except_purposes": ("validation_notice",) + CEASE_PERMITTED}),
        Rule("us_reg_f.itemization_unknown", "itemization",
             "12 CFR 1006.34(b)(3), (c)(2)(vi)-(ix): the itemization date is the last "
             "statement, charge-off, last payment, transaction or judgment date, with the "
             "amount then and the interest, fees, payments and credits since",
             CONSUMER_CHANNELS),
        Rule("us_reg_f.dispute_in_validation_period", "validation_dispute",
             "12 CFR 1006.38(c), (d)(2); 1006.34(b)(5); 15 U.S.C. 1692g(b)", ALL_CHANNELS,
             {"holds": ("dispute", "original_creditor_request"), "receipt_business_days": 5,
              "period_days": 30, "except_purposes": ("verification",)},
             supersedes=("core.dispute_open",)),
        Rule("us_reg_f.validation_period_open", "validation_period",
             "12 CFR 1006.34(b)(5), 1006.38(b) (no suit before the validation period ends)",
             LEGAL, {"receipt_business_days": 5, "period_days": 30}),
        Rule("us_reg_f.workplace_email", "workplace_email", "12 CFR 1006.22(f)(3)",
             frozenset({"email"})),
        Rule("us_reg_f.workplace_call_prohibited", "workplace_calls",
             "12 CFR 1006.6(b)(3); 15 U.S.C. 1692c(a)(3)", CALL),
        Rule("us_reg_f.credit_reporting_before_contact", "credit_report",
             "12 CFR 1006.30(a)(1)", ALL_CHANNELS, {"days": 14}),
    ),
)  # fmt: skip

TCPA_MOBILE_CONSENT = Rule(
    "us_tcpa.mobile_consent", "consent", "47 U.S.C. 227(b)(1)(A)(iii); 47 CFR 64.1200(a)(1)",
    frozenset({"sms", "call"}),
    {"phone_types": ("mobile",), "dialers": ("autodialed", "prerecorded")},
)  # fmt: skip

# Two versions: the FCC's 2024 order (in force 2025-04-11) made revocation "by any reasonable
# means" explicit, with a 10 business-day limit; the consent gate itself is unchanged.
US_TCPA_1992 = Pack(
    name="us_tcpa",
    version="1992.12.20",
    title="Telephone Consumer Protection Act: texts and automated calls to mobiles",
    applies=Applies(countries=US),
    effective_from=dt.date(1992, 12, 20),
    effective_to=dt.date(2025, 4, 11),
    rules=(TCPA_MOBILE_CONSENT,),
    notes=("Revocation of consent is recorded as an opt-out at once.",),
)

US_TCPA = replace(
    US_TCPA_1992,
    version="2025.04.11",
    effective_from=dt.date(2025, 4, 11),
    effective_to=None,
    notes=("Revocation of consent by any reasonable means (STOP, QUIT, END, REVOKE, OPT OUT, "
           "CANCEL, UNSUBSCRIBE or plain words) is recorded as an opt-out at once "
           "(policies.revocation); 47 CFR 64.1200(a)(10) allows up to 10 business days.",),
)  # fmt: skip

US_SCRA = Pack(
    name="us_scra",
    version="2003.12.19",
    title="Servicemembers Civil Relief Act: military status before a suit",
    applies=Applies(countries=US),
    effective_from=dt.date(2003, 12, 19),
    rules=(
        Rule("us_scra.military_status", "scra", "50 U.S.C. 3931(b)(1)", LEGAL,
             {"max_age_days": 30}),
    ),
)  # fmt: skip
