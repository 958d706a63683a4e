"""United Kingdom: FCA consumer-credit conduct and the Debt Respite Scheme (Breathing Space)."""

from __future__ import annotations

import datetime as dt

from policies.pack_model import ALL_CHANNELS, TIMED_CHANNELS, Applies, Pack, Rule

BREATHING_SPACE = (
    "Debt Respite Scheme (Breathing Space Moratorium and Mental Health Crisis Moratorium) "
    "(England and Wales) Regulations 2020 (SI 2020/1311)"
)

GB = Pack(
    name="gb",
    version="2021.05.04",
    title="United Kingdom: FCA CONC 7 and Breathing Space",
    applies=Applies(countries=frozenset({"GB"})),
    effective_from=dt.date(2021, 5, 4),
    rules=(
        Rule("gb.unreasonable_hours", "hours",
             "FCA CONC 7.9.4R (no contact at unreasonable times; 08:00-21:00 by default)",
             TIMED_CHANNELS, {"start_hour": 8, "end_hour": 21},
             supersedes=("core.quiet_hours",)),
        Rule("gb.breathing_space", "hold_period",
             f"{BREATHING_SPACE}: standard moratorium, 60 days", ALL_CHANNELS,
             {"holds": ("breathing_space",), "default_days": 60}),
        Rule("gb.mental_health_crisis", "hold_period",
             f"{BREATHING_SPACE}: mental health crisis moratorium, until 30 days after the "
             "crisis treatment ends", ALL_CHANNELS,
             {"holds": ("mental_health_crisis",), "days_after_end": 30}),
        Rule("gb.vulnerable_customer", "hold",
             "FCA FG21/1 (fair treatment of vulnerable customers); CONC 7.2.1R: a person "
             "handles the account, automated contact stops", frozenset({"sms", "email", "letter"}),
             {"holds": ("vulnerable",)}),
    ),
)  # fmt: skip
