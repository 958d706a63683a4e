"""Inbound replies read as a TCPA revocation, a re-opt-in or a help request, without reading
ordinary replies as any of them."""

from __future__ import annotations

import pytest

from policies.revocation import classify


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        " STOP! ",
        "*stop*",
        "STOPALL",
        "StopAll",
        "UNSUBSCRIBE",
        "unsubscribe",
        "CANCEL",
        "cancel",
        "END",
        "end.",
        "QUIT",
        "quit!",
        "REVOKE",
        "OPT OUT",
        "opt out",
        "OPTOUT",
        "Opt-Out",
        "stop stop",
        "STOP ALL",
        "\tStop\n",
        "\u201cSTOP\u201d",
    ],
)
def test_keyword_reply_revokes_consent(text: str) -> None:
    assert classify(text) == "stop"


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Please stop texting me!",
        "stop calling me",
        "Quit calling",
        "stop sending me messages",
        "don't call me anymore",
        "Don\u2019t call me anymore",
        "dont text me",
        "do not contact me",
        "Do not contact me again.",
        "never call me again",
        "leave me alone",
        "Leave me ALONE!!",
        "remove me from your list",
        "please remove my number",
        "take me off",
        "take me off your list",
        "take my number off your list",
        "no more texts",
        "I want to opt out",
        "opt me out",
        "please unsubscribe me",
        "I revoke my consent",
        "please stop",
        "stop it",
        "Stop texting me. Don't call me at work either.",
    ],
)
def test_plain_language_request_revokes_consent(text: str) -> None:
    assert classify(text) == "stop"


@pytest.mark.parametrize(
    "text", ["退订", "回复退订", "请停止发送", "不要再打了", "不要再发短信给我", "TD", "td"]
)
def test_chinese_request_revokes_consent(text: str) -> None:
    assert classify(text) == "stop"


@pytest.mark.parametrize("text", ["START", "start", "Start.", "UNSTOP", "unstop!"])
def test_start_and_unstop_opt_back_in(text: str) -> None:
    assert classify(text) == "start"


@pytest.mark.parametrize("text", ["HELP", "help?", "INFO", "Info"])
def test_help_and_info_ask_for_help(text: str) -> None:
    assert classify(text) == "help"


@pytest.mark.parametrize(
    "text",
    [
        "I can't stop by today",
        "when does the offer end?",
        "Can I cancel my payment plan?",
        "I will end up paying next week",
        "I quit my job so I can't pay",
        "help me understand",
        "yes",
        "YES",
        "ok",
        "I paid yesterday",
        "call me tomorrow",
        "Don't worry, I'll pay",
        "I never text back, sorry",
        "stop by the branch?",
        "Is this the end of it?",
        "the end",
        "start date of the plan?",
        "",
        "   ",
        "!!!",
    ],
)
def test_ordinary_replies_are_not_read_as_keywords(text: str) -> None:
    assert classify(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "don't call me before 5pm",
        "Do not call me at work",
        "don't text me after 8 pm",
        "please don't call me on Sundays",
    ],
)
def test_a_time_or_place_limit_is_left_for_a_person(text: str) -> None:
    # An inconvenient time or place, not a revocation: recorded by a person as such.
    assert classify(text) is None


def test_mixed_keywords_are_left_for_a_person() -> None:
    assert classify("start stop") is None
