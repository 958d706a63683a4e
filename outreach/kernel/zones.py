"""Candidate IANA time zones of a postal address or a phone number, and phone normalisation.

Pure and cached: the importer calls these once per row, so a million rows cost a few dict lookups.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers import timezone as _pn_timezone

_NY = "America/New_York"
_CHI = "America/Chicago"
_DEN = "America/Denver"
_LA = "America/Los_Angeles"
_BOISE = "America/Boise"
_INDY = "America/Indiana/Indianapolis"

# Primary zone of every US state, DC and the inhabited territories (ISO 3166-2:US codes).
US_STATE_ZONES: dict[str, str] = {
    "AL": _CHI, "AK": "America/Anchorage", "AZ": "America/Phoenix", "AR": _CHI, "CA": _LA,
    "CO": _DEN, "CT": _NY, "DE": _NY, "DC": _NY, "FL": _NY, "GA": _NY, "HI": "Pacific/Honolulu",
    "ID": _BOISE, "IL": _CHI, "IN": _INDY, "IA": _CHI, "KS": _CHI, "KY": _NY, "LA": _CHI,
    "ME": _NY, "MD": _NY, "MA": _NY, "MI": "America/Detroit", "MN": _CHI, "MS": _CHI, "MO": _CHI,
    "MT": _DEN, "NE": _CHI, "NV": _LA, "NH": _NY, "NJ": _NY, "NM": _DEN, "NY": _NY, "NC": _NY,
    "ND": _CHI, "OH": _NY, "OK": _CHI, "OR": _LA, "PA": _NY, "RI": _NY, "SC": _NY, "SD": _CHI,
    "TN": _CHI, "TX": _CHI, "UT": _DEN, "VT": _NY, "VA": _NY, "WA": _LA, "WV": _NY, "WI": _CHI,
    "WY": _DEN, "PR": "America/Puerto_Rico", "GU": "Pacific/Guam", "VI": "America/St_Thomas",
    "AS": "Pacific/Pago_Pago", "MP": "Pacific/Saipan",
}  # fmt: skip

# States a zone line crosses: every candidate, primary first. Without a ZIP that pins the side
# of the line, the planner must respect the calling hours of all of them.
US_SPLIT_STATES: dict[str, tuple[str, ...]] = {
    "AK": ("America/Anchorage", "America/Adak"),
    "FL": (_NY, _CHI),
    "ID": (_BOISE, _LA),
    "IN": (_INDY, _CHI),
    "KS": (_CHI, _DEN),
    "KY": (_NY, _CHI),
    "MI": ("America/Detroit", "America/Menominee"),
    "ND": (_CHI, _DEN),
    "NE": (_CHI, _DEN),
    "OR": (_LA, _BOISE),
    "SD": (_CHI, _DEN),
    "TN": (_CHI, _NY),
    "TX": (_CHI, _DEN),
}


def _spans(text: str) -> list[str]:
    """Expand "320-323 326" into ZIP prefixes, keeping the width of the bounds."""
    out: list[str] = []
    for part in text.split():
        low, _, high = part.partition("-")
        width = len(low)
        out.extend(f"{n:0{width}d}" for n in range(int(low), int(high or low) + 1))
    return out


# ZIP prefixes (3 digits, or 5 for exceptions) that lie wholly on one side of a state's zone
# line. Prefixes not listed here (e.g. Indiana 465, Tennessee 373) straddle it: both candidates.
_ZIP_PIN_SPEC: dict[str, dict[str, str]] = {
    "AK": {"America/Anchorage": "995-999", "America/Adak": "99546 99547"},
    "FL": {_CHI: "324 325", _NY: "320-323 326-349 32456 32457"},
    "ID": {_BOISE: "832-834 836 837", _LA: "835 838"},
    "IN": {_CHI: "463 464 476 477", _INDY: "460-462 466-474 478"},
    "KS": {_CHI: "660-676 679"},
    "KY": {_CHI: "420-424", _NY: "400-418 425"},
    "MI": {"America/Detroit": "480-497"},
    "ND": {_CHI: "580-584 587"},
    "NE": {_CHI: "680-689", _DEN: "693"},
    "OR": {_LA: "970-978", _BOISE: "979"},
    "SD": {_CHI: "570-574", _DEN: "577"},
    "TN": {_NY: "374 376-379", _CHI: "370-372 375 380-385"},
    "TX": {_CHI: "733 750-797", _DEN: "799 885"},
}
_ZIP_PINS: dict[str, dict[str, str]] = {
    state: {prefix: zone for zone, spec in pins.items() for prefix in _spans(spec)}
    for state, pins in _ZIP_PIN_SPEC.items()
}

# Candidates of a US address with no state: one zone per clock of the 50 states and DC, so
# only hours allowed in every state are used. A zone the states use but left out here shows the
# same local time as one kept, every hour (Detroit and Indianapolis as New York, Menominee as
# Chicago, Boise as Denver; a test checks it). The territories are left out: an account whose
# state is missing is most likely in the states, and Guam and Saipan (UTC+10) would leave no
# hour allowed anywhere; an account in a territory carries its code (PR, GU, VI, AS, MP).
US_NO_STATE_ZONES: tuple[str, ...] = (
    _NY, _CHI, _DEN, "America/Phoenix", _LA, "America/Anchorage", "America/Adak",
    "Pacific/Honolulu",
)  # fmt: skip

# ISO 3166-2:CN codes of the 31 mainland provinces, autonomous regions and municipalities.
CN_PROVINCES: frozenset[str] = frozenset(
    "AH BJ CQ FJ GD GS GX GZ HA HB HE HI HL HN JL JS JX LN NM NX QH SC SD SH SN SX TJ XJ XZ YN ZJ".split()
)

# Countries in one zone (China included: Xinjiang's informal UTC+6 is not its legal time).
_SINGLE_ZONE_COUNTRIES: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "GB": "Europe/London",
    "HK": "Asia/Hong_Kong",
    "MO": "Asia/Macau",
    "TW": "Asia/Taipei",
    "PR": "America/Puerto_Rico",
    "GU": "Pacific/Guam",
    "VI": "America/St_Thomas",
    "AS": "Pacific/Pago_Pago",
    "MP": "Pacific/Saipan",
}


def _region_code(country: str, region: str | None) -> str:
    code = (region or "").strip().upper()
    prefix = f"{country}-"
    return code[len(prefix) :] if code.startswith(prefix) else code


@lru_cache(maxsize=4096)
def address_zones(country: str, region: str | None, postal_code: str | None) -> tuple[str, ...]:
    """IANA zones a postal address may be in: one for most, two across a state's zone line,
    every clock of the states (:data:`US_NO_STATE_ZONES`) for a US address with no state."""
    country = (country or "").strip().upper()
    if country == "US":
        state = _region_code(country, region)
        if not state:
            return US_NO_STATE_ZONES
        if state in US_SPLIT_STATES:
            return _pinned_by_zip(state, postal_code) or US_SPLIT_STATES[state]
        zone = US_STATE_ZONES.get(state)
        return (zone,) if zone else ()
    zone = _SINGLE_ZONE_COUNTRIES.get(country)
    return (zone,) if zone else ()


def _pinned_by_zip(state: str, postal_code: str | None) -> tuple[str, ...]:
    digits = (postal_code or "").strip()[:5]
    if len(digits) != 5 or not digits.isdigit():
        return ()
    pins = _ZIP_PINS[state]
    zone = pins.get(digits) or pins.get(digits[:3])
    return (zone,) if zone else ()


# --- phones -------------------------------------------------------------------------------------

_UNKNOWN_ZONE = "Etc/Unknown"
_phone_zone_cache: dict[str, tuple[str, ...]] = {}
_prefix_depth: dict[str, int] = {}


def _depths() -> dict[str, int]:
    """For each digit prefix, the length of the longest zone-data key that extends it."""
    if not _prefix_depth:
        from phonenumbers.tzdata import TIMEZONE_DATA

        for key in TIMEZONE_DATA:
            for cut in range(1, len(key)):
                prefix = key[:cut]
                if _prefix_depth.get(prefix, 0) < len(key):
                    _prefix_depth[prefix] = len(key)
    return _prefix_depth


def phone_zones(e164: str) -> tuple[str, ...]:
    """Candidate zones of an E.164 number from its country and area code; () when unknown.

    A number that phonenumbers can only place in its whole calling code (toll-free 8XX, 5XX
    personal numbers, 900, VoIP or mobile ranges with no region) gives () when that code spans
    several zones: +1 alone lists every zone of North America, Guam and American Samoa
    included, where no hour is allowed everywhere, so such a number adds no zone and the
    address decides. Where the code has one zone (+86, +49) that zone is kept: it still tells.

    Cached per prefix: the prefix is cut where phonenumbers' zone data stops distinguishing
    numbers (``+1212`` for Manhattan, ``+1270202`` where an area code straddles a zone line).
    """
    digits = e164[1:] if e164.startswith("+") else ""
    if not digits.isdigit():
        return ()
    depths = _depths()
    cut = 1
    while cut < len(digits) and depths.get(digits[:cut], 0) > cut:
        cut += 1
    key = digits[:cut]
    cached = _phone_zone_cache.get(key)
    if cached is not None:
        return cached
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return ()
    if not phonenumbers.is_valid_number(number):
        return ()  # not cached: an invalid number must not decide for valid ones under its prefix
    zones = tuple(z for z in _pn_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    if len(zones) > 1 and zones == _calling_code_zones(number.country_code):
        zones = ()  # the calling code's whole list: the number tells nothing
    _phone_zone_cache[key] = zones
    return zones


def _calling_code_zones(country_code: int | None) -> tuple[str, ...]:
    """Every zone phonenumbers lists for a calling code (its answer for a number it cannot
    place more precisely)."""
    from phonenumbers.tzdata import TIMEZONE_DATA

    return tuple(TIMEZONE_DATA.get(str(country_code), ()))


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE_ERRORS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
}


@lru_cache(maxsize=65536)
def _normalize(raw: str, default_region: str | None) -> tuple[str, str]:
    # Returns (e164, "") or ("", reason): caching failures too, and raising outside the cache.
    text = raw.strip()
    if not text:
        return "", "empty phone number"
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        return "", _PARSE_ERRORS.get(exc.error_type, "not a phone number")
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        region = phonenumbers.region_code_for_number(number) or default_region or "?"
        reason = _POSSIBLE_ERRORS.get(possible, f"not a valid number in {region}")
        return "", reason
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), ""


def normalize_phone(raw: str, default_region: str | None) -> str:
    """The E.164 form of ``raw`` (national numbers read in ``default_region``, an ISO2 code).

    Raises ValueError with a short reason (never the number itself) when it is not valid.
    """
    e164, reason = _normalize(raw, default_region.upper() if default_region else None)
    if reason:
        raise ValueError(reason)
    return e164
