"""Masking keeps destinations and bodies out of logs and exception messages."""

from __future__ import annotations

import pytest

from contact_channels.masking import mask_destination, mask_email, mask_phone, scrub_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+14155550123", "+1******0123"),
        ("+447911123456", "+44******3456"),
        ("+35312345678", "+353****5678"),
        ("4155550123", "******0123"),
        ("+1 (415) 555-0123", "+1******0123"),
        ("12345", "*****"),
    ],
)
def test_phone_keeps_calling_code_and_last_four_digits(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("jane.doe@example.com", "j***@e***.com"),
        ("J@mail.example.co.uk", "J***@m***.uk"),
        ("someone@localhost", "s***@l***"),
        ("not-an-email", "***"),
        ("@example.com", "***"),
    ],
)
def test_email_keeps_first_letters_and_top_level_domain(raw: str, masked: str) -> None:
    assert mask_email(raw) == masked


def test_destination_is_masked_by_channel_kind() -> None:
    assert mask_destination("sms", "+14155550123") == "+1******0123"
    assert mask_destination("call", "+14155550123") == "+1******0123"
    assert mask_destination("email", "jane.doe@example.com") == "j***@e***.com"
    assert mask_destination("letter", "1 Main St, Springfield") == "***"
    assert mask_destination("sms", None) == "<none>"


def test_scrub_text_masks_numbers_and_addresses_in_provider_messages() -> None:
    text = "The 'To' number +14155550123 is not valid; reply to jane.doe@example.com"
    scrubbed = scrub_text(text)
    assert "+14155550123" not in scrubbed
    assert "jane.doe@example.com" not in scrubbed
    assert "+1******0123" in scrubbed
    assert "j***@e***.com" in scrubbed


def test_scrub_text_leaves_error_codes_alone() -> None:
    assert scrub_text("HTTP 400, code 21610") == "HTTP 400, code 21610"
