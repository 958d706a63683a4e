"""The people of a generated portfolio: the reference data (states and their cities, provinces,
names, streets) and the draws of a person with their phones and emails.

Deterministic for the random generator it is given; fictional people, 555-01XX numbers, reserved
domains.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
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

# What consumers say are inconvenient times, as they tend to put it (the importer normalizes).
_INCONVENIENT_TIMES = (
    "mon-fri 09:00-17:00", "Mon-Fri 08:00-18:00", "mon-fri 09:00-17:00; sun", "sun",
    "daily 12:00-13:00", "sat,sun", "22:00-24:00; 00:00-09:00", "mon-fri 07:00-15:30",
)  # fmt: skip


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
def offset_text(zone: str, day: dt.date) -> str:
    offset = ZoneInfo(zone).utcoffset(dt.datetime(day.year, day.month, day.day, 12))
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- the people -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Phone:
    number: str  # as written to the file (E.164 or national format)
    e164: str
    type: str
    sms_consent: bool
    call_consent: bool
    workplace: bool
    no_calls_at_work: bool = False


@dataclass(slots=True)
class Email:
    address: str
    workplace: bool
    consent: bool
    used_by_consumer: bool


@dataclass(slots=True)
class Person:
    ref: str
    country: str
    record: dict[str, Any]  # the person's part of an account record
    zone: str  # where their local calling hours are reckoned for the history
    phones: list[Phone]
    emails: list[Email]
    region: str


class People:
    """Draws the people of a portfolio, from the generator the accounts are drawn from."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self, n: int) -> Person:
        if self.rng.random() < 0.75:
            return self._us_person(n)
        return self._cn_person(n)

    def _us_person(self, n: int) -> Person:
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
        return Person(f"PE{n:09d}", "US", record, zone, phones, emails, state)

    def _cn_person(self, n: int) -> Person:
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
        return Person(f"PE{n:09d}", "CN", record, "Asia/Shanghai", phones, emails, province.code)

    def _phones(self, number: Callable[[str], tuple[str, str]]) -> list[Phone]:
        r = self.rng
        count = 1 if (x := r.random()) < 0.55 else 2 if x < 0.90 else 3
        phones: list[Phone] = []
        for i in range(count):
            y = r.random()
            kind = "mobile" if y < 0.65 else "landline" if y < 0.95 else "work"
            if i == 0 and kind == "work":
                kind = "mobile"  # nobody is reachable only at work
            shown, e164 = number(kind)
            if kind == "mobile":
                phones.append(Phone(shown, e164, kind, r.random() < 0.75, r.random() < 0.85, False))
            elif kind == "landline":
                phones.append(Phone(shown, e164, kind, False, r.random() < 0.85, False))
            else:
                # Some employers have said they forbid collection calls at work.
                no_calls = r.random() < 0.3
                phones.append(Phone(shown, e164, kind, False, r.random() < 0.4, True, no_calls))
        return phones

    def _emails(self, local: str, n: int) -> list[Email]:
        r = self.rng
        if r.random() >= 0.8:
            return []
        emails = [Email(f"{local}{n % 9973}@{r.choice(_DOMAINS)}", False, r.random() < 0.6, False)]
        if r.random() < 0.1:
            # A work address: usable only where the consumer wrote from it or agreed to it.
            used = r.random() < 0.3
            emails.append(Email(f"{local}.work{n % 97}@example.org", True, r.random() < 0.6, used))
        return emails

    def _inconvenient_times(self, record: dict[str, Any]) -> None:
        r = self.rng
        if r.random() < 0.03:
            record["inconvenient_times"] = r.choice(_INCONVENIENT_TIMES)


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
