"""The self-service page: a small FastAPI app of its own, reached by the personal link an SMS or
an email carries (``{{ self_service_url }}``). Run it apart from Airflow, whose api-server never
faces the internet::

    uvicorn outreach.entry.self_service_app:app --host 127.0.0.1 --port 8090

The link's token (``outreach.kernel.self_service_token``, read through
``outreach.services.self_service``) is the only credential: a tampered, expired or unknown one
gets the same neutral page (404), which says nothing of any account. Every request is counted
against a per-token and a per-address limit (``self_service.requests_per_minute``, a sliding
window in this process); bodies are capped; forms post back to this origin only, with a field
derived from the token (CSRF); pages may not be framed, cached or leak the link as a referrer.
The pages are Jinja2 templates in ``self_service_templates/`` (English and Chinese).
docs/self-service.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from outreach import settings
from outreach.entry.body_cap import BodyCap, BodyTooLarge, too_large_response
from outreach.kernel.clock import utcnow
from outreach.services import self_service
from outreach.services.self_service import SelfServiceSecretMissing

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("self_service_templates")
LANGUAGES = ("en", "zh-CN")
# A form here is a few short fields: nothing legitimate comes near this.
MAX_BODY_BYTES = 8 * 1024
MAX_FIELD_CHARS = 64
# Fetch Metadata: only a page of this origin (or a person typing the address) may post.
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}
ACTIONS = ("promise", "offer", "means", "dispute", "stop")


class RateLimiter:
    """A sliding window of one minute per key, in this process (several workers or processes
    each keep their own: docs/self-service.md). At most ``max_keys`` keys are remembered; the
    least recently seen go first, so a flood of addresses cannot take the memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000,
                 window: float = 60.0) -> None:  # fmt: skip
        self.clock = clock
        self.max_keys = max_keys
        self.window = window
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int) -> bool:
        """Count a request for ``key``; False when it is over ``limit`` in the last window
        (a refused request is not counted: a client that waits gets back in)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return allowed


def _language(requested: str | None, stated: str) -> str:
    if requested in LANGUAGES:
        return str(requested)
    return "zh-CN" if stated.lower().startswith("zh") else "en"


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _same_origin(request: Request) -> bool:
    """A post from a page of this app: Fetch Metadata says same-origin (or none), and the
    Origin, when sent, is the configured public origin or this request's own host. Our pages'
    ``no-referrer`` policy makes Chromium send ``Origin: null`` on their own form posts: that
    is taken only when Fetch Metadata vouches for the request."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_ORIGIN_FETCH:
        return False
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and site is not None):
        return True
    trusted = set()
    base = settings.self_service_base_url()
    if base:
        parts = urlsplit(base)
        trusted.add(f"{parts.scheme}://{parts.netloc}".lower())
    host = request.headers.get("host", "").lower()
    return origin.lower() in trusted or (bool(host) and urlsplit(origin).netloc.lower() == host)


def create_app(*, engine: Engine | None = None, now: Callable[[], dt.datetime] = utcnow,
               clock: Callable[[], float] = time.monotonic) -> FastAPI:  # fmt: skip
    """The self-service app. ``engine``: the application database (default: the environment's,
    opened on first use); ``now``: the clock answers are dated by (naive UTC); ``clock``: the
    rate limit's monotonic clock."""
    app = FastAPI(title="Self-service", docs_url=None, redoc_url=None, openapi_url=None)
    pages = Environment(loader=FileSystemLoader(TEMPLATES),
                        autoescape=select_autoescape(["html"]))  # fmt: skip
    pages.filters["money"] = _money
    strings: dict[str, dict[str, str]] = json.loads(
        (TEMPLATES / "strings.json").read_text(encoding="utf-8")
    )
    limiter = RateLimiter(clock)

    def db() -> Engine:
        if engine is not None:
            return engine
        from outreach.services.database import engine as default_engine

        return default_engine()

    def render(name: str, language: str, status: int = 200, **context: Any) -> HTMLResponse:
        text = {**strings["en"], **strings.get(language, {})}
        body = pages.get_template(name).render(t=text, lang=language, **context)
        return HTMLResponse(body, status_code=status)

    def neutral(status: int = 404) -> HTMLResponse:
        # The same page, in both languages, for every link that does not open: nothing in it
        # depends on the token, the account or why it failed.
        return render("neutral.html", "en", status, zh={**strings["en"], **strings["zh-CN"]})

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return too_large_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and methods get the neutral page, never a framework's error text.
        return neutral(404 if exc.status_code in (404, 405) else exc.status_code)

    def limited(request: Request, token: str) -> bool:
        """Over the limit for this address or this token (both are counted, each request)."""
        limit = self_service.requests_per_minute()
        address = request.client.host if request.client else "unknown"
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        by_address = limiter.allow(f"a:{address}", limit)
        by_token = limiter.allow(f"t:{digest}", limit)
        return not (by_address and by_token)

    def too_many() -> HTMLResponse:
        response = neutral(429)
        response.headers["Retry-After"] = "60"
        return response

    async def open_link(token: str) -> int | None:
        try:
            return await run_in_threadpool(self_service.account_for, token, engine=db(),
                                           now=now())  # fmt: skip
        except SelfServiceSecretMissing:
            log.error("self-service: the signing key is not configured (connection %s)",
                      "outreach_self_service")  # fmt: skip
            return None

    def page_context(token: str, account_id: int) -> dict[str, Any]:
        day = now().date()
        view = self_service.overview(account_id, day, engine=db())
        return {
            "view": view, "token": token, "csrf": self_service.form_token(token),
            "offers": self_service.offers(account_id, day, engine=db()),
        }  # fmt: skip

    @app.get("/s.css")
    async def stylesheet() -> Response:
        return Response((TEMPLATES / "self_service.css").read_text(encoding="utf-8"),
                        media_type="text/css")  # fmt: skip

    @app.get("/s/{token}", response_class=HTMLResponse)
    async def account_page(request: Request, token: str) -> Response:
        if limited(request, token):
            return too_many()
        account_id = await open_link(token)
        if account_id is None:
            return neutral()
        context = await run_in_threadpool(page_context, token, account_id)
        language = _language(request.query_params.get("lang"), context["view"]["language"])
        context["other_lang"] = "zh-CN" if language == "en" else "en"
        return render("account.html", language, **context)

    @app.post("/s/{token}/{action}", response_class=HTMLResponse)
    async def answer(request: Request, token: str, action: str) -> Response:
        if limited(request, token):
            return too_many()
        account_id = await open_link(token)
        if account_id is None or action not in ACTIONS:
            return neutral()
        form = await request.form(max_files=0, max_fields=10)
        fields = {k: str(v)[:MAX_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}
        context = await run_in_threadpool(page_context, token, account_id)
        language = _language(fields.get("lang"), context["view"]["language"])
        if not _same_origin(request) or not hmac.compare_digest(
            fields.get("csrf", ""), self_service.form_token(token)
        ):
            log.warning("self-service: a cross-site or unsigned %s refused", action)
            return render("refused.html", language, 403, token=token)
        day = now().date()
        result = await run_in_threadpool(_act, action, account_id, fields, day, db())
        offers = []
        if result.done and action == "means":
            offers = await run_in_threadpool(
                lambda: self_service.offers(account_id, day, engine=db())
            )
        context = await run_in_threadpool(page_context, token, account_id)  # after the answer
        log.info("self-service: %s for account %d: %s", action, account_id, result.code)
        return render("answer.html", language, 200 if result.done else 422, result=result,
                      new_offers=offers, **context)  # fmt: skip

    app.add_middleware(BodyCap, limit=MAX_BODY_BYTES)
    return app


def _act(action: str, account_id: int, fields: dict[str, str], day: dt.date, engine: Engine
         ) -> self_service.Answer:  # fmt: skip
    """One answer from the page's form, through the service; a field that does not parse is
    refused with its code, nothing recorded."""
    if action == "promise":
        amount = self_service.parse_money(fields.get("amount", ""))
        try:
            due_on = dt.date.fromisoformat(fields.get("due_on", ""))
        except ValueError:
            return self_service.Answer(False, "promise_date")
        if amount is None:
            return self_service.Answer(False, "promise_amount")
        return self_service.promise(account_id, amount, due_on, day, engine=engine)
    if action == "offer":
        return self_service.accept(account_id, fields.get("terms", ""), day, engine=engine)
    if action == "means":
        income = self_service.parse_money(fields.get("income", ""), allow_zero=True)
        expenses = self_service.parse_money(fields.get("expenses", ""), allow_zero=True)
        if income is None or expenses is None:
            return self_service.Answer(False, "bad_means")
        return self_service.state_means(account_id, income, expenses, day, engine=engine)
    if action == "dispute":
        return self_service.dispute(account_id, day, engine=engine)
    return self_service.stop_messages(account_id, day, engine=engine)


app = create_app()
