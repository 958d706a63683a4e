"""The gate against an independent oracle (hypothesis).

The oracle below is deliberately plain: it reads the rules as the law states them and shares no
code with ``policies`` (only ``zoneinfo`` and the fact and step records it is handed):

- Contact hours: every instant of contact lies inside 08:00-21:00 local (China: 08:00-22:00) in
  every candidate zone (the address's and the phone's; the country's zones when neither is known),
  and outside every span the consumer said is inconvenient, in each of those zones.
- Call frequency (12 CFR 1006.14(b)(2); the house rule elsewhere): in any 7 consecutive local days,
  at most 7 call attempts, not counting busy or not-in-service calls; and no call in the 7 days
  that start on the local day of a telephone conversation.
- Massachusetts (940 CMR 7.04(1)(f)): at most 2 calls or texts in any 7 days to personal numbers,
  and at most 2 in any 30 days to other numbers; a number of unknown type may be either. A call
  or text that reached neither the debtor nor a voicemail (busy, not in service, wrong number, a
  failed text) initiated no communication (the Attorney General's guidance).
- New York City (6 RCNY 5-77, collectors): at most 3 contacts or attempts in any 7 days, across
  channels.
- China: at most 6 unanswered attempts a local day to one number; an attempt whose number is
  unknown may have been to any of them.

Local days are those of the consumer's own zone (the address's, else the phone's). The checks
are that (1) whenever the engine plans a send, one more contact at the start, the end less one
second, and a random instant of the window breaks none of these; (2) a send verdict at instant
``t`` is one the oracle allows at ``t``; (3) loosely, the other way round: where only these rules
bear on a step and the oracle allows it at ``t``, the engine sends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step, TimeBlock

# --- the oracle ---------------------------------------------------------------------------------

US_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
            "America/Phoenix", "Pacific/Honolulu", "America/Anchorage")  # fmt: skip
COUNTRY_ZONES = {  # where a consumer of the country may be when nothing tells
    "US": ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
           "America/Anchorage", "Pacific/Honolulu"),  # fmt: skip
    "CN": ("Asia/Shanghai",),
    "GB": ("Europe/London",),
}
NYC = {"new york", "new york city", "nyc", "manhattan", "brooklyn", "bronx", "the bronx",
       "queens", "staten island"}  # fmt: skip
NOT_ATTEMPTS = {"busy", "not_in_service"}
UNANSWERED = {"no_answer", "busy", "voicemail", "not_in_service", "attempted"}
MA_NOT_INITIATED = {"busy", "not_in_service", "wrong_number", "failed", "undelivered"}


def local_clock(instant: dt.datetime, zone: str) -> dt.datetime:
    return instant.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))


def local_day(instant: dt.datetime, zone: str) -> dt.date:
    return local_clock(instant, zone).date()


def zones_of(facts: AccountFacts, step: Step) -> list[str]:
    zones: list[str] = []
    for z in list(facts.address_zones) + list(step.destination_zones):
        if z not in zones:
            zones.append(z)
    return zones or list(COUNTRY_ZONES[facts.country])


@dataclass
class Contact:
    """A contact as the oracle counts it: when, on what, where to, how it ended."""

    at: dt.datetime
    channel: str
    outcome: str
    cp: int | None
    phone_type: str | None
    workplace: bool


def is_work(c: Contact) -> bool:
    return c.workplace or c.phone_type == "work"


def is_personal(c: Contact) -> bool:
    return not is_work(c) and c.phone_type in ("mobile", "landline")


def is_unknown_phone(c: Contact) -> bool:
    return not c.workplace and c.phone_type is None


def at_most_in_any_window(day_of: list[dt.date], new_day: dt.date, limit: int, days: int) -> bool:
    """With the new contact on ``new_day``, every ``days``-day window holding it has at most
    ``limit`` contacts."""
    for first in (new_day - dt.timedelta(days=k) for k in range(days)):
        last = first + dt.timedelta(days=days - 1)
        if sum(1 for d in day_of if first <= d <= last) + 1 > limit:
            return False
    return True


def oracle_violations(facts: AccountFacts, step: Step, t: dt.datetime) -> list[str]:
    """What one more contact by ``step`` at instant ``t`` would break."""
    zones = zones_of(facts, step)
    home = zones[0]
    broken: list[str] = []
    new_day = local_day(t, home)
    past = [Contact(h.at, h.channel, h.outcome, h.contact_point_id, h.phone_type, h.is_workplace)
            for h in facts.history]  # fmt: skip

    if step.channel in ("call", "sms", "email"):
        end_hour = 22 if facts.country == "CN" else 21
        for z in zones:
            clock = local_clock(t, z)
            seconds = clock.hour * 3600 + clock.minute * 60 + clock.second
            if not 8 * 3600 <= seconds < end_hour * 3600:
                broken.append(f"hours in {z}: {clock:%H:%M:%S}")
            for b in facts.inconvenient_times:
                if clock.weekday() in b.weekdays and b.start * 60 <= seconds < b.end * 60:
                    broken.append(f"stated inconvenient time in {z}: {clock:%a %H:%M:%S}")

    if step.channel == "call":
        attempts = [local_day(c.at, home) for c in past
                    if c.channel == "call" and c.outcome not in NOT_ATTEMPTS]  # fmt: skip
        if not at_most_in_any_window(attempts, new_day, 7, 7):
            broken.append("more than 7 call attempts in 7 days")
        talks = [c.at for c in past if c.channel == "call" and c.outcome == "conversation"]
        if facts.last_conversation is not None:
            talks.append(facts.last_conversation)
        for talk in talks:
            first = local_day(talk, home)
            if first <= new_day < first + dt.timedelta(days=7):
                broken.append(f"call within 7 days of the conversation of {first}")
        if facts.country == "CN":
            same_day = [c for c in past if c.channel == "call"
                        and c.cp in (step.contact_point_id, None)
                        and c.outcome in UNANSWERED and local_day(c.at, home) == new_day]  # fmt: skip
            if len(same_day) + 1 > 6:
                broken.append("more than 6 unanswered attempts today to this number")

    if facts.country == "US" and (facts.region or "").upper() == "MA" and step.channel in (
        "call", "sms"
    ):
        me = Contact(t, step.channel, "new", step.contact_point_id, step.phone_type,
                     step.is_workplace)  # fmt: skip
        phone_contacts = [c for c in past if c.channel in ("call", "sms")
                          and c.outcome not in MA_NOT_INITIATED]  # fmt: skip
        if is_personal(me) or is_unknown_phone(me):
            personal = [local_day(c.at, home) for c in phone_contacts
                        if is_personal(c) or is_unknown_phone(c)]  # fmt: skip
            if not at_most_in_any_window(personal, new_day, 2, 7):
                broken.append("Massachusetts: more than 2 in 7 days to personal numbers")
        if is_work(me) or is_unknown_phone(me):
            other = [local_day(c.at, home) for c in phone_contacts
                     if is_work(c) or is_unknown_phone(c)]  # fmt: skip
            if not at_most_in_any_window(other, new_day, 2, 30):
                broken.append("Massachusetts: more than 2 in 30 days to other numbers")

    in_nyc = (facts.country == "US" and (facts.region or "").upper() == "NY"
              and (facts.city or "").strip().casefold() in NYC and facts.role == "collector")  # fmt: skip
    if in_nyc and step.channel in ("call", "sms", "email", "letter"):
        contacts = [local_day(c.at, home) for c in past
                    if c.channel in ("call", "sms", "email", "letter")]  # fmt: skip
        if not at_most_in_any_window(contacts, new_day, 3, 7):
            broken.append("New York City: more than 3 contacts in 7 days")
    return broken


# --- the strategies -----------------------------------------------------------------------------

DAYS = [dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 9), dt.date(2026, 3, 29),
        dt.date(2026, 7, 15), dt.date(2026, 10, 25), dt.date(2026, 10, 31), dt.date(2026, 11, 1),
        dt.date(2026, 11, 2), dt.date(2026, 11, 23)]  # fmt: skip
STATED = [
    (TimeBlock(frozenset(range(5)), 9 * 60, 17 * 60),),  # mon-fri 09:00-17:00
    (TimeBlock(frozenset({6}), 0, 1440),),  # sunday
    (TimeBlock(frozenset(range(7)), 12 * 60, 13 * 60),),  # daily 12:00-13:00
    (TimeBlock(frozenset(range(7)), 19 * 60, 1440),),  # daily from 19:00
]
OUTCOMES = {
    "call": ["no_answer", "voicemail", "busy", "not_in_service", "wrong_number", "conversation",
             "attempted"],
    "sms": ["sent", "delivered", "failed"],
    "email": ["sent", "delivered", "bounced"],
    "letter": ["sent", "returned_mail"],
}
PHONES = {10: ("mobile", False), 11: ("landline", False), 12: ("work", True), 13: (None, False)}


@st.composite
def scenarios(draw: st.DrawFn, plain: bool = False) -> tuple[AccountFacts, Step, dt.date]:
    """Facts, a step and the consumer's local day. ``plain``: nothing but the oracle's rules
    bears on the step (no holds, consent given, a valid destination, a manual dialer)."""
    country = draw(st.sampled_from(["US", "US", "US", "US", "US", "CN", "GB"]))
    region: str | None
    city: str | None = None
    role = draw(st.sampled_from(["collector", "creditor"]))
    if country == "US":
        region = draw(st.sampled_from(["NY", "NY", "NY", "MA", "MA", "CA", "TX"]))
        if region == "NY":
            city = draw(st.sampled_from(["Brooklyn", "Manhattan", "Buffalo", None]))
        own = list(US_ZONES)
    elif country == "CN":
        region, own = "BJ", ["Asia/Shanghai"]
    else:
        region, own = None, ["Europe/London"]
    address = tuple(draw(st.lists(st.sampled_from(own), max_size=2, unique=True)))
    day = draw(st.sampled_from(DAYS))
    home = (address or COUNTRY_ZONES[country])[0]
    channel = draw(st.sampled_from(["call", "call", "call", "sms", "sms", "email", "letter"]))
    if channel in ("call", "sms"):
        cp = draw(st.sampled_from(sorted(PHONES)))
        phone_type, workplace = PHONES[cp]
        destination = tuple(draw(st.lists(st.sampled_from(own), max_size=1)))
    else:
        cp, phone_type, workplace, destination = (20 if channel == "email" else 30), None, False, ()
    if not address and destination:
        home = destination[0]

    # History on every channel over the 35 local days up to the judged day, clustered on a few
    # days so that caps are reached (and just not reached) often; and sometimes a run of call
    # attempts in the last week, to reach the 7-in-7 cap.
    recent = st.integers(0, 8)  # where the 7-day periods turn
    busy_days = draw(st.lists(st.one_of(recent, st.integers(0, 34)), min_size=1, max_size=4))
    n = draw(st.one_of(st.integers(0, 3), st.integers(0, 12)))
    burst = draw(st.sampled_from([0, 0, 5, 6, 7, 8]))
    history: list[PastContact] = []
    for i in range(n + burst):
        in_burst = i >= n
        h_day = day - dt.timedelta(days=draw(recent if in_burst else st.sampled_from(busy_days)))
        minute = draw(st.integers(0, 24 * 60 - 1))
        h_local = dt.datetime.combine(h_day, dt.time(minute // 60, minute % 60), ZoneInfo(home))
        h_channel = "call" if in_burst else draw(
            st.sampled_from(["call", "call", "call", "sms", "email", "letter"]))  # fmt: skip
        h_cp = draw(st.sampled_from(sorted(PHONES))) if h_channel in ("call", "sms") else (
            20 if h_channel == "email" else 30)  # fmt: skip
        h_type, h_work = PHONES[h_cp] if h_cp in PHONES else (None, False)
        outcomes = ["no_answer", "voicemail", "busy"] if in_burst else OUTCOMES[h_channel]
        history.append(PastContact(h_local.astimezone(dt.UTC).replace(tzinfo=None),
                                   h_channel, draw(st.sampled_from(outcomes)), h_cp, h_type,
                                   h_work))  # fmt: skip
    history.sort(key=lambda h: h.at)
    talks = [h.at for h in history if h.channel == "call" and h.outcome == "conversation"]
    inbound = draw(st.one_of(st.none(), st.integers(0, 20 * 24 * 60)))
    if inbound is not None:  # an inbound call: a conversation that is not in the history
        midnight = dt.datetime.combine(day, dt.time(), ZoneInfo(home)).astimezone(dt.UTC)
        talks.append(midnight.replace(tzinfo=None) - dt.timedelta(minutes=inbound))
    stated = draw(st.one_of(st.just(()), st.just(()), st.sampled_from(STATED)))
    facts = AccountFacts(
        account_id=1, country=country, region=region, past_due=100.0, address_zones=address,
        history=tuple(history), last_conversation=max(talks) if talks else None, city=city,
        product=draw(st.sampled_from(["credit_card", "consumer_loan"])), role=role,
        inconvenient_times=stated,
    )  # fmt: skip
    step = Step(
        channel, cp, destination, phone_type=phone_type, is_workplace=workplace,
        consent=True if plain else draw(st.booleans()),
        used_by_consumer=True,
    )  # fmt: skip
    return facts, step, day


def _known_before(facts: AccountFacts, t: dt.datetime) -> AccountFacts:
    """The facts as known at ``t``: the contacts and conversations before it."""
    history = tuple(h for h in facts.history if h.at < t)
    talks = [h.at for h in history if h.channel == "call" and h.outcome == "conversation"]
    last = facts.last_conversation
    if last is not None and last >= t:
        last = max(talks) if talks else None
    return replace(facts, history=history, last_conversation=last)


def instants_within(start: dt.datetime, end: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    span = int((end - start).total_seconds())
    return st.integers(0, max(span - 1, 0)).map(lambda s: start + dt.timedelta(seconds=s))


@st.composite
def instants_on(draw: st.DrawFn, day: dt.date, zone: str) -> dt.datetime:
    """An instant of local ``day`` in ``zone``, often at an hour's edge (07:59:59, 21:00:00...)."""
    edge = st.sampled_from([0, 59])
    hh = draw(st.one_of(st.sampled_from([7, 8, 9, 12, 16, 17, 18, 20, 21, 22]), st.integers(0, 23)))
    mm = draw(st.one_of(edge, st.integers(0, 59)))
    ss = draw(st.one_of(edge, st.integers(0, 59)))
    local = dt.datetime.combine(day, dt.time(hh, mm, ss), ZoneInfo(zone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


# --- the properties -----------------------------------------------------------------------------


@settings(max_examples=2500, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_every_instant_of_a_planned_window_is_allowed_by_the_oracle(
    scenario: tuple[AccountFacts, Step, dt.date], data: st.DataObject
) -> None:
    facts, step, day = scenario
    v = evaluate(step, facts, day=day)
    if v.verdict != "send":
        return
    assert v.window_start is not None and v.window_end is not None
    assert v.window_start < v.window_end
    inside = data.draw(instants_within(v.window_start, v.window_end))
    home = zones_of(facts, step)[0]
    for t in (v.window_start, v.window_end - dt.timedelta(seconds=1), inside):
        # The caps were judged for the consumer's local day: the contact must fall on it.
        assert local_day(t, home) == day, (t, v)
        assert oracle_violations(facts, step, t) == [], (t, v)


def _at_an_instant(
    scenario: tuple[AccountFacts, Step, dt.date], data: st.DataObject
) -> tuple[AccountFacts, Step, dt.date, dt.datetime]:
    """An instant of the scenario's local day, and the facts as known just before it."""
    facts, step, day = scenario
    home = zones_of(facts, step)[0]
    t = data.draw(instants_on(day, home))
    assume(local_day(t, home) == day)  # a local time skipped by DST
    return _known_before(facts, t), step, day, t


@settings(max_examples=2500, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_a_send_at_an_instant_is_allowed_by_the_oracle(
    scenario: tuple[AccountFacts, Step, dt.date], data: st.DataObject
) -> None:
    facts, step, day, t = _at_an_instant(scenario, data)
    v = evaluate(step, facts, day=day, at=t)
    if v.verdict == "send":
        assert oracle_violations(facts, step, t) == [], (t, v)
        assert v.window_start is not None and v.window_end is not None
        assert v.window_start <= t < v.window_end


@settings(max_examples=2500, deadline=None)
@given(scenario=scenarios(plain=True), data=st.data())
def test_when_only_the_oracles_rules_bear_on_a_step_an_allowed_instant_is_sent(
    scenario: tuple[AccountFacts, Step, dt.date], data: st.DataObject
) -> None:
    facts, step, day, t = _at_an_instant(scenario, data)
    if oracle_violations(facts, step, t):
        return
    v = evaluate(step, facts, day=day, at=t)
    assert v.verdict != "block", v
    assert v.verdict == "send", (t, v.reasons, v.evidence())


@st.composite
def cap_edges(draw: st.DrawFn) -> tuple[AccountFacts, Step, dt.date, dt.datetime]:
    """A step under one cap, with a history of about as many contacts as the cap allows, at
    an instant inside the hours: nothing else bears on it."""
    kind = draw(st.sampled_from(["reg_f", "nyc", "ma", "cn"]))
    day = draw(st.sampled_from(DAYS))
    if kind == "cn":
        country, region, city, home, limit, window = "CN", "BJ", None, "Asia/Shanghai", 6, 1
    else:
        country, home = "US", "America/New_York"
        region, city, limit, window = {"reg_f": ("NY", None, 7, 7), "nyc": ("NY", "Queens", 3, 7),
                                       "ma": ("MA", None, 2, 7)}[kind]  # fmt: skip
    channel = "call" if kind in ("reg_f", "cn") else draw(st.sampled_from(["call", "sms"]))
    history: list[PastContact] = []
    for _ in range(draw(st.integers(max(limit - 2, 0), limit + 1))):
        # Inside the period, on its first day, or one day before it.
        back = draw(st.sampled_from([0, 0, 0, 1]) if window == 1 else st.integers(0, window))
        minute = draw(st.integers(0, 24 * 60 - 1))
        local = dt.datetime.combine(day - dt.timedelta(days=back),
                                    dt.time(minute // 60, minute % 60), ZoneInfo(home))  # fmt: skip
        h_channel = "call" if kind in ("reg_f", "cn") else draw(st.sampled_from(["call", "sms"]))
        outcome = draw(st.sampled_from(OUTCOMES[h_channel]))
        if kind == "cn":
            outcome = draw(st.sampled_from(sorted(UNANSWERED) + ["conversation"]))
        if outcome == "conversation":
            outcome = "no_answer"  # a conversation would pause calls: not this cap's edge
        cp = draw(st.sampled_from([10, 10, 10, 11, None])) if kind == "cn" else 10
        history.append(PastContact(local.astimezone(dt.UTC).replace(tzinfo=None),
                                   h_channel, outcome, cp, "mobile"))  # fmt: skip
    history.sort(key=lambda h: h.at)
    facts = AccountFacts(1, country, region, 100.0, address_zones=(home,), history=tuple(history),
                         city=city)  # fmt: skip
    step = Step(channel, 10, (home,), phone_type="mobile", consent=True)
    hh, mm = draw(st.integers(9, 19)), draw(st.integers(0, 59))
    t = dt.datetime.combine(day, dt.time(hh, mm), ZoneInfo(home)).astimezone(dt.UTC)
    return facts, step, day, t.replace(tzinfo=None)


@settings(max_examples=1500, deadline=None)
@given(edge=cap_edges())
def test_at_a_caps_edge_the_engine_sends_exactly_when_the_oracle_allows(
    edge: tuple[AccountFacts, Step, dt.date, dt.datetime],
) -> None:
    facts, step, day, t = edge
    facts = _known_before(facts, t)
    allowed = not oracle_violations(facts, step, t)
    v = evaluate(step, facts, day=day, at=t)
    assert (v.verdict == "send") is allowed, (t, v.reasons, oracle_violations(facts, step, t))
    plan = evaluate(step, facts, day=day)
    if plan.verdict == "send":
        assert not oracle_violations(facts, step, plan.window_start)  # type: ignore[arg-type]
