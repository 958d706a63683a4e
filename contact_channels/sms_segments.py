"""How many segments an SMS body takes: GSM-7 or UCS-2, as handsets and Twilio split it.

The template lint bounds a template's worst rendering with it (``outreach.planning.templates_lint``),
and the rate limiter charges a Twilio send one token per segment
(``contact_channels.ratelimit``): Twilio counts its throughput in segments, so a three-part
Chinese text uses three times the rate of a short English one.
"""

from __future__ import annotations

# GSM 03.38: the basic character set (one septet each) and the extension table (ESC + one
# septet, so two each). Anything else makes the whole message UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
# Per-segment capacity: a single message, and each part of a concatenated one (the rest of a
# part is its user data header).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def sms_segments(text: str) -> tuple[str, int]:
    """``(encoding, segments)`` of an SMS body: ``"GSM-7"`` or ``"UCS-2"`` and the part count.

    GSM-7 when every character is in the GSM 03.38 basic or extension table (extension
    characters such as ``€ { } [ ] ~ ^ | \\`` take two septets): 160 septets in one message,
    153 per part beyond. Otherwise UCS-2 (any Chinese text): 70 UTF-16 units in one message,
    67 per part, a character outside the BMP (an emoji) taking two. Parts are filled the way
    handsets and Twilio split them: an escape sequence or a surrogate pair is never cut, so a
    part can hold one unit less. An empty body is one segment.
    """
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        encoding, single, part = "GSM-7", GSM7_SINGLE, GSM7_PART
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    total = sum(costs)
    if total <= single:
        return encoding, 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return encoding, segments
