"""Issue 13 item 13: Chinese letters embed their font or are refused, print the province's
Chinese name in Chinese address order and the creditor's Chinese name, and reminders and final
notices to Chinese accounts carry what the China pack's letter requirements ask for."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, PermanentError
from contact_channels.letter_fonts import CJK_FONT_ENV, CJK_FONT_MISSING, letter_fonts
from contact_channels.letter_layout import render_letter
from outreach.dispatch.dispatcher import DispatchCounts, dispatch_range
from outreach.kernel import zones
from outreach.media.letters.channel import PrintChannel
from outreach.media.letters.mailing import CN_PROVINCE_NAMES, address_lines
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from policies.packs import all_packs
from tests import factories as f

DAY = dt.date(2026, 11, 23)
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


# A scratch data dir for every test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("data_dir")


def printer_for(url: str, drop: Path, tmp_path: Path) -> PrintChannel:
    channel = build_channel("letter", {"backend": "print", "drop": drop.as_uri()},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    assert isinstance(channel, PrintChannel)
    return channel


def plan_and_dispatch(engine: Engine, channel: PrintChannel) -> DispatchCounts:
    for _ in iter_plan(engine, LADDER, DAY, 1000):
        pass
    return dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical", channel_impl=channel)


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(data)).pages)  # fmt: skip


def truetype_fonts(data: bytes) -> dict[str, bool]:
    """Each TrueType font the PDF uses -> whether its program is embedded (FontFile2)."""
    found: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            if font.get("/Subtype") != "/TrueType":
                continue
            desc = font.get("/FontDescriptor")
            found[str(font["/BaseFont"])] = desc is not None and "/FontFile2" in desc.get_object()
    return found


def cn_account(engine: Engine, **changes: Any) -> dict[str, Any]:
    # 70 days past due: the default ladder's letters stage (a payment reminder letter).
    acc = f.add_account(engine, as_of=DAY, dpd=70, country="CN", region="HB", language="zh-CN",
                        city="武汉市", address_zones="Asia/Shanghai",
                        phones=[{"value": "+8613800138000", "type": "mobile",
                                 "zones": "Asia/Shanghai"}], **changes)  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET address_line1 = '洪山区珞喻路1号', "
                          "postal_code = '430074' WHERE id = :p"), {"p": acc["person_id"]})  # fmt: skip
    return acc


def chinese_message() -> OutboundMessage:
    return OutboundMessage(
        "k" * 32, "letter", "", "尊敬的欧阳娜娜：\n\n您的账户已逾期30天。",
        tags={"language": "zh-CN", "template": "letter/payment_reminder"},
        fields={"letter_date": "2026-11-23", "batch_date": "2026-11-23", "language": "zh-CN",
                "account_last4": "4821",
                "recipient": {"name": "欧阳娜娜", "lines": ["湖北省武汉市", "洪山区珞喻路1号",
                                                        "430074"],
                              "postal_code": "430074", "country": "CN"}},
    )  # fmt: skip


def test_a_chinese_letter_without_an_embeddable_cjk_font_is_refused_and_the_contact_fails(
    engine: Engine, url: str, drop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CJK_FONT_ENV, str(tmp_path / "missing.ttc"))
    fonts = letter_fonts()
    assert not fonts.cjk_embedded and "no such font file" in fonts.cjk_source
    with pytest.raises(PermanentError) as refused:
        render_letter(chinese_message(), fonts)
    assert refused.value.code == CJK_FONT_MISSING and CJK_FONT_ENV in str(refused.value)
    # Through the dispatcher: nothing is written, the ledger row fails with the reason, the
    # address stays valid (the font is ours to fix, then the letter is redriven).
    acc = cn_account(engine)
    channel = printer_for(url, drop, tmp_path)
    try:
        counts = plan_and_dispatch(engine, channel)
    finally:
        channel.close()
    assert counts.sent == 0 and counts.failed == 1
    (row,) = f.contacts(engine, channel="letter", account_id=acc["account_id"])
    assert row["state"] == "failed" and row["error_code"] == CJK_FONT_MISSING
    assert not drop.exists() or not list(drop.rglob("*.pdf"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT valid FROM contact_point WHERE kind = 'postal' AND "
                                 "person_id = :p"), {"p": acc["person_id"]}).scalar_one()  # fmt: skip


def test_the_builtin_cid_font_is_never_used_for_a_chinese_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CJK_FONT_ENV, "STSong-Light")
    with pytest.raises(PermanentError) as refused:
        render_letter(chinese_message(), letter_fonts())
    assert refused.value.code == CJK_FONT_MISSING and "not embedded" in str(refused.value)


def test_an_english_letter_goes_out_without_a_cjk_font(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CJK_FONT_ENV, str(tmp_path / "missing.ttc"))
    message = OutboundMessage(
        "e" * 32, "letter", "", "Dear Pat,\n\nYour account is past due.",
        tags={"language": "en"},
        fields={"letter_date": "2026-11-23", "language": "en", "account_last4": "4821",
                "recipient": {"name": "Pat Example", "lines": ["1 Main St", "Town, NY 10001"],
                              "postal_code": "10001", "country": "US"}},
    )  # fmt: skip
    assert "Your account is past due." in pdf_text(render_letter(message, letter_fonts()).pdf)


def test_a_chinese_letter_embeds_its_cjk_font() -> None:
    fonts = letter_fonts()
    if not fonts.cjk_embedded:
        pytest.skip("no CJK TrueType font installed (apt-get install fonts-wqy-zenhei)")
    data = render_letter(chinese_message(), fonts).pdf
    fonts_used = truetype_fonts(data)
    assert fonts_used and all(fonts_used.values()), fonts_used
    if "wqy-zenhei" in fonts.cjk_source:
        assert any("WenQuanYiZenHei" in name for name in fonts_used)
    assert "尊敬的欧阳娜娜" in pdf_text(data)


def test_every_province_code_has_its_chinese_name() -> None:
    assert set(CN_PROVINCE_NAMES) == set(zones.CN_PROVINCES)
    assert CN_PROVINCE_NAMES["SH"] == "上海市" and CN_PROVINCE_NAMES["HB"] == "湖北省"
    assert CN_PROVINCE_NAMES["XJ"] == "新疆维吾尔自治区"


@pytest.mark.parametrize(
    ("region", "city", "first_line"),
    [("HB", "武汉市", "湖北省武汉市"), ("SH", "上海", "上海市"), ("SH", "上海市", "上海市"),
     ("GD", "深圳市", "广东省深圳市")],
)  # fmt: skip
def test_a_chinese_address_prints_province_city_then_street(
    region: str, city: str, first_line: str
) -> None:
    assert address_lines("CN", "洪山区珞喻路1号", city, region, "430074") == [
        first_line, "洪山区珞喻路1号", "430074"]  # fmt: skip


def test_a_chinese_reminder_names_the_creditor_in_chinese_and_carries_the_cn_requirements(
    engine: Engine, url: str, drop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not letter_fonts().cjk_embedded:
        pytest.skip("no CJK TrueType font installed (apt-get install fonts-wqy-zenhei)")
    monkeypatch.setenv("OUTREACH_CREDITOR_NAME", "Example Bank")
    monkeypatch.setenv("OUTREACH_CREDITOR_NAME_ZH", "示例银行股份有限公司")
    monkeypatch.setenv("OUTREACH_CN_SERVICE_PHONE", "400-000-0000")
    acc = cn_account(engine)
    channel = printer_for(url, drop, tmp_path)
    try:
        assert plan_and_dispatch(engine, channel).sent == 1
    finally:
        channel.close()
    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter'"), {"a": acc["account_id"]}).scalar_one()  # fmt: skip
    words = pdf_text((drop / DAY.isoformat() / "letters" / f"{key}.pdf").read_bytes())
    assert "湖北省武汉市" in words and "HB武汉市" not in words
    assert "示例银行股份有限公司" in words and "Example Bank" not in words
    assert "您的权利" in words  # the cardholder's rights
    assert "查询" in words and "异议" in words  # how to check the account and object
    assert "400-000-0000" in words  # a domestic contact
    assert "+1 800" not in words
    cn = next(p for p in all_packs() if p.name == "cn")
    assert [r.requirement_id for r in cn.letter_requirements] == ["cn.collection_notice_contents"]
    assert "to confirm" in cn.letter_requirements[0].citation
