"""Candidate time zones of addresses and phone numbers, and phone normalisation for the import."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from outreach import zones
from outreach.zones import address_zones, normalize_phone, phone_zones

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
