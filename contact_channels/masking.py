"""Mask destinations and scrub free text before anything reaches a log line or an exception.

Masks keep just enough to tell two destinations apart in a log (country code, last digits,
first letters) and never enough to contact the person.
"""

from __future__ import annotations

import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

# Calling codes are prefix-free (ITU E.164), so the first 1-3 digits that form a known code
# are the code. Read once: the table is static and masking runs on every log line.
_CALLING_CODES: frozenset[str] = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)

_PHONE_KINDS = frozenset({"sms", "call"})
_EMAIL_KINDS = frozenset({"email"})

# Free-text scrubbing: an email address, or a run of 7+ digits possibly broken by spaces,
# dashes, dots or parentheses (phone numbers as providers echo them in error messages).
_EMAIL_IN_TEXT = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")


def mask_phone(value: str) -> str:
    """``"+14155550123"`` -> ``"+1******0123"``: calling code and last four digits kept."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= 6:
        # Too short to keep anything without revealing most of it.
        return "*" * max(len(digits), 3)
    prefix = ""
    if value.strip().startswith("+"):
        for size in (1, 2, 3):
            if digits[:size] in _CALLING_CODES:
                prefix = "+" + digits[:size]
                break
        else:
            prefix = "+"
    hidden = len(digits) - (len(prefix.lstrip("+"))) - 4
    return f"{prefix}{'*' * hidden}{digits[-4:]}"


def mask_email(value: str) -> str:
    """``"jane.doe@example.com"`` -> ``"j***@e***.com"``: first letters and top-level domain kept."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        return "***"
    name, dot, tld = domain.rpartition(".")
    if not dot or not name:
        return f"{local[0]}***@{domain[0]}***"
    return f"{local[0]}***@{name[0]}***.{tld}"


def mask_destination(kind: str, value: str | None) -> str:
    """Mask a destination according to its channel kind.

    Phones for ``sms``/``call``, addresses for ``email``. Other kinds (postal addresses,
    agency or law-firm references) are fully hidden: their shape is not known here.
    """
    if not value:
        return "<none>"
    if kind in _PHONE_KINDS:
        return mask_phone(value)
    if kind in _EMAIL_KINDS:
        return mask_email(value)
    return "***"


def scrub_text(text: str) -> str:
    """Mask every email address and phone-like number inside free text.

    Providers echo the destination in their error messages ("The 'To' number +1415... is not
    a valid phone number"); those messages end up in exceptions and logs.
    """
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
