"""The self-service link's token: signed (itsdangerous, HMAC-SHA256), expiring, for one account.

It carries our integer account id and its expiry (epoch seconds), nothing else: no ref, no
name, no number. The dispatcher mints one when it words a message (``outreach.dispatch.message``)
and the self-service app reads it back (``outreach.services.self_service``). The key is the
password of the Airflow Connection ``outreach_self_service`` (or the secrets backend's), like
every other credential; without it no link is made and no token is read. docs/self-service.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from itsdangerous import BadSignature, HMACAlgorithm, Signer

from contact_channels.credentials import get_connection
from outreach import settings

CONN_ID = "outreach_self_service"
# Separate keys for the link and for its form token, so neither says anything of the other.
_LINK_SALT = "outreach-self-service-link-v1"
_FORM_CONTEXT = b"outreach-self-service-form-v1"
LINK_PATH = "/s/"
# HMAC-SHA256 cut to 128 bits (as RFC 4868 does): a forger still faces 2**128 guesses, and the
# link stays short enough for a Chinese SMS (UCS-2, 67 characters a segment) to keep its
# segments (templates_lint measures the longest link).
SIGNATURE_BYTES = 16
_EPOCH = dt.date(1970, 1, 1)


class SelfServiceSecretMissing(RuntimeError):
    """No signing key: the connection is absent or has no password."""

    def __init__(self) -> None:
        super().__init__(
            f"the self-service links need a signing key: the Airflow Connection {CONN_ID!r} "
            "(its password), e.g. AIRFLOW_CONN_OUTREACH_SELF_SERVICE='generic://:KEY@' "
            "(docs/self-service.md)"
        )


class _TruncatedHmac(HMACAlgorithm):
    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:SIGNATURE_BYTES]


def secret() -> str:
    """The signing key: the password of the connection ``outreach_self_service``."""
    conn = get_connection(CONN_ID)
    if conn is None or not conn.password:
        raise SelfServiceSecretMissing()
    return conn.password


def _signer(key: str) -> Signer:
    return Signer(
        key, salt=_LINK_SALT, sep=".", key_derivation="hmac", digest_method=hashlib.sha256,
        algorithm=_TruncatedHmac(hashlib.sha256),
    )  # fmt: skip


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def mint(account_id: int, expires_on: dt.date, key: str | None = None) -> str:
    """A token for ``account_id`` that is good through the UTC day ``expires_on``: the
    account id and the day (days since 1970, both base 36), signed."""
    if account_id < 1:
        raise ValueError("an account id is a positive whole number")
    value = f"{_base36(account_id)}-{_base36((expires_on - _EPOCH).days)}"
    return _signer(key or secret()).sign(value).decode("ascii")


def read(token: str, now: dt.datetime, key: str | None = None) -> int | None:
    """The account id a token names, or None when it is tampered with, malformed or expired.
    One answer for every failure: the caller cannot tell them apart, nor can the consumer."""
    if not token or len(token) > 100 or not token.isascii():
        return None
    try:
        value = _signer(key or secret()).unsign(token).decode("ascii")
        account, _, expires = value.partition("-")
        account_id, expires_day = int(account, 36), int(expires, 36)
    except (BadSignature, ValueError):
        return None
    if account_id < 1 or (now.date() - _EPOCH).days > expires_day:
        return None
    return account_id


def form_token(token: str, key: str | None = None) -> str:
    """The CSRF field of the page a token opens: an HMAC of the token under a key of its own.
    Another site can read neither the page nor the key, so it cannot compute it."""
    form_key = hmac.new((key or secret()).encode(), _FORM_CONTEXT, hashlib.sha256).digest()
    return hmac.new(form_key, token.encode(), hashlib.sha256).hexdigest()


def expires_on(sent_at: dt.datetime, valid_days: int) -> dt.date:
    """The last UTC day a link sent at ``sent_at`` opens: ``valid_days`` after the send's day."""
    return sent_at.date() + dt.timedelta(days=valid_days)


def link(account_id: int, now: dt.datetime, valid_days: int) -> str:
    """The self-service URL for ``account_id``, good for ``valid_days`` from ``now``; "" when
    ``OUTREACH_SELF_SERVICE_BASE_URL`` is not set (templates then fall back, docs/self-service.md).
    Raises ``SelfServiceSecretMissing`` when the base URL is set but the key is not."""
    base = settings.self_service_base_url()
    if not base:
        return ""
    return f"{base}{LINK_PATH}{mint(account_id, expires_on(now, valid_days))}"
