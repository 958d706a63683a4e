"""Candidate time zones of addresses and phone numbers, and phone normalisation for the import."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from sqlalchemy import Engine, text

from outreach.kernel import zones
from outreach.kernel.zones import address_zones, normalize_phone, phone_zones
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.portfolio.importer import import_file
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import make_engine, migrate
from policies.windows import common_window

JULY = dt.datetime(2026, 7, 1, 12)


def test_arizona_and_hawaii_are_zones_without_daylight_saving() -> None:
    assert address_zones("US", "AZ", "85004") == ("America/Phoenix",)
    assert address_zones("US", "HI", "96813") == ("Pacific/Honolulu",)
    for zone in ("America/Phoenix", "Pacific/Honolulu"):
        assert ZoneInfo(zone).dst(JULY) == dt.timedelta(0)
    assert ZoneInfo(address_zones("US", "CO", "80202")[0]).dst(JULY) == dt.timedelta(hours=1)


def test_a_state_split_by_a_zone_line_gives_both_candidates_unless_the_zip_pins_it() -> None:
    assert address_zones("US", "FL", None) == ("America/New_York", "America/Chicago")
    assert address_zones("US", "FL", "32501") == ("America/Chicago",)  # Pensacola
    assert address_zones("US", "FL", "33101") == ("America/New_York",)  # Miami
    assert address_zones("US", "FL", "32456") == ("America/New_York",)  # Port St. Joe, in 324
    assert address_zones("US", "IN", "46501") == ("America/Indiana/Indianapolis", "America/Chicago")
    assert address_zones("US", "TX", "79901-1234") == ("America/Denver",)  # El Paso
    assert address_zones("US", "TX", "not a zip") == ("America/Chicago", "America/Denver")
    for state in ("KY", "TN", "MI", "ND", "SD", "NE", "KS", "OR", "ID"):
        assert len(address_zones("US", state, None)) == 2, state


def test_every_state_and_dc_has_a_real_zone() -> None:
    states = set(zones.US_STATE_ZONES) - {"PR", "GU", "VI", "AS", "MP"}
    assert len(states) == 51
    for state in states:
        candidates = address_zones("US", state, None)
        assert candidates and all(ZoneInfo(z) for z in candidates), state


def test_china_is_one_zone_and_other_countries_are_known_or_empty() -> None:
    assert len(zones.CN_PROVINCES) == 31
    for province in zones.CN_PROVINCES:
        assert address_zones("CN", province, None) == ("Asia/Shanghai",)
    assert address_zones("CN", "CN-XJ", "830000") == ("Asia/Shanghai",)
    assert address_zones("gb", None, "SW1A 1AA") == ("Europe/London",)
    assert address_zones("FR", None, "75001") == ()
    assert address_zones("US", "ZZ", None) == ()


def test_phone_zones_come_from_the_area_code() -> None:
    assert phone_zones("+12125550123") == ("America/New_York",)  # New York
    assert phone_zones("+13105550123") == ("America/Los_Angeles",)  # Los Angeles
    assert phone_zones("+8613812345678") == ("Asia/Shanghai",)
    assert phone_zones("+99912345") == ()  # no such country: "Etc/Unknown" is dropped
    assert phone_zones("2125550123") == ()


def test_phone_zones_are_cached_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert phone_zones("+16175550100") == ("America/New_York",)  # Boston: fills the cache

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers was asked again")

    monkeypatch.setattr(phonenumbers, "parse", no_parsing)
    assert phone_zones("+16175550199") == ("America/New_York",)  # same prefix: a cache hit


def test_normalize_phone_reads_national_numbers_in_the_default_region() -> None:
    assert normalize_phone("(212) 555-0123", "US") == "+12125550123"
    assert normalize_phone("138 1234 5678", "CN") == "+8613812345678"
    assert normalize_phone("+44 20 7946 0958", "US") == "+442079460958"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "empty"),
        ("call me", "not a phone number"),
        ("12", "too short"),
        ("+1 212 555 01234", "too long"),
        ("+1 111 555 0123", "not a valid number"),
    ],
)
def test_normalize_phone_explains_an_invalid_number(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        normalize_phone(raw, "US")
    if raw.strip():
        assert raw not in str(info.value)  # the reason never repeats the number


# --- issue 13 item 3: numbers without a region, and US addresses without a state -------------


@pytest.mark.parametrize(
    "number",
    [
        "+18005551234",  # toll-free 800
        "+18885551234",  # toll-free 888
        "+15002345678",  # 5XX personal communications service
        "+15332345678",
        "+19002345678",  # premium rate
    ],
)
def test_a_non_geographic_number_adds_no_zone(number: str) -> None:
    # phonenumbers answers every zone of +1 for these (Guam and American Samoa included), which
    # would leave no instant allowed everywhere: the number says nothing, the address decides.
    assert phone_zones(number) == ()


def test_numbers_that_do_tell_keep_their_zones() -> None:
    assert phone_zones("+12125550123") == ("America/New_York",)
    assert phone_zones("+8613812345678") == ("Asia/Shanghai",)  # a one-zone country still tells
    assert phone_zones("+4915112345678") == ("Europe/Berlin",)
    assert phone_zones("+16712345678") == ("Pacific/Guam",)  # Guam's own area code


def test_a_us_address_without_a_state_has_every_clock_of_the_50_states_and_dc() -> None:
    candidates = address_zones("US", None, "10001")
    assert candidates == address_zones("US", "", None) == zones.US_NO_STATE_ZONES
    # No territory: Guam and Saipan (UTC+10) would leave no hour allowed in every zone.
    assert not set(candidates) & {"Pacific/Guam", "Pacific/Saipan", "Pacific/Pago_Pago",
                                  "America/Puerto_Rico", "America/St_Thomas"}  # fmt: skip
    assert address_zones("US", "ZZ", None) == ()  # a code we do not know is still not a state


def test_every_zone_of_a_state_keeps_the_clock_of_a_no_state_candidate() -> None:
    # The no-state list keeps one zone per clock: a state's zone left out (Detroit, Boise...)
    # shows the same local time as one kept, every hour of 2025-2028.
    kept = zones.US_NO_STATE_ZONES
    states = set(zones.US_STATE_ZONES) - {"PR", "GU", "VI", "AS", "MP"}
    every = {
        z for s in states for z in (zones.US_STATE_ZONES[s], *zones.US_SPLIT_STATES.get(s, ()))
    }
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    instants = [start + dt.timedelta(hours=h) for h in range(4 * 366 * 24)]
    kept_clocks = {z: [i.astimezone(ZoneInfo(z)).utcoffset() for i in instants] for z in kept}
    for zone in every:
        clock = [i.astimezone(ZoneInfo(zone)).utcoffset() for i in instants]
        assert clock in kept_clocks.values(), zone
    assert set(kept) <= every


DAY = dt.date(2026, 11, 23)  # Eastern Standard Time: 08:00-21:00 in New York is 13:00-02:00 UTC


def test_the_no_state_candidates_leave_a_window_and_pin_it() -> None:
    contiguous = ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
                  "America/Los_Angeles")  # fmt: skip
    # 08:00 in Los Angeles to 21:00 in New York: 11:00-21:00 Eastern.
    assert common_window(DAY, contiguous, 8, 21) == (
        dt.datetime(2026, 11, 23, 16),
        dt.datetime(2026, 11, 24, 2),
    )
    # Alaska and Hawaii too: 08:00 in Honolulu (UTC-10) starts it, 13:00-21:00 Eastern in
    # winter; 14:00-21:00 Eastern in summer, when New York is an hour nearer UTC and Honolulu not.
    assert common_window(DAY, zones.US_NO_STATE_ZONES, 8, 21) == (
        dt.datetime(2026, 11, 23, 18),
        dt.datetime(2026, 11, 24, 2),
    )
    assert common_window(dt.date(2026, 7, 1), zones.US_NO_STATE_ZONES, 8, 21) == (
        dt.datetime(2026, 7, 1, 18),
        dt.datetime(2026, 7, 2, 1),
    )


def _account(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record": "account", "account_ref": "A1", "person_ref": "P1", "full_name": "Pat Example",
        "language": "en", "product": "credit_card", "currency": "USD", "balance": "1200.00",
        "amount_past_due": "150.00", "due_date": str(DAY - dt.timedelta(days=20)),
        "balance_as_of": str(DAY - dt.timedelta(days=1)), "country": "US", "region": "NY",
        "city": "New York", "address_line1": "1 Main St", "postal_code": "10001",
        "validation_notice_sent_on": str(DAY - dt.timedelta(days=30)),
        "phones": [{"number": "+18005551234", "type": "landline", "call_consent": True}],
    }  # fmt: skip
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def _import_and_plan(tmp_path: Path, record: dict[str, Any]) -> tuple[Engine, dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    engine = make_engine(url)
    path = tmp_path / "portfolio.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = import_file(path, engine=engine)
    assert report.rejected == 0, report.rejects_path and report.rejects_path.read_text()
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY,
                       100):  # fmt: skip
        pass
    with engine.connect() as conn:
        [call] = (
            conn.execute(
                text(
                    "SELECT state, verdict, reasons, window_start, window_end FROM contact "
                    "WHERE channel = 'call'"
                )
            )
            .mappings()
            .all()
        )
    window = [dt.datetime.fromisoformat(str(call[k])) if call[k] else None
              for k in ("window_start", "window_end")]  # fmt: skip
    return engine, dict(call) | dict(zip(("window_start", "window_end"), window, strict=True))


def test_a_toll_free_number_at_a_new_york_address_is_called_in_new_york_hours(
    tmp_path: Path,
) -> None:
    engine, call = _import_and_plan(tmp_path, _account())
    assert call["state"] == "planned" and call["verdict"] == "send", call
    assert (call["window_start"], call["window_end"]) == (
        dt.datetime(2026, 11, 23, 13),
        dt.datetime(2026, 11, 24, 2),
    )
    with engine.connect() as conn:  # (42 zones once: over the column's 200 characters)
        assert (
            conn.execute(text("SELECT time_zones FROM contact_point WHERE kind = 'phone'")).scalar()
            is None
        )


def test_a_us_account_without_a_state_imports_and_is_called_when_every_state_allows(
    tmp_path: Path,
) -> None:
    engine, call = _import_and_plan(
        tmp_path,
        _account(
            region=None,
            phones=[{"number": "+12125550123", "type": "landline", "call_consent": True}],
        ),
    )
    with engine.connect() as conn:
        person = conn.execute(text("SELECT region, time_zones FROM person")).one()
        jurisdiction = conn.execute(text("SELECT jurisdiction_region FROM account")).scalar()
    assert person.region is None and jurisdiction is None
    assert tuple(person.time_zones.split()) == zones.US_NO_STATE_ZONES
    assert call["state"] == "planned" and call["verdict"] == "send", call
    # A New York number, but the consumer may live in Honolulu: 13:00-21:00 Eastern.
    assert (call["window_start"], call["window_end"]) == (
        dt.datetime(2026, 11, 23, 18),
        dt.datetime(2026, 11, 24, 2),
    )
