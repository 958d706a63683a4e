"""Template lint: opt-out wording, SMS segments (GSM-7 vs UCS-2), syntax errors, the sandbox."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from outreach.entry.cli import main
from outreach.planning.ladder import check_ladder_text
from outreach.planning.messages import message_context, render, sandbox
from outreach.planning.templates_lint import (
    DEFAULT_MAX_SMS_SEGMENTS,
    lint_template,
    max_sms_segments,
    sms_segments,
)
from outreach.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"

LADDER = """
name: x
stages:
  - id: s1
    entry: {dpd_min: 1}
    actions:
      - {id: letter, channel: letter, template: letter/payment_reminder, cadence: {every_days: 30, max_times: 1}}
      - {id: text, channel: sms, template: sms/reminder, cadence: {every_days: 3, max_times: 4}}
      - {id: mail, channel: email, template: email/reminder, cadence: {every_days: 5, max_times: 3}}
"""


@pytest.fixture()
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES, root)
    return root


def errors_of(root: Path, text: str = LADDER) -> list[str]:
    model, errors = check_ladder_text(text, root)
    assert model is None
    return [str(e) for e in errors]


def test_the_shipped_templates_pass_the_lint() -> None:
    model, errors = check_ladder_text(LADDER, TEMPLATES)
    assert errors == [] and model is not None
    model, errors = check_ladder_text(DEFAULT.read_text(), TEMPLATES)
    assert errors == [] and model is not None


def test_sms_without_stop_is_refused_with_its_yaml_path(templates: Path) -> None:
    path = templates / "en" / "sms" / "reminder.txt"
    path.write_text(path.read_text().replace(" Reply STOP to opt out.", ""))
    [err] = errors_of(templates)
    assert err.startswith("stages[0].actions[1].template (line 8): en/sms/reminder.txt")
    assert "opt out" in err and "STOP" in err


def test_lowercase_stop_is_not_an_opt_out_keyword(templates: Path) -> None:
    path = templates / "en" / "sms" / "reminder.txt"
    path.write_text(path.read_text().replace("Reply STOP to opt out.", "To stop, call us."))
    assert any("en/sms/reminder.txt" in e and "opt out" in e for e in errors_of(templates))


def test_zh_cn_sms_accepts_tuiding_and_refuses_neither(templates: Path) -> None:
    path = templates / "zh-CN" / "sms" / "reminder.txt"
    assert "退订" in path.read_text() and "STOP" not in path.read_text()
    path.write_text(path.read_text().replace("回复TD退订。", ""))
    [err] = errors_of(templates)
    assert err.startswith("stages[0].actions[1].template")
    assert "zh-CN/sms/reminder.txt" in err and "退订" in err


def test_email_text_and_html_need_an_unsubscribe(templates: Path) -> None:
    for suffix in (".txt", ".html"):
        path = templates / "en" / "email" / f"reminder{suffix}"
        lines = [ln for ln in path.read_text().splitlines() if "unsubscribe" not in ln]
        path.write_text("\n".join(lines) + "\n")
    errs = errors_of(templates)
    assert len(errs) == 2
    assert all(e.startswith("stages[0].actions[2].template") for e in errs)
    assert any("en/email/reminder.txt" in e and "unsubscribe" in e for e in errs)
    assert any("en/email/reminder.html" in e and "HTML" in e for e in errs)


def test_the_asm_unsubscribe_tag_alone_is_enough(templates: Path) -> None:
    path = templates / "en" / "email" / "reminder.html"
    lines = [ln for ln in path.read_text().splitlines() if "unsubscribe" not in ln]
    path.write_text("\n".join(lines) + '\n<a href="<%asm_group_unsubscribe_raw_url%>">X</a>\n')
    assert lint_template("email", "email/reminder", ["en"], [".html"], root=templates) == []


def test_email_needs_a_subject_line(templates: Path) -> None:
    path = templates / "zh-CN" / "email" / "reminder.txt"
    path.write_text(path.read_text().split("\n", 2)[2])
    [err] = errors_of(templates)
    assert "zh-CN/email/reminder.txt" in err and "Subject:" in err


def test_letters_are_exempt_from_the_opt_out_rule() -> None:
    text = (TEMPLATES / "en" / "letter" / "payment_reminder.txt").read_text()
    assert "STOP" not in text and "unsubscribe" not in text
    assert lint_template("letter", "letter/payment_reminder", ["en", "zh-CN"], [".txt"]) == []


def test_gsm7_plain_text_segments() -> None:
    assert sms_segments("") == ("GSM-7", 1)
    assert sms_segments("a" * 160) == ("GSM-7", 1)
    assert sms_segments("a" * 161) == ("GSM-7", 2)
    assert sms_segments("a" * 306) == ("GSM-7", 2)
    assert sms_segments("a" * 307) == ("GSM-7", 3)
    # The basic table has accented letters and Greek capitals: still GSM-7.
    assert sms_segments("Renée, Ünal, Ñ, Δ @ £5 §") == ("GSM-7", 1)


def test_gsm7_extension_characters_count_double() -> None:
    assert sms_segments("€" * 80) == ("GSM-7", 1)  # 160 septets
    assert sms_segments("€" * 81) == ("GSM-7", 2)  # 162 septets
    assert sms_segments("a" * 158 + "{") == ("GSM-7", 1)
    assert sms_segments("a" * 159 + "{") == ("GSM-7", 2)
    # 152 septets then an escape pair: the pair is not cut, it opens the second part.
    assert sms_segments("a" * 152 + "[" + "a" * 152) == ("GSM-7", 3)
    assert sms_segments("a" * 151 + "[" + "a" * 153) == ("GSM-7", 2)


def test_chinese_is_ucs2_with_70_then_67_per_segment() -> None:
    assert sms_segments("您" * 70) == ("UCS-2", 1)
    assert sms_segments("您" * 71) == ("UCS-2", 2)
    assert sms_segments("您" * 134) == ("UCS-2", 2)
    assert sms_segments("您" * 135) == ("UCS-2", 3)
    # One non-GSM letter makes the whole message UCS-2.
    assert sms_segments("a" * 70 + "ë") == ("UCS-2", 2)
    # An emoji is a surrogate pair: two units.
    assert sms_segments("a" * 69 + "🙂") == ("UCS-2", 2)


def test_rendered_zh_cn_sms_is_ucs2_with_the_right_count() -> None:
    ctx = message_context(
        full_name="王小明", language="zh-CN", account_ref="1234", amount_past_due=Decimal("12345.67"),
        balance=Decimal("20000"), currency="CNY", days_past_due=30, address=None,
    )
    text = render("sms/reminder", "zh-CN", "sms", ctx).text
    encoding, segments = sms_segments(text)
    assert encoding == "UCS-2"
    assert len(text) > 70 and segments == -(-len(text) // 67)


def test_too_long_sms_is_refused_naming_language_count_and_encoding(templates: Path) -> None:
    path = templates / "en" / "sms" / "reminder.txt"
    path.write_text(path.read_text().replace("Reply STOP", "We value you as a customer. " * 10 + "Reply STOP"))
    [err] = errors_of(templates)
    assert err.startswith("stages[0].actions[1].template")
    assert "en/sms/reminder.txt" in err and "en SMS needs" in err
    # The English SMS names no person (the sender, the creditor and the debt collector
    # disclosure need the room), so it stays GSM-7 whatever the name.
    assert "GSM-7 segments" in err and f"sms.max_segments ({DEFAULT_MAX_SMS_SEGMENTS})" in err


def test_max_segments_comes_from_channels_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert max_sms_segments(tmp_path) == DEFAULT_MAX_SMS_SEGMENTS
    (tmp_path / "channels.yaml").write_text("sms: {backend: outbox, max_segments: 1}\n")
    assert max_sms_segments(tmp_path) == 1
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(tmp_path))
    errs = errors_of(TEMPLATES)
    assert any("en/sms/reminder.txt" in e and "en SMS needs" in e and "GSM-7 segments" in e
               for e in errs)  # fmt: skip
    assert any("zh-CN/sms/reminder.txt" in e and "zh-CN SMS needs" in e for e in errs)
    (tmp_path / "channels.yaml").write_text("sms: {max_segments: 0}\n")
    with pytest.raises(ValueError, match="max_segments"):
        max_sms_segments(tmp_path)


def test_syntax_error_names_the_file_and_line(templates: Path) -> None:
    path = templates / "zh-CN" / "email" / "reminder.html"
    lines = path.read_text().splitlines()
    lines[2] = lines[2] + " {{ pay_url }"
    path.write_text("\n".join(lines) + "\n")
    [err] = errors_of(templates)
    assert err.startswith("stages[0].actions[2].template (line 9): zh-CN/email/reminder.html line 3")
    assert "syntax error" in err


def test_unknown_variable_is_a_render_error_with_its_line(templates: Path) -> None:
    path = templates / "en" / "letter" / "payment_reminder.txt"
    source = path.read_text()
    path.write_text(source + "\nRef {{ reference_number }}\n")
    line = len(source.splitlines()) + 2  # the line added after a blank one
    [err] = errors_of(templates)
    assert err.startswith("stages[0].actions[0].template")
    assert f"en/letter/payment_reminder.txt line {line}: does not render" in err
    assert "reference_number" in err


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ first_name.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_the_sandbox_blocks_python_internals(source: str) -> None:
    env = sandbox(TEMPLATES)
    with pytest.raises(SecurityError):
        env.from_string(source).render(first_name="Ann", cycler=object())


def test_the_sandbox_blocks_mutating_the_context() -> None:
    with pytest.raises(SecurityError):
        sandbox(TEMPLATES).from_string("{{ items.append(1) }}").render(items=[])


def test_a_template_reaching_internals_is_refused_by_the_lint(templates: Path) -> None:
    path = templates / "en" / "sms" / "reminder.txt"
    path.write_text(path.read_text().rstrip() + " {{ ''.__class__.__mro__ }}")
    [err] = errors_of(templates)
    assert "en/sms/reminder.txt line 1: does not render (SecurityError" in err


def test_config_check_prints_template_problems(
    templates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = templates / "en" / "sms" / "followup.txt"
    path.write_text(path.read_text().replace(" Reply STOP to opt out.", ""))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(templates))
    assert main(["config", "check", str(DEFAULT)]) == 1
    err = capsys.readouterr().err
    assert "stages[4].actions[1].template (line " in err
    assert "): en/sms/followup.txt: an SMS must tell how to opt out" in err
