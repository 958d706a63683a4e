"""Writes a synthetic, realistic portfolio in the import format (docs/import-format.md).

Deterministic for a seed and an as-of date; fictional people, 555-01XX numbers, reserved domains.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from outreach.kernel import zones

# --- reference data -----------------------------------------------------------------------------

# State, population (thousands, 2020 census), then cities as "name:ZIP prefix:area codes".
# Split-zone states list a city on each side of the line (and one on a prefix that straddles it).
_US = """
CA 39538 Los Angeles:900:213,310,323|San Diego:921:619,858|San Francisco:941:415|Sacramento:958:916|Fresno:937:559
TX 29146 Houston:770:713,281,832|Dallas:752:214,972|San Antonio:782:210|Austin:787:512|El Paso:799:915|Alpine:798:432
FL 21538 Miami:331:305,786|Tampa:336:813|Orlando:328:407|Jacksonville:322:904|Pensacola:325:850|Panama City:324:850
NY 20201 New York:100:212,646,917|Brooklyn:112:718,347|Buffalo:142:716|Rochester:146:585|Albany:122:518
PA 13003 Philadelphia:191:215,267|Pittsburgh:152:412|Harrisburg:171:717
IL 12812 Chicago:606:312,773|Springfield:627:217|Rockford:611:815
OH 11799 Columbus:432:614|Cleveland:441:216|Cincinnati:452:513
GA 10712 Atlanta:303:404,678|Savannah:314:912
NC 10439 Charlotte:282:704|Raleigh:276:919
MI 10077 Detroit:482:313|Grand Rapids:495:616|Lansing:489:517|Iron Mountain:498:906
NJ 9289 Newark:071:973|Trenton:086:609|Jersey City:073:201
VA 8631 Virginia Beach:234:757|Richmond:232:804|Arlington:222:703
WA 7705 Seattle:981:206|Spokane:992:509|Tacoma:984:253
AZ 7151 Phoenix:850:602,480|Tucson:857:520
MA 7029 Boston:021:617|Worcester:016:508
TN 6910 Nashville:372:615|Memphis:381:901|Knoxville:379:865|Chattanooga:374:423
IN 6785 Indianapolis:462:317|Fort Wayne:468:260|Gary:464:219|Evansville:477:812|Knox:465:574
MD 6177 Baltimore:212:410
MO 6154 St. Louis:631:314|Kansas City:641:816
WI 5893 Milwaukee:532:414|Madison:537:608
CO 5773 Denver:802:303,720|Colorado Springs:809:719
MN 5706 Minneapolis:554:612|Saint Paul:551:651
SC 5118 Columbia:292:803|Charleston:294:843
AL 5024 Birmingham:352:205|Montgomery:361:334|Mobile:366:251
LA 4657 New Orleans:701:504|Baton Rouge:708:225
KY 4505 Louisville:402:502|Lexington:405:859|Bowling Green:421:270|Paducah:420:270
OR 4237 Portland:972:503,971|Eugene:974:541|Ontario:979:541
OK 3959 Oklahoma City:731:405|Tulsa:741:918
CT 3605 Hartford:061:860|New Haven:065:203
UT 3271 Salt Lake City:841:801
IA 3190 Des Moines:503:515
NV 3104 Las Vegas:891:702|Reno:895:775
AR 3011 Little Rock:722:501
MS 2961 Jackson:392:601
KS 2937 Wichita:672:316|Kansas City:661:913|Goodland:677:785
NM 2117 Albuquerque:871:505
NE 1961 Omaha:681:402|Lincoln:685:402|Scottsbluff:693:308
ID 1839 Boise:837:208|Coeur d'Alene:838:208
WV 1793 Charleston:253:304
HI 1455 Honolulu:968:808
NH 1377 Manchester:031:603
ME 1362 Portland:041:207
RI 1097 Providence:029:401
MT 1084 Billings:591:406
DE 989 Wilmington:198:302
SD 886 Sioux Falls:571:605|Rapid City:577:605
ND 779 Fargo:581:701|Dickinson:586:701
AK 733 Anchorage:995:907
DC 689 Washington:200:202
VT 643 Burlington:054:802
WY 576 Cheyenne:820:307
"""

# ISO 3166-2:CN code, population (millions), capital, postal prefix, landline area code.
_CN = """
GD 126.0 广州市 510 20|SD 101.5 济南市 250 531|HA 99.4 郑州市 450 371|JS 84.7 南京市 210 25
SC 83.7 成都市 610 28|HE 74.6 石家庄市 050 311|HN 66.4 长沙市 410 731|ZJ 64.6 杭州市 310 571
AH 61.0 合肥市 230 551|HB 57.8 武汉市 430 27|GX 50.1 南宁市 530 771|YN 47.2 昆明市 650 871
JX 45.2 南昌市 330 791|LN 42.6 沈阳市 110 24|FJ 41.5 福州市 350 591|SN 39.5 西安市 710 29
GZ 38.6 贵阳市 550 851|SX 34.9 太原市 030 351|CQ 32.1 重庆市 400 23|HL 31.9 哈尔滨市 150 451
XJ 25.9 乌鲁木齐市 830 991|GS 25.0 兰州市 730 931|SH 24.9 上海市 200 21|JL 24.1 长春市 130 431
NM 24.0 呼和浩特市 010 471|BJ 21.9 北京市 100 10|TJ 13.9 天津市 300 22|HI 10.1 海口市 570 898
NX 7.2 银川市 750 951|QH 5.9 西宁市 810 971|XZ 3.6 拉萨市 850 891
"""
# Area codes whose local numbers have 7 digits (the rest have 8).
_CN_SEVEN_DIGIT_AREAS = frozenset({"351", "471", "771", "891", "931", "951", "971", "991"})
_CN_MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 176 177 "
    "180 181 182 183 184 185 186 187 188 189 198 199"
).split()

_US_FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily "
    "Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa Maria Jose Luis Ana "
    "Carlos Sofia Wei Mei Minh Linh Aaliyah Jamal Priya Arjun"
).split()
_US_LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Chen Patel Kim"
).split()
_CN_SURNAMES = (
    "王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 黄:huang 赵:zhao 吴:wu 周:zhou 徐:xu 孙:sun "
    "马:ma 朱:zhu 胡:hu 郭:guo 何:he 高:gao 林:lin 罗:luo 郑:zheng 梁:liang 谢:xie 宋:song "
    "唐:tang 许:xu 韩:han 冯:feng 邓:deng 曹:cao"
).split()
_CN_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯鹏晨欣怡")
_US_STREETS = (
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson "
    "Church River Highland Franklin Adams Chestnut Spring Willow Meadow Forest Ridge"
).split()
_US_SUFFIXES = "St Ave Rd Blvd Ln Dr Ct Way Pl".split()
_CN_DISTRICTS = "城关区 新华区 中山区 人民区 高新区 开发区 东城区 西城区 南湖区 北塘区".split()
_CN_STREETS = "人民路 解放路 建设路 中山路 和平路 新华路 文化路 胜利路 长江路 黄河路".split()
_DOMAINS = ("example.com", "example.net", "example.org")
# Years until a debt is time-barred, by state (written contracts; most others are 6).
_LIMITATION_YEARS = {"NY": 3, "NC": 3, "CA": 4, "TX": 4, "PA": 4, "FL": 5, "IL": 5, "GA": 6}

# What consumers say are inconvenient times, as they tend to put it (the importer normalizes).
_INCONVENIENT_TIMES = (
    "mon-fri 09:00-17:00", "Mon-Fri 08:00-18:00", "mon-fri 09:00-17:00; sun", "sun",
    "daily 12:00-13:00", "sat,sun", "22:00-24:00; 00:00-09:00", "mon-fri 07:00-15:30",
)  # fmt: skip

CSV_COLUMNS = [
    "record", "account_ref", "person_ref", "full_name", "language", "product", "currency",
    "balance", "amount_past_due", "due_date", "balance_as_of", "country", "region", "city",
    "address_line1", "postal_code", "segment", "charge_off_date", "limitation_date",
    "inconvenient_times", "initial_communication_on", "validation_notice_sent_on",
    "scra_checked_on", "scra_active_duty", "itemization_date", "itemization_kind",
    "itemization_amount", "interest_since_itemization", "fees_since_itemization",
    *(f"phone{i}{s}" for i in (1, 2, 3)
      for s in ("", "_type", "_sms_consent", "_call_consent", "_workplace", "_no_calls_at_work")),
    *(f"email{i}{s}" for i in (1, 2) for s in ("", "_workplace", "_consent", "_used_by_consumer")),
    "payment_ref", "paid_on", "amount", "kind", "started_on", "ended_on",
    "event_ref", "occurred_at", "channel", "destination", "direction", "outcome", "recorded_at",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _City:
    state: str
    name: str
    zip3: str
    area_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Province:
    code: str
    capital: str
    postal3: str
    area_code: str


def _load_us() -> tuple[list[str], list[float], dict[str, list[_City]]]:
    states, weights, cities = [], [], {}
    for line in _US.strip().splitlines():
        state, population, rest = line.split(" ", 2)
        states.append(state)
        weights.append(float(population))
        cities[state] = [
            _City(state, name, zip3, tuple(codes.split(",")))
            for name, zip3, codes in (c.split(":") for c in rest.split("|"))
        ]
    return states, _cumulative(weights), cities


def _load_cn() -> tuple[list[_Province], list[float]]:
    provinces, weights = [], []
    for entry in _CN.replace("\n", "|").strip("|").split("|"):
        code, population, capital, postal3, area = entry.split()
        provinces.append(_Province(code, capital, postal3, area))
        weights.append(float(population))
    return provinces, _cumulative(weights)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


_US_STATES, _US_CUM, _US_CITIES = _load_us()
_CN_PROVINCES, _CN_CUM = _load_cn()


@cache
def _area_code_zone(area_code: str) -> tuple[str, ...]:
    return zones.phone_zones(f"+1{area_code}5550100")


@cache
def _other_zone_area_codes(address_zones: tuple[str, ...]) -> tuple[str, ...]:
    """Area codes whose zone is none of the address's: where someone who moved got their mobile."""
    codes = sorted({c for cs in _US_CITIES.values() for city in cs for c in city.area_codes})
    return tuple(c for c in codes if not set(_area_code_zone(c)) & set(address_zones))


@cache
def _offset_text(zone: str, day: dt.date) -> str:
    offset = ZoneInfo(zone).utcoffset(dt.datetime(day.year, day.month, day.day, 12))
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- the portfolio ------------------------------------------------------------------------------


@dataclass
class GenerateReport:
    path: Path
    accounts: int = 0
    persons: int = 0
    payments: int = 0
    holds: int = 0
    opt_outs: int = 0
    contact_events: int = 0
    lines: int = 0
    seconds: float = 0.0
    by_country: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.accounts} accounts of {self.persons} persons, "
            f"{self.payments} payments, {self.holds} holds, {self.opt_outs} opt-outs, "
            f"{self.contact_events} contact events ({self.lines} records) in {self.seconds:.1f}s"
        )


@dataclass(slots=True)
class _Phone:
    number: str  # as written to the file (E.164 or national format)
    e164: str
    type: str
    sms_consent: bool
    call_consent: bool
    workplace: bool
    no_calls_at_work: bool = False


@dataclass(slots=True)
class _Email:
    address: str
    workplace: bool
    consent: bool
    used_by_consumer: bool


@dataclass(slots=True)
class _Person:
    ref: str
    country: str
    record: dict[str, Any]  # the person's part of an account record
    zone: str  # where their local calling hours are reckoned for the history
    phones: list[_Phone]
    emails: list[_Email]
    region: str


class _Writer:
    """One record per line, as JSON lines or as CSV rows over the union of all columns."""

    def __init__(self, handle: IO[str], as_csv: bool) -> None:
        self._handle = handle
        self._csv = csv.writer(handle, lineterminator="\n") if as_csv else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.lines += 1
        if self._csv is None:
            self._handle.write(self._dumps(record))
            self._handle.write("\n")
            return
        flat = dict(record)
        for i, p in enumerate(flat.pop("phones", ()), start=1):
            flat[f"phone{i}"] = p["number"]
            flat[f"phone{i}_type"] = p["type"]
            for key in ("sms_consent", "call_consent", "workplace", "no_calls_at_work"):
                if key in p:
                    flat[f"phone{i}_{key}"] = _tf(p[key])
        for i, e in enumerate(flat.pop("emails", ()), start=1):
            flat[f"email{i}"] = e["address"]
            for key in ("workplace", "consent", "used_by_consumer"):
                if key in e:
                    flat[f"email{i}_{key}"] = _tf(e[key])
        if "scra_active_duty" in flat:
            flat["scra_active_duty"] = _tf(flat["scra_active_duty"])
        self._csv.writerow(["" if (v := flat.get(c)) is None else v for c in CSV_COLUMNS])


def _tf(value: bool) -> str:
    return "true" if value else "false"


def _phone_entry(p: _Phone) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "number": p.number,
        "type": p.type,
        "sms_consent": p.sms_consent,
        "call_consent": p.call_consent,
        "workplace": p.workplace,
    }
    if p.type == "work":
        entry["no_calls_at_work"] = p.no_calls_at_work
    return entry


def _email_entry(e: _Email) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": e.address, "workplace": e.workplace, "consent": e.consent}
    if e.workplace:
        entry["used_by_consumer"] = e.used_by_consumer
    return entry


class _Generator:
    def __init__(
        self, rng: random.Random, as_of: dt.date, writer: _Writer, report: GenerateReport
    ) -> None:
        self.rng = rng
        self.as_of = as_of
        self.writer = writer
        self.report = report

    # people

    def person(self, n: int) -> _Person:
        if self.rng.random() < 0.75:
            return self._us_person(n)
        return self._cn_person(n)

    def _us_person(self, n: int) -> _Person:
        r = self.rng
        state = _US_STATES[_pick(r, _US_CUM)]
        city = r.choice(_US_CITIES[state])
        postal = f"{city.zip3}{r.randrange(100):02d}"
        first, last = r.choice(_US_FIRST), r.choice(_US_LAST)
        address_zones = zones.address_zones("US", state, postal)
        home_code = r.choice(city.area_codes)
        mobile_code = home_code
        if r.random() < 0.10:  # moved: kept the mobile number from a place in another zone
            mobile_code = r.choice(_other_zone_area_codes(address_zones) or (home_code,))
        used: set[str] = set()

        def number(code: str) -> tuple[str, str]:
            for _ in range(20):
                line = f"01{r.randrange(100):02d}"
                e164 = f"+1{code}555{line}"
                if e164 not in used:
                    break
            used.add(e164)
            shown = e164 if r.random() < 0.8 else f"({code}) 555-{line}"
            return shown, e164

        phones = self._phones(lambda kind: number(mobile_code if kind == "mobile" else home_code))
        emails = self._emails(f"{first}.{last}".lower(), n)
        street = f"{r.randint(1, 9999)} {r.choice(_US_STREETS)} {r.choice(_US_SUFFIXES)}"
        record = {
            "person_ref": f"PE{n:09d}",
            "full_name": f"{first} {last}",
            "language": "en",
            "country": "US",
            "region": state,
            "city": city.name,
            "address_line1": street,
            "postal_code": postal,
        }
        self._inconvenient_times(record)
        zone = address_zones[0] if address_zones else "America/New_York"
        return _Person(f"PE{n:09d}", "US", record, zone, phones, emails, state)

    def _cn_person(self, n: int) -> _Person:
        r = self.rng
        province = _CN_PROVINCES[_pick(r, _CN_CUM)]
        surname, pinyin = r.choice(_CN_SURNAMES).split(":")
        given = "".join(r.choice(_CN_GIVEN) for _ in range(r.choice((1, 2, 2))))
        used: set[str] = set()

        def number(kind: str) -> tuple[str, str]:
            for _ in range(20):
                if kind == "mobile":
                    e164 = f"+86{r.choice(_CN_MOBILE_PREFIXES)}{r.randrange(10**8):08d}"
                else:
                    width = 7 if province.area_code in _CN_SEVEN_DIGIT_AREAS else 8
                    local = f"{r.randint(2, 7)}{r.randrange(10 ** (width - 1)):0{width - 1}d}"
                    e164 = f"+86{province.area_code}{local}"
                if e164 not in used:
                    break
            used.add(e164)
            # National format for some: the importer reads it with the account's country.
            shown = e164 if r.random() < 0.8 else e164[3:] if kind == "mobile" else "0" + e164[3:]
            return shown, e164

        phones = self._phones(number)
        emails = self._emails(pinyin, n)
        street = f"{r.choice(_CN_DISTRICTS)}{r.choice(_CN_STREETS)}{r.randint(1, 999)}号"
        record = {
            "person_ref": f"PE{n:09d}",
            "full_name": surname + given,
            "language": "zh-CN",
            "country": "CN",
            "region": province.code,
            "city": province.capital,
            "address_line1": street,
            "postal_code": f"{province.postal3}{r.randrange(1000):03d}",
        }
        self._inconvenient_times(record)
        return _Person(f"PE{n:09d}", "CN", record, "Asia/Shanghai", phones, emails, province.code)

    def _phones(self, number: Callable[[str], tuple[str, str]]) -> list[_Phone]:
        r = self.rng
        count = 1 if (x := r.random()) < 0.55 else 2 if x < 0.90 else 3
        phones: list[_Phone] = []
        for i in range(count):
            y = r.random()
            kind = "mobile" if y < 0.65 else "landline" if y < 0.95 else "work"
            if i == 0 and kind == "work":
                kind = "mobile"  # nobody is reachable only at work
            shown, e164 = number(kind)
            if kind == "mobile":
                phones.append(
                    _Phone(shown, e164, kind, r.random() < 0.75, r.random() < 0.85, False)
                )
            elif kind == "landline":
                phones.append(_Phone(shown, e164, kind, False, r.random() < 0.85, False))
            else:
                # Some employers have said they forbid collection calls at work.
                no_calls = r.random() < 0.3
                phones.append(_Phone(shown, e164, kind, False, r.random() < 0.4, True, no_calls))
        return phones

    def _emails(self, local: str, n: int) -> list[_Email]:
        r = self.rng
        if r.random() >= 0.8:
            return []
        emails = [_Email(f"{local}{n % 9973}@{r.choice(_DOMAINS)}", False, r.random() < 0.6, False)]
        if r.random() < 0.1:
            # A work address: usable only where the consumer wrote from it or agreed to it.
            used = r.random() < 0.3
            emails.append(_Email(f"{local}.work{n % 97}@example.org", True, r.random() < 0.6, used))
        return emails

    def _inconvenient_times(self, record: dict[str, Any]) -> None:
        r = self.rng
        if r.random() < 0.03:
            record["inconvenient_times"] = r.choice(_INCONVENIENT_TIMES)

    # accounts

    def account(self, person: _Person, n: int, product: str) -> None:
        r = self.rng
        as_of = self.as_of
        us = person.country == "US"
        dpd = 0 if r.random() < 0.03 else _days_past_due(r)
        due_date = as_of - dt.timedelta(days=dpd) if dpd else None
        median, sigma = (2500.0, 0.9) if product == "credit_card" else (9000.0, 0.7)
        scale = 1.0 if us else 7.0
        balance = min(250_000.0, max(50.0, r.lognormvariate(math.log(median * scale), sigma)))
        if dpd == 0:
            past_due = 0.0
        elif dpd > (180 if product == "credit_card" else 120):
            past_due = balance  # charged off: the whole balance is due
        else:
            cycles = dpd // 30 + 1
            if product == "credit_card":
                per_cycle = max(25.0 * scale, 0.03 * balance)
            else:
                per_cycle = balance / r.randint(12, 60)
            past_due = min(balance, cycles * per_cycle * r.uniform(0.9, 1.1))
        charge_off = None
        limitation = None
        if due_date is not None:
            if dpd > (180 if product == "credit_card" else 120):
                charge_off = due_date + dt.timedelta(days=180 if product == "credit_card" else 120)
            years = _LIMITATION_YEARS.get(person.region, 6) if us else 3
            limitation = due_date.replace(year=due_date.year + years, day=min(due_date.day, 28))
        ref = f"AC{n:09d}"
        x = r.random()
        notice = self._notice_dates(us, due_date, dpd)
        scra = self._scra_check(us)
        payments = self._draw_payments(n, past_due, balance)
        snapshot = as_of - dt.timedelta(days=1)
        # The itemization reference date (12 CFR 1006.34(b)(3)): the charge-off date, else the
        # last statement (the close of the month before the snapshot). What was owed then is
        # the snapshot balance plus the payments made since, up to the snapshot.
        item_date = charge_off or snapshot.replace(day=1) - dt.timedelta(days=1)
        paid_since = sum(
            round(amount, 2) for _, days_ago, amount in payments
            if item_date < as_of - dt.timedelta(days=days_ago) <= snapshot
        )  # fmt: skip
        record: dict[str, Any] = {
            "record": "account",
            "account_ref": ref,
            **person.record,
            "product": product,
            "currency": "USD" if us else "CNY",
            "balance": f"{balance:.2f}",
            "amount_past_due": f"{min(past_due, balance):.2f}",
            "due_date": due_date.isoformat() if due_date else None,
            "balance_as_of": snapshot.isoformat(),
            "segment": "prime" if x < 0.35 else "near_prime" if x < 0.70 else "subprime",
            "charge_off_date": charge_off.isoformat() if charge_off else None,
            "limitation_date": limitation.isoformat() if limitation else None,
            "itemization_date": item_date.isoformat(),
            "itemization_kind": "charge_off" if charge_off else "last_statement",
            "itemization_amount": f"{round(balance, 2) + paid_since:.2f}",
            **notice,
            **scra,
            "phones": [_phone_entry(p) for p in person.phones],
            "emails": [_email_entry(e) for e in person.emails],
        }
        self.writer.write(record)
        self.report.accounts += 1
        self.report.by_country[person.country] = self.report.by_country.get(person.country, 0) + 1
        for payment_ref, days_ago, amount in payments:
            self._payment(payment_ref, ref, days_ago, amount)
        self._holds(ref)
        self._history(person, ref, n, dpd)

    def _notice_dates(self, us: bool, due_date: dt.date | None, dpd: int) -> dict[str, str]:
        """US accounts past a week: the first contact (often older than the history in the
        file) and, for ~95%, the validation notice a few days after it (never after the as-of
        day); the rest have none on record, which the Regulation F gates must notice."""
        r = self.rng
        if not us or due_date is None or dpd <= 6:
            return {}
        first = due_date + dt.timedelta(days=r.randint(1, 5))
        out = {"initial_communication_on": first.isoformat()}
        notice = first + dt.timedelta(days=r.randint(1, 5))
        if r.random() < 0.95 and notice < self.as_of:
            out["validation_notice_sent_on"] = notice.isoformat()
        return out

    def _scra_check(self, us: bool) -> dict[str, Any]:
        """~1% of US accounts had a military-status (SCRA) check lately; a few found active duty."""
        r = self.rng
        if not us or r.random() >= 0.013:
            return {}
        checked = self.as_of - dt.timedelta(days=r.randint(1, 120))
        return {"scra_checked_on": checked.isoformat(), "scra_active_duty": r.random() < 0.1}

    def _draw_payments(
        self, n: int, past_due: float, balance: float
    ) -> list[tuple[str, int, float]]:
        """The account's payments as (payment_ref, days before the as-of day, amount)."""
        r = self.rng
        out: list[tuple[str, int, float]] = []
        count = 0
        if r.random() < 0.20:
            count = 1 if r.random() < 0.7 else 2
        for i in range(count):
            days_ago = r.randint(2, 60)  # before balance_as_of: already in the balance
            amount = max(5.0, (past_due or balance) * r.uniform(0.1, 0.6))
            out.append((f"PAY{n:09d}-{i + 1}", days_ago, amount))
        if past_due and r.random() < 0.02:  # paid today: the planner must notice
            out.append((f"PAY{n:09d}-T", 0, past_due * r.choice((0.5, 1.0))))
        return out

    def _payment(self, payment_ref: str, ref: str, days_ago: int, amount: float) -> None:
        self.writer.write(
            {
                "record": "payment",
                "payment_ref": payment_ref,
                "account_ref": ref,
                "paid_on": (self.as_of - dt.timedelta(days=days_ago)).isoformat(),
                "amount": f"{amount:.2f}",
            }
        )
        self.report.payments += 1

    def _holds(self, ref: str) -> None:
        r = self.rng
        x = r.random()
        # (kind, started days ago, ended days ago or None); disjoint slices of one draw.
        hold: tuple[str, int, int | None]
        if x < 0.030:
            hold = ("dispute", r.randint(1, 30), None)
        elif x < 0.040:
            hold = ("dispute", r.randint(40, 120), r.randint(5, 35))
        elif x < 0.050:
            hold = ("bankruptcy", r.randint(1, 200), None)
        elif x < 0.053:
            hold = ("deceased", r.randint(1, 90), None)
        elif x < 0.063:
            hold = ("cease_communication", r.randint(1, 120), None)
        elif x < 0.068:
            hold = ("attorney", r.randint(1, 90), None)
        elif x < 0.088:
            ended = r.randint(1, 20) if r.random() < 0.3 else None
            hold = ("hardship", r.randint(25, 90), ended)
        elif x < 0.098:  # an instalment agreement being kept
            hold = ("instalment_plan", r.randint(5, 90), None)
        else:
            return
        kind, started, ended = hold
        self.writer.write(
            {
                "record": "hold",
                "account_ref": ref,
                "kind": kind,
                "started_on": (self.as_of - dt.timedelta(days=started)).isoformat(),
                "ended_on": (self.as_of - dt.timedelta(days=ended)).isoformat() if ended else None,
            }
        )
        self.report.holds += 1

    def _history(self, person: _Person, ref: str, n: int, dpd: int) -> None:
        """Contacts over the 14 days before as_of, shaped like the default ladder's stages."""
        if dpd == 0:
            return
        r = self.rng
        window = min(14, dpd)
        callable_phones = [p for p in person.phones if p.call_consent] or person.phones
        texts = [p for p in person.phones if p.type == "mobile" and p.sms_consent]
        calls: list[tuple[int, str]] = []  # (days ago, outcome)
        if dpd >= 16:
            x = r.random()
            if x < 0.06 and dpd >= 20:  # worked hard: 6 or 7 attempts in the last 7 days
                days = sorted(r.sample(range(1, 8), 7 if r.random() < 0.4 else 6))
                calls = [(d, r.choice(("no_answer", "voicemail", "busy"))) for d in days]
            elif x < 0.16:  # talked to them 1 to 8 days ago
                calls = [(min(window, r.randint(1, 8)), "conversation")]
                calls += [(r.randint(1, window), "no_answer") for _ in range(r.randint(0, 2))]
            elif dpd <= 120:
                calls = [(r.randint(1, window), _call_outcome(r)) for _ in range(r.randint(0, 2))]
        call_no = 0
        for days_ago, outcome in calls:
            call_no += 1
            phone = r.choice(callable_phones)
            self._event(
                person, ref, days_ago, "call", phone.number, outcome, f"CALL{n:09d}-{call_no}"
            )
        if r.random() < 0.01:  # they called us
            phone = r.choice(person.phones)
            self._event(person, ref, r.randint(1, window), "call", phone.number, "conversation",
                        f"CALL{n:09d}-IN", direction="inbound")  # fmt: skip
        if texts and dpd <= 60:
            sends = (1 if r.random() < 0.5 else 2) if dpd <= 15 else int(r.random() < 0.3)
            for _ in range(sends):
                outcome = (
                    "delivered" if (y := r.random()) < 0.85 else "sent" if y < 0.95 else "failed"
                )
                self._event(person, ref, r.randint(1, window), "sms", texts[0].number, outcome)
        if person.emails and dpd <= 15 and r.random() < 0.4:
            outcome = "delivered" if (y := r.random()) < 0.85 else "sent" if y < 0.95 else "bounced"
            self._event(
                person, ref, r.randint(1, window), "email", person.emails[0].address, outcome
            )
        if 61 <= dpd <= 150 and r.random() < 0.25:
            self._event(person, ref, r.randint(1, window), "letter", "", "sent")

    def _event(
        self,
        person: _Person,
        ref: str,
        days_ago: int,
        channel: str,
        destination: str,
        outcome: str,
        event_ref: str | None = None,
        direction: str = "outbound",
    ) -> None:
        r = self.rng
        day = self.as_of - dt.timedelta(days=days_ago)
        hour = r.randint(8, 20)
        at = f"{day.isoformat()}T{hour:02d}:{r.randrange(60):02d}:{r.randrange(60):02d}"
        record: dict[str, Any] = {"record": "contact_event", "account_ref": ref}
        if event_ref:
            record["event_ref"] = event_ref  # the dialer's call id; SMS and email rows have none
        record |= {
            "occurred_at": at + _offset_text(person.zone, day),
            "channel": channel,
            "destination": destination,
            "direction": direction,
            "outcome": outcome,
        }
        self.writer.write(record)
        self.report.contact_events += 1

    def opt_out(self, person: _Person, account_ref: str) -> None:
        r = self.rng
        x = r.random()
        channel = "sms" if x < 0.4 else "call" if x < 0.65 else "email" if x < 0.9 else "letter"
        destination = "*"
        if r.random() >= 0.4:  # most name one number or address, the rest the whole channel
            if channel == "sms":
                texts = [p for p in person.phones if p.type == "mobile"]
                destination = texts[0].number if texts else "*"
            elif channel == "call":
                destination = r.choice(person.phones).number
            elif channel == "email" and person.emails:
                destination = person.emails[0].address
        day = self.as_of - dt.timedelta(days=r.randint(1, 90))
        when = f"{day.isoformat()}T{r.randint(0, 23):02d}:{r.randrange(60):02d}:00Z"
        who = {"person_ref": person.ref} if r.random() < 0.5 else {"account_ref": account_ref}
        self.writer.write(
            {
                "record": "opt_out",
                **who,
                "channel": channel,
                "destination": destination,
                "recorded_at": when,
            }
        )
        self.report.opt_outs += 1


def _pick(r: random.Random, cumulative: list[float]) -> int:
    x = r.random() * cumulative[-1]
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _days_past_due(r: random.Random) -> int:
    # Exponential: most accounts are early-stage, a long tail reaches charge-off and beyond.
    while True:
        dpd = 1 + int(r.expovariate(1 / 70))
        if dpd <= 400:
            return dpd


def _call_outcome(r: random.Random) -> str:
    x = r.random()
    if x < 0.50:
        return "no_answer"
    if x < 0.78:
        return "voicemail"
    if x < 0.86:
        return "busy"
    if x < 0.94:
        return "conversation"
    if x < 0.97:
        return "not_in_service"
    return "wrong_number"


def generate(accounts: int, seed: int, out: Path, as_of: dt.date) -> GenerateReport:
    """Write ``accounts`` accounts (with people, history, holds, payments, opt-outs) to ``out``.

    JSON lines, or CSV when ``out`` ends in .csv (either may end in .gz). Same seed and as_of,
    same bytes.
    """
    began = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffixes = [s.lower() for s in out.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    as_csv = ".csv" in suffixes[-2:]
    report = GenerateReport(path=out)
    rng = random.Random(seed)
    binary: IO[bytes]
    if gzipped:  # mtime=0: the gzip header would otherwise carry the clock
        binary = cast(IO[bytes], gzip.GzipFile(out, "wb", compresslevel=6, mtime=0))
    else:
        binary = out.open("wb")
    with binary, io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
        writer = _Writer(text, as_csv)
        gen = _Generator(rng, as_of, writer, report)
        n_person = 0
        n_account = 0
        while n_account < accounts:
            n_person += 1
            person = gen.person(n_person)
            # About 5% of people hold a card and a loan: two account rows, one person.
            both = rng.random() < 0.05 and accounts - n_account >= 2
            products = ("credit_card", "consumer_loan") if both else (
                "credit_card" if rng.random() < 0.65 else "consumer_loan",
            )  # fmt: skip
            for product in products:
                n_account += 1
                gen.account(person, n_account, product)
            if rng.random() < 0.03:
                gen.opt_out(person, f"AC{n_account:09d}")
        report.persons = n_person
        report.lines = writer.lines
    report.seconds = time.monotonic() - began
    return report
