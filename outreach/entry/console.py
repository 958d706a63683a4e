"""The ops console: an account's timeline, the day's suppressions, uncertain and failed contacts
and their resolution by a person, and the ladder, as a FastAPI app. What the pages read and do is
in ``outreach.services.console`` and ``outreach.services.ladders``; the pages are Jinja2
templates in ``console_templates/``.

``plugins/outreach_console_plugin.py`` mounts ``create_app()`` in Airflow's api-server under
``/outreach-console``. Unlike the webhooks app, every route here sits behind Airflow's own
authentication (the core API's ``get_user`` dependency: the JWT from ``Authorization: Bearer``
or the UI's ``_token`` cookie); an anonymous request gets 401. Destinations and names are
masked unless the user's role may see personal data (``OUTREACH_CONSOLE_PII_ROLES``).
See docs/console.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import Engine

from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.services.arrangements import ArrangementRefused, offer_json
from outreach.services.arrangements import accept as accept_arrangement
from outreach.services.arrangements import approve as approve_arrangement
from outreach.services.arrangements import offers as arrangement_offers
from outreach.services.console import (
    Resolution,
    ResolveError,
    account_timeline,
    open_contacts,
    resolve_contact,
    suppression_dashboard,
)
from outreach.services.experiments import ExperimentError
from outreach.services.experiments import overview as experiment_overview
from outreach.services.experiments import promote as promote_arm
from outreach.services.experiments import results as experiment_results
from outreach.services.ladders import (
    LadderError,
    change_ladder,
    check_draft_ladder,
    diff_draft_ladder,
    ladder_overview,
)
from outreach.services.promises import PromiseRefused, UnknownAccount, make_promise
from outreach.services.reports import LANGS as REPORT_LANGS
from outreach.services.reports import dashboard, dashboard_data

DEFAULT_PII_ROLES = "Admin"
# Roles that may resolve contacts. Viewers read; they do not change the ledger.
DEFAULT_RESOLVE_ROLES = "Admin,Op,User"
DEFAULT_LADDER_ROLES = "Admin,Op"
# Roles that work the call queue: a claim hands out a full number and a disposition can start
# holds, invalidate numbers and record promises. Airflow's Viewer (and Public) are no agents.
DEFAULT_AGENT_ROLES = "Admin,Op,User"


# --- who may see and do what ----------------------------------------------------------------


def _role_list(env: str, default: str) -> frozenset[str]:
    return settings.role_list(settings.knob(env), default)


def user_roles(user: Any) -> frozenset[str]:
    """The role names of an Airflow user, lower-cased: SimpleAuthManager's users carry one
    ``role`` (``ADMIN``, ``OP``, ``USER``, ``VIEWER``...), FAB's carry ``roles`` objects."""
    names: set[str] = set()
    role = getattr(user, "role", None)
    if isinstance(role, str):
        names.add(role)
    for item in getattr(user, "roles", None) or ():
        name = getattr(item, "name", item)
        if isinstance(name, str):
            names.add(name)
    return frozenset(n.lower() for n in names)


def may_see_pii(user: Any) -> bool:
    """Full destinations and names only for a role in ``OUTREACH_CONSOLE_PII_ROLES``
    (comma-separated, case-insensitive; default ``Admin``)."""
    return bool(user_roles(user) & _role_list("OUTREACH_CONSOLE_PII_ROLES", DEFAULT_PII_ROLES))


def may_resolve(user: Any) -> bool:
    """Resolving changes the ledger: a role in ``OUTREACH_CONSOLE_RESOLVE_ROLES``
    (default ``Admin,Op,User``; Airflow's viewers may only read)."""
    allowed = _role_list("OUTREACH_CONSOLE_RESOLVE_ROLES", DEFAULT_RESOLVE_ROLES)
    return bool(user_roles(user) & allowed)


def may_change_ladder(user: Any) -> bool:
    """Proposing and approving ladder versions: a role in ``OUTREACH_CONSOLE_LADDER_ROLES``
    (default ``Admin,Op``). Approval also needs a person other than the proposer."""
    allowed = _role_list("OUTREACH_CONSOLE_LADDER_ROLES", DEFAULT_LADDER_ROLES)
    return bool(user_roles(user) & allowed)


def may_work_calls(user: Any) -> bool:
    """Claiming calls and recording dispositions: a role in ``OUTREACH_CONSOLE_AGENT_ROLES``
    (default ``Admin,Op,User``)."""
    allowed = _role_list("OUTREACH_CONSOLE_AGENT_ROLES", DEFAULT_AGENT_ROLES)
    return bool(user_roles(user) & allowed)


def user_name(user: Any) -> str:
    get_name = getattr(user, "get_name", None)
    return str(get_name() if callable(get_name) else getattr(user, "username", "unknown"))[:64]


# --- the app --------------------------------------------------------------------------------

ROUTE_PREFIX = "/outreach-console"


class ResolveBody(BaseModel):
    resolution: str  # one of RESOLUTIONS
    reason: str


class LadderDraft(BaseModel):
    text: str


class LadderDiffRequest(BaseModel):
    text: str
    as_of: str | None = None  # YYYY-MM-DD; default today


def _parse_day(value: str | None, today: Callable[[], dt.date]) -> dt.date:
    if not value:
        return today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail="day must be YYYY-MM-DD") from None


DASHBOARD_DAYS = 30  # the dashboard's default period: the last 30 days, today included


def _period(date_from: str | None, date_to: str | None, today: Callable[[], dt.date]
            ) -> tuple[dt.date, dt.date]:  # fmt: skip
    """The dashboard's period from its query: default the last ``DASHBOARD_DAYS`` days."""
    end = _parse_day(date_to, today)
    start = (_parse_day(date_from, today) if date_from
             else end - dt.timedelta(days=DASHBOARD_DAYS - 1))  # fmt: skip
    if start > end:
        raise HTTPException(status_code=422, detail="from must not be after to")
    return start, end


def _base(request: Request) -> str:
    """Where the console is mounted, as the request saw it: the api-server's mount point
    (``/outreach-console``) behind any prefix a proxy gave Airflow (its ``root_path``), so links
    work wherever Airflow is served."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _templates() -> Any:
    """The pages: Jinja2 templates in ``console_templates/`` (package data), autoescaped."""
    from fastapi.templating import Jinja2Templates
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("outreach.entry", "console_templates"),
        autoescape=select_autoescape(default=True),
    )
    return Jinja2Templates(env=env)


def create_app(
    *,
    engine: Engine | None = None,
    now: Callable[[], dt.datetime] = utcnow,
) -> FastAPI:
    """The console app. Every route depends on Airflow's ``get_user`` (app-level dependency), so
    it needs the api-server's auth manager (``airflow.api_fastapi.app.get_auth_manager``).
    ``engine``: the application database (default: ``outreach.db``'s, opened on first use)."""
    # Imported here: the data functions above must not need Airflow's api-server.
    from airflow.api_fastapi.core_api.security import get_user

    from outreach.entry.body_cap import BodyCap, BodyTooLarge, max_body_bytes, too_large_response
    from outreach.entry.console_guard import csrf_guard, frame_policy, token_for

    # The same dependency object everywhere, so FastAPI resolves the user once per request.
    current_user: Any = Depends(get_user)

    app = FastAPI(
        title="Outreach console",
        # Authentication for every route, including the HTML pages and the OpenAPI schema;
        # then, for anything but GET/HEAD/OPTIONS, the cross-site check (console_guard).
        dependencies=[Depends(get_user), Depends(csrf_guard)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.middleware("http")(frame_policy)
    # Bodies (ladder drafts, forms) are capped before anything reads them, as the webhooks'.
    app.add_middleware(BodyCap, limit=max_body_bytes())

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return too_large_response(exc)

    pages = _templates()

    def db() -> Engine:
        if engine is not None:
            return engine
        from outreach.services.database import engine as default_engine

        return default_engine()

    def today() -> dt.date:
        return now().date()

    def timeline_or_404(account_ref: str, pii: bool) -> dict[str, Any]:
        found = account_timeline(db(), account_ref, pii=pii)
        if found is None:
            raise HTTPException(status_code=404, detail="no such account")
        return found

    def resolve_or_raise(key: str, resolution: str, user: Any, why: str) -> Resolution:
        if not may_resolve(user):
            raise HTTPException(status_code=403, detail="your role may not resolve contacts")
        try:
            return resolve_contact(db(), key, resolution, who=user_name(user), why=why, now=now)
        except ResolveError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None

    def ladder_change_or_raise(user: Any, action: str, draft: str, version: str
                               ) -> dict[str, Any]:  # fmt: skip
        try:
            return change_ladder(db(), user_name(user), action, allowed=may_change_ladder(user),
                                 draft=draft, version=version, now=now)
        except ResolveError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None

    # -- JSON ------------------------------------------------------------------------------

    @app.get("/api/me")
    def me(user: Any = current_user) -> dict[str, Any]:
        return {"name": user_name(user), "personal_data": may_see_pii(user),
                "may_resolve": may_resolve(user)}

    @app.get("/api/csrf-token")
    def csrf_token(request: Request) -> dict[str, str]:
        """For a script in a page that uses the UI's cookie: send it as ``X-CSRF-Token``."""
        return {"csrf_token": token_for(request)}

    # Only the lender's account ref goes in a URL (the api-server's access log keeps URLs);
    # names and destinations never do.
    @app.get("/api/timeline")
    async def api_timeline(account_ref: str, user: Any = current_user) -> dict[str, Any]:
        return await run_in_threadpool(timeline_or_404, account_ref, may_see_pii(user))

    @app.get("/api/suppressions")
    async def api_suppressions(day: str | None = None) -> dict[str, Any]:
        return await run_in_threadpool(suppression_dashboard, db(), _parse_day(day, today))

    @app.get("/api/open-contacts")
    async def api_open_contacts(user: Any = current_user, day: str | None = None) -> dict[str, Any]:
        d = _parse_day(day, today)
        rows = await run_in_threadpool(lambda: open_contacts(db(), d, pii=may_see_pii(user)))
        return {"as_of": d.isoformat(), "contacts": rows}

    @app.post("/api/contacts/{key}/resolve")
    async def api_resolve(key: str, body: ResolveBody, user: Any = current_user) -> dict[str, Any]:
        done = await run_in_threadpool(resolve_or_raise, key, body.resolution, user, body.reason)
        return {"key": done.key, "previous_state": done.previous_state, "state": done.state,
                "resolution": done.resolution, "resolved_by": done.resolved_by,
                "resolved_at": done.resolved_at.isoformat()}

    # The KPIs over a period: aggregates only, no personal data; any signed-in role reads them.
    @app.get("/api/dashboard")
    async def api_dashboard(
        date_from: str | None = Query(None, alias="from", max_length=10),
        date_to: str | None = Query(None, alias="to", max_length=10),
    ) -> dict[str, Any]:
        start, end = _period(date_from, date_to, today)
        return await run_in_threadpool(dashboard_data, db(), start, end)

    @app.get("/api/ladder")
    async def api_ladder() -> dict[str, Any]:
        return await run_in_threadpool(ladder_overview, db())

    @app.post("/api/ladder/check")
    async def api_ladder_check(draft: LadderDraft) -> dict[str, Any]:
        return await run_in_threadpool(check_draft_ladder, draft.text)

    @app.post("/api/ladder/propose")
    async def api_ladder_propose(draft: LadderDraft, user: Any = current_user) -> dict[str, Any]:
        return await run_in_threadpool(ladder_change_or_raise, user, "propose", draft.text, "")

    @app.post("/api/ladder/versions/{version}/approve")
    async def api_ladder_approve(version: str, user: Any = current_user) -> dict[str, Any]:
        return await run_in_threadpool(ladder_change_or_raise, user, "approve", "", version)

    def may_diff_or_raise(user: Any) -> None:
        # The diff plans the whole portfolio twice in the request: not for every reader.
        if not may_change_ladder(user):
            raise HTTPException(status_code=403, detail="your role may not diff ladders")

    @app.post("/api/ladder/diff")
    async def api_ladder_diff(body: LadderDiffRequest, user: Any = current_user
                              ) -> dict[str, Any]:  # fmt: skip
        may_diff_or_raise(user)
        day = _parse_day(body.as_of, today)
        return await run_in_threadpool(diff_draft_ladder, db(), body.text, day)

    # -- HTML (the views in Airflow's navigation) ------------------------------------------

    def page(request: Request, name: str, user: Any, **context: Any) -> HTMLResponse:
        response: HTMLResponse = pages.TemplateResponse(
            request,
            name,
            {"user": user_name(user), "pii": may_see_pii(user), "base": _base(request),
             "csrf_token": token_for(request), **context},
        )
        return response

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, user: Any = current_user) -> HTMLResponse:
        return page(request, "home.html", user)

    @app.get("/timeline", response_class=HTMLResponse)
    async def timeline_page(
        request: Request,
        user: Any = current_user,
        account_ref: str | None = None,
        promise: str | None = None,
        refused: str | None = None,
        notice: str | None = None,
    ) -> HTMLResponse:
        found, offered = None, []
        if account_ref:
            found = await run_in_threadpool(
                account_timeline, db(), account_ref, pii=may_see_pii(user)
            )
        agent = may_work_calls(user)
        if found is not None and agent:
            # The offers the calculator allows today, for an agent to accept on the consumer's
            # word (config/arrangements.yaml).
            offered = [offer_json(o) for o in await run_in_threadpool(
                lambda: arrangement_offers(str(account_ref), today(), engine=db()))]  # fmt: skip
        return page(request, "timeline.html", user, account_ref=account_ref or "", t=found,
                    may_promise=agent, promise=promise, refused=refused,
                    today=today().isoformat(), offers=offered, may_arrange=agent,
                    notice=notice)  # fmt: skip

    def promise_or_refusal(user: Any, account_ref: str, amount: str, due_on: str
                           ) -> dict[str, str]:  # fmt: skip
        """The promise made (its ref) or the refusal's code, for the page to show."""
        if not may_work_calls(user):
            raise HTTPException(status_code=403, detail="your role may not record promises")
        try:
            value, due = Decimal(amount.strip()), dt.date.fromisoformat(due_on.strip())
        except (InvalidOperation, ValueError):
            return {"refused": "promise_terms"}
        try:
            made = make_promise(account_ref, value, due, "console", user_name(user),
                                as_of=today(), engine=db())  # fmt: skip
        except UnknownAccount:
            raise HTTPException(status_code=404, detail="no such account") from None
        except PromiseRefused as exc:
            return {"refused": exc.code}
        return {"promise": made.ref}

    # The account page's promise form (the page's csrf_token; the agent roles only).
    @app.post("/timeline/promise")
    async def promise_form(
        request: Request,
        user: Any = current_user,
        account_ref: str = Form(..., max_length=64),
        amount: str = Form(..., max_length=20),
        due_on: str = Form(..., max_length=10),
    ) -> RedirectResponse:
        outcome = await run_in_threadpool(promise_or_refusal, user, account_ref, amount, due_on)
        query = urlencode({"account_ref": account_ref, **outcome})
        return RedirectResponse(f"{_base(request)}/timeline?{query}", status_code=303)

    def arrangement_or_refuse(user: Any, action: Callable[[], Any]) -> str:
        if not may_work_calls(user):
            raise HTTPException(status_code=403, detail="your role may not make arrangements")
        try:
            action()
        except ArrangementRefused as exc:
            return f"refused: {exc.code}"
        return "done"

    # Plain form posts with the page's csrf_token (csrf_guard refuses another site's post).
    @app.post("/timeline/arrangements/accept")
    async def accept_offer_form(
        request: Request,
        user: Any = current_user,
        account_ref: str = Form(..., max_length=64),
        offer: int = Form(...),
    ) -> RedirectResponse:
        """An agent accepts one of today's offers on the consumer's word."""
        done = await run_in_threadpool(arrangement_or_refuse, user, lambda: accept_arrangement(
            account_ref, offer, "console", user_name(user), today(), engine=db()))  # fmt: skip
        return timeline_redirect(request, account_ref, f"accept {done}")

    @app.post("/timeline/arrangements/approve")
    async def approve_form(
        request: Request,
        user: Any = current_user,
        account_ref: str = Form(..., max_length=64),
        ref: str = Form(..., max_length=64),
    ) -> RedirectResponse:
        """A second person approves a pending arrangement (never who offered or accepted it)."""
        done = await run_in_threadpool(arrangement_or_refuse, user, lambda: approve_arrangement(
            ref, user_name(user), today(), engine=db()))  # fmt: skip
        return timeline_redirect(request, account_ref, f"approve {done}")

    def timeline_redirect(request: Request, account_ref: str, notice: str) -> RedirectResponse:
        query = urlencode({"account_ref": account_ref, "notice": notice})
        return RedirectResponse(f"{_base(request)}/timeline?{query}", status_code=303)

    @app.get("/suppressions", response_class=HTMLResponse)
    async def suppressions_page(
        request: Request, user: Any = current_user, day: str | None = None
    ) -> HTMLResponse:
        board = await run_in_threadpool(suppression_dashboard, db(), _parse_day(day, today))
        return page(request, "suppressions.html", user, board=board)

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard_page(
        request: Request,
        user: Any = current_user,
        date_from: str | None = Query(None, alias="from", max_length=10),
        date_to: str | None = Query(None, alias="to", max_length=10),
        lang: str = Query("en", max_length=8),
    ) -> HTMLResponse:
        """The KPI report's charts and tables for a period (the HTML report's own body)."""
        if lang not in REPORT_LANGS:
            raise HTTPException(status_code=422, detail="lang must be en or zh-CN")
        start, end = _period(date_from, date_to, today)
        board = await run_in_threadpool(dashboard, db(), start, end, lang)
        return page(request, "dashboard.html", user, board=board, langs=REPORT_LANGS)

    @app.get("/open-contacts", response_class=HTMLResponse)
    async def open_contacts_page(
        request: Request, user: Any = current_user, day: str | None = None, done: str | None = None
    ) -> HTMLResponse:
        d = _parse_day(day, today)
        rows = await run_in_threadpool(lambda: open_contacts(db(), d, pii=may_see_pii(user)))
        return page(request, "open_contacts.html", user, day=d.isoformat(), rows=rows,
                    done=done, may_resolve=may_resolve(user))

    # A plain form post with the page's csrf_token; another site's post is refused (csrf_guard).
    @app.post("/open-contacts/resolve")
    async def resolve_form(
        request: Request,
        user: Any = current_user,
        key: str = Form(...),
        resolution: str = Form(...),
        reason: str = Form(""),
        day: str = Form(""),
    ) -> RedirectResponse:
        done = await run_in_threadpool(resolve_or_raise, key, resolution, user, reason)
        target = f"{_base(request)}/open-contacts?day={_parse_day(day, today).isoformat()}"
        return RedirectResponse(f"{target}&done={done.state}", status_code=303)

    @app.get("/ladder", response_class=HTMLResponse)
    async def ladder_page(request: Request, user: Any = current_user) -> HTMLResponse:
        overview = await run_in_threadpool(ladder_overview, db())
        return page(
            request, "ladder.html", user, ladder=overview, draft="", check=None, diff=None,
            as_of=today().isoformat(), notice=None, may_change=may_change_ladder(user),
        )  # fmt: skip

    @app.post("/ladder", response_class=HTMLResponse)
    async def ladder_check_page(
        request: Request,
        user: Any = current_user,
        draft: str = Form(""),
        action: str = Form("check"),
        as_of: str = Form(""),
        version: str = Form(""),
    ) -> HTMLResponse:
        """Check a draft; ``action=diff`` also compares it with the ladder in force;
        ``propose`` stores it as a proposed version, ``approve`` makes ``version`` active."""
        diff, notice = None, None
        if action == "diff":
            may_diff_or_raise(user)
            day = _parse_day(as_of, today)
            result = await run_in_threadpool(diff_draft_ladder, db(), draft, day)
            check, diff = result["check"], result["diff"]
        else:
            check = await run_in_threadpool(check_draft_ladder, draft) if draft else None
        if action in ("propose", "approve"):
            try:
                done = await run_in_threadpool(
                    lambda: change_ladder(db(), user_name(user), action,
                                          allowed=may_change_ladder(user), draft=draft,
                                          version=version, now=now)
                )
                notice = f"Version {done['version']} is {done['state']}."
            except ResolveError as exc:
                notice = f"Refused: {exc}"
        overview = await run_in_threadpool(ladder_overview, db())
        return page(
            request, "ladder.html", user, ladder=overview, draft=draft, check=check, diff=diff,
            as_of=as_of or today().isoformat(), notice=notice,
            may_change=may_change_ladder(user),
        )  # fmt: skip

    # -- experiments (docs/experiments.md): read-only for every role; promotion of a winner
    # for the ladder roles, through the ladder's two-person approval.

    def experiments_board() -> list[dict[str, Any]]:
        found = experiment_overview(engine=db())
        for exp in found:
            try:
                exp["results"] = experiment_results(exp["id"], engine=db(), date_to=today())
            except ExperimentError:
                exp["results"] = None
        return found

    @app.get("/api/experiments")
    async def api_experiments() -> list[dict[str, Any]]:
        return await run_in_threadpool(experiments_board)

    @app.get("/experiments", response_class=HTMLResponse)
    async def experiments_page(
        request: Request, user: Any = current_user, notice: str | None = None
    ) -> HTMLResponse:
        board = await run_in_threadpool(experiments_board)
        return page(request, "experiments.html", user, experiments=board,
                    may_promote=may_change_ladder(user), notice=notice)  # fmt: skip

    def promote_or_refusal(user: Any, experiment_id: str, arm: str) -> str:
        if not may_change_ladder(user):
            raise HTTPException(status_code=403, detail="your role may not promote a ladder")
        try:
            done = promote_arm(experiment_id, arm, user_name(user), engine=db(), now=now())
        except (ExperimentError, LadderError) as exc:
            return f"Refused: {exc}"
        return (f"Arm {arm}'s ladder is proposed as version {done['version']}; a second "
                "person approves it on the ladder page.")  # fmt: skip

    # A plain form post with the page's csrf_token (csrf_guard refuses another site's post).
    @app.post("/experiments/promote")
    async def promote_form(
        request: Request,
        user: Any = current_user,
        experiment_id: str = Form(..., max_length=48),
        arm: str = Form(..., max_length=32),
    ) -> RedirectResponse:
        notice = await run_in_threadpool(promote_or_refusal, user, experiment_id, arm)
        query = urlencode({"notice": notice})
        return RedirectResponse(f"{_base(request)}/experiments?{query}", status_code=303)

    # The agents' call-queue API, behind the same login, for the agent roles only; an agent
    # acts only as themselves.
    async def agent_is_the_user(request: Request, user: Any = current_user) -> None:
        if not may_work_calls(user):
            raise HTTPException(status_code=403, detail="your role may not work the call queue")
        try:
            body = await request.json()
        except ValueError:
            return  # no JSON body: the route's own validation refuses it
        agent = body.get("agent") if isinstance(body, dict) else None
        if agent is not None and agent != user_name(user):
            raise HTTPException(status_code=403, detail="agents act only as themselves")

    from outreach.entry.agent_api import build_router

    app.include_router(build_router(db, dependencies=[Depends(agent_is_the_user)], clock=now))
    return app


def console_routes(app: FastAPI) -> Iterable[tuple[str, str]]:
    """(method, path) of every route the app serves: what the anonymous-401 test walks."""
    from fastapi.routing import APIRoute

    for route in app.routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods):
                yield method, route.path
