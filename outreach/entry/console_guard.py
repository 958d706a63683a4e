"""The console's defences against other sites: which requests may change state (same-origin,
with a per-session form token when the UI's cookie authenticates them) and who may frame its
pages. Why this shape: docs/decisions/007-console-csrf.md; the rule as users see it:
docs/console.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response

from outreach import settings

# Airflow's session cookie (``airflow...base_auth_manager.COOKIE_NAME_JWT_TOKEN``), named here
# so this module does not import Airflow's api-server.
SESSION_COOKIE = "_token"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a browser says about where a request came from (Fetch Metadata): only these two are the
# console's own pages (or a person typing the address).
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
# Only Airflow's own UI (same origin: the external views open the console in its iframe).
FRAME_POLICY = "frame-ancestors 'self'"
_KEY_CONTEXT = b"outreach-console-csrf-v1"


class CsrfRefused(HTTPException):
    """403 with the reason, which names no person and no token."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=403, detail=f"cross-site request refused: {reason}")


def _secret() -> bytes:
    """``OUTREACH_CONSOLE_CSRF_SECRET``, or Airflow's ``[api_auth] jwt_secret`` (every api-server
    worker shares it already, as their JWTs must verify everywhere). Never a built-in value."""
    secret = settings.console_csrf_secret()
    if not secret:
        from airflow.configuration import conf

        secret = conf.get("api_auth", "jwt_secret", fallback="") or ""
    if not secret:
        raise HTTPException(status_code=503, detail="the console's CSRF secret is not configured")
    # A key of its own, so the form token says nothing about the JWT secret.
    return hmac.new(secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def session_token(session: str) -> str:
    """The form token of one browser session: an HMAC of its session cookie. Another site
    cannot read the cookie or the page, so it cannot compute or learn the token; a new login
    (a new cookie) gets a new one."""
    return hmac.new(_secret(), session.encode(), hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    """The token for the page being rendered ("" for a bearer-token client, which needs none)."""
    session = request.cookies.get(SESSION_COOKIE)
    return session_token(session) if session else ""


def _bearer(request: Request) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(credentials.strip())


def _trusted_origins(request: Request) -> set[str]:
    """The console's own origin as the request addressed it, Airflow's configured
    ``[api] base_url`` (the address users open behind a proxy), and any listed in
    ``OUTREACH_CONSOLE_TRUSTED_ORIGINS`` (comma-separated ``scheme://host[:port]``)."""
    origins = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
    extra = settings.console_trusted_origins()
    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # no Airflow config: the request's own origin and the list only
        base_url = ""
    for url in [base_url, *extra.split(",")]:
        parts = urlsplit(url.strip())
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return {o.lower() for o in origins}


def _same_host(origin: str, request: Request) -> bool:
    """A TLS-terminating proxy makes the request look like http while the page was https: the
    host (and port) must match the Host header; the scheme is then the proxy's business."""
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser says came from elsewhere."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_ORIGIN_FETCH:
        raise CsrfRefused(f"Sec-Fetch-Site is {site[:20]!r}")
    origin = request.headers.get("origin")
    if origin is not None:
        if origin.lower() not in _trusted_origins(request) and not _same_host(origin, request):
            raise CsrfRefused("the Origin is not this console's")


async def _presented_token(request: Request) -> str:
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(FORM_FIELD)  # cached: the route reads the same form
        return value if isinstance(value, str) else ""
    return ""


async def csrf_guard(request: Request) -> None:
    """App dependency, after authentication. Every method but GET/HEAD/OPTIONS must be
    same-origin (Sec-Fetch-Site, Origin); when the UI's cookie is the credential (no
    ``Authorization: Bearer`` header), it must also carry the session's token (form field
    ``csrf_token`` or header ``X-CSRF-Token``)."""
    if request.method.upper() in SAFE_METHODS:
        return
    check_same_origin(request)
    if _bearer(request):
        # A browser never attaches a bearer header on its own, and another site's script
        # cannot add one without a CORS preflight the api-server refuses: not ambient.
        return
    session = request.cookies.get(SESSION_COOKIE)
    presented = await _presented_token(request)
    if not session or not presented:
        raise CsrfRefused("the form token is missing; reload the page")
    if not hmac.compare_digest(presented, session_token(session)):
        raise CsrfRefused("the form token is not this session's; reload the page")


async def frame_policy(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: every console response (pages, JSON, errors) may be framed only by
    Airflow's own UI; ``X-Frame-Options`` for browsers that predate ``frame-ancestors``."""
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", FRAME_POLICY)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response
