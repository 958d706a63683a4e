"""The ops console: an account's timeline, the day's suppressions, uncertain and failed contacts
and their resolution by a person, and the ladder; as data functions and as a FastAPI app.

``plugins/outreach_console_plugin.py`` mounts ``create_app()`` in Airflow's api-server under
``/outreach-console``. Unlike the webhooks app, every route here sits behind Airflow's own
authentication (the core API's ``get_user`` dependency: the JWT from ``Authorization: Bearer``
or the UI's ``_token`` cookie); an anonymous request gets 401. Destinations and names are
masked unless the user's role may see personal data (``OUTREACH_CONSOLE_PII_ROLES``).
See docs/console.md.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, text

from contact_channels.masking import mask_email, mask_phone, scrub_text
from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_instant
from outreach.kernel.ledger import EVENT_OUTCOME
from outreach.operations.reporting import day_summary
from outreach.planning.ladder import LadderError, check_ladder_text, ladder_version

DEFAULT_PII_ROLES = "Admin"
# Roles that may resolve contacts. Viewers read; they do not change the ledger.
DEFAULT_RESOLVE_ROLES = "Admin,Op,User"
DEFAULT_LADDER_ROLES = "Admin,Op"
# Roles that work the call queue: a claim hands out a full number and a disposition can start
# holds, invalidate numbers and record promises. Airflow's Viewer (and Public) are no agents.
DEFAULT_AGENT_ROLES = "Admin,Op,User"
RESOLVABLE_STATES = ("uncertain", "failed")
DROP_REASON = "ops.dropped"
MAX_NOTE = 200  # characters of the person's "why" kept (error_detail is 300 wide)


# --- who may see and do what ----------------------------------------------------------------


def _role_list(env: str, default: str) -> frozenset[str]:
    raw = os.environ.get(env, default)
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


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


# --- data functions -------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# Money columns: raw SQL hands SQLite's numbers back as int or float, so format them here.
MONEY_COLUMNS = frozenset({"amount", "balance", "amount_past_due", "balance_at_placement",
                           "balance_at_referral"})


def _money(value: Any) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.2f}"


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [
        {k: _money(v) if k in MONEY_COLUMNS else _iso(v) for k, v in row._mapping.items()}
        for row in conn.execute(text(sql), params)
    ]


def show_destination(kind: str | None, value: str | None, pii: bool) -> str | None:
    """A contact point's value as this user may see it: whole, or masked by its kind."""
    if value is None:
        return None
    if pii:
        return value
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return "***"  # postal addresses and anything else: no safe partial form


def _mask_name(name: str) -> str:
    return " ".join(part[:1] + "***" for part in name.split()) or "***"


def account_timeline(engine: Engine, account_ref: str, *, pii: bool) -> dict[str, Any] | None:
    """Everything the ledger knows about one account, oldest first; None when it is unknown.

    Each contact carries its gate decisions (plan and send) and its masked (or, with ``pii``,
    full) destination."""
    with engine.connect() as conn:
        account = conn.execute(
            text(
                "SELECT a.id, a.account_ref, a.product, a.currency, a.balance, a.amount_past_due, "
                "a.due_date, a.jurisdiction_country, a.jurisdiction_region, p.full_name "
                "FROM account a JOIN person p ON p.id = a.person_id WHERE a.account_ref = :r"
            ),
            {"r": account_ref},
        ).first()
        if account is None:
            return None
        aid = account.id
        points = {
            r.id: (r.kind, r.value)
            for r in conn.execute(
                text(
                    "SELECT cp.id, cp.kind, cp.value FROM contact_point cp "
                    "JOIN account a ON a.person_id = cp.person_id WHERE a.id = :a"
                ),
                {"a": aid},
            )
        }

        def dest(cp_id: Any) -> str | None:
            kind, value = points.get(cp_id, (None, None))
            return show_destination(kind, value, pii)

        decisions: dict[str, list[dict[str, Any]]] = {}
        for d in _rows(
            conn,
            "SELECT contact_key, phase, as_of, decided_at, verdict, reasons, window_start, "
            "window_end, defer_until, config_version, pack_versions FROM policy_decision "
            "WHERE account_id = :a ORDER BY decided_at, id",
            a=aid,
        ):
            key = d.pop("contact_key")
            d["reasons"] = (d["reasons"] or "").split()
            decisions.setdefault(key, []).append(d)
        contacts = []
        for c in _rows(
            conn,
            "SELECT key, plan_date, stage, action, slot, channel, contact_point_id, template, "
            "state, verdict, reasons, window_start, window_end, defer_until, config_version, "
            "pack_versions, backend, outcome, error_code, error_detail, attempts, sent_at, "
            "updated_at FROM contact WHERE account_id = :a ORDER BY plan_date, stage, action, "
            "slot, channel, key",
            a=aid,
        ):
            c["destination"] = dest(c.pop("contact_point_id"))
            c["reasons"] = (c["reasons"] or "").split()
            if not pii and c["error_detail"]:
                c["error_detail"] = scrub_text(c["error_detail"])
            c["decisions"] = decisions.get(c["key"], [])
            contacts.append(c)
        events = []
        for e in _rows(
            conn,
            "SELECT occurred_at, channel, contact_point_id, direction, outcome, source, "
            "ledger_key FROM contact_event WHERE account_id = :a ORDER BY occurred_at, id",
            a=aid,
        ):
            e["destination"] = dest(e.pop("contact_point_id"))
            events.append(e)
        call_tasks = []
        for t in _rows(
            conn,
            "SELECT key, contact_point_id, priority, due_start, due_end, state, agent, "
            "claimed_at, completed_at, disposition, reasons FROM call_task WHERE account_id = :a "
            "ORDER BY due_start, key",
            a=aid,
        ):
            t["destination"] = dest(t.pop("contact_point_id"))
            call_tasks.append(t)
        return {
            "account": {
                "account_ref": account.account_ref,
                "name": account.full_name if pii else _mask_name(account.full_name),
                "product": account.product,
                "currency": account.currency,
                "balance": _money(account.balance),
                "amount_past_due": _money(account.amount_past_due),
                "due_date": _iso(account.due_date),
                "jurisdiction": " ".join(
                    x for x in (account.jurisdiction_country, account.jurisdiction_region) if x
                ),
            },
            "personal_data": "shown" if pii else "masked",
            "contacts": contacts,
            "events": events,
            "payments": _rows(
                conn,
                "SELECT payment_ref, paid_on, amount FROM payment WHERE account_id = :a "
                "ORDER BY paid_on, id",
                a=aid,
            ),
            "holds": _rows(
                conn,
                "SELECT kind, started_on, ended_on, source FROM account_hold "
                "WHERE account_id = :a ORDER BY started_on, id",
                a=aid,
            ),
            "promises": _rows(
                conn,
                "SELECT amount, due_on, recorded_at, source, status, ledger_key FROM promise "
                "WHERE account_id = :a ORDER BY recorded_at, id",
                a=aid,
            ),
            "call_tasks": call_tasks,
            "placements": _rows(
                conn,
                "SELECT agency, ledger_key, placed_on, balance_at_placement, recall_due_on, "
                "state, recalled_on, recall_reason FROM placement WHERE account_id = :a "
                "ORDER BY placed_on, id",
                a=aid,
            ),
            "legal_cases": _rows(
                conn,
                "SELECT key, firm, referred_on, status, balance_at_referral FROM legal_case "
                "WHERE account_id = :a ORDER BY referred_on",
                a=aid,
            ),
        }


def suppression_dashboard(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Counts only: the day's totals and reasons (``reporting.day_summary``), plus suppressed
    contacts by stage and reason code, which the summary does not split."""
    summary = day_summary(engine, day)
    by_stage: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for stage, codes, n in conn.execute(
            text(
                "SELECT stage, reasons, COUNT(*) FROM contact WHERE plan_date = :d "
                "AND state = 'suppressed' GROUP BY stage, reasons"
            ),
            {"d": day},
        ):
            for code in (codes or "").split() or ["(none)"]:
                counts = by_stage.setdefault(stage, {})
                counts[code] = counts.get(code, 0) + int(n)
    return {
        "as_of": summary["as_of"],
        "totals": summary["totals"],
        "suppressed_by_reason": summary["suppressed_by_reason"],
        "deferred_by_reason": summary["deferred_by_reason"],
        "suppressed_by_stage": {
            stage: dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))
            for stage, codes in sorted(by_stage.items())
        },
    }


def open_contacts(engine: Engine, day: dt.date, *, pii: bool) -> list[dict[str, Any]]:
    """The day's uncertain and failed contacts: what a person has to resolve."""
    with engine.connect() as conn:
        rows = _rows(
            conn,
            "SELECT c.key, a.account_ref, c.plan_date, c.stage, c.action, c.channel, c.state, "
            "c.backend, c.provider_id, c.error_code, c.error_detail, c.attempts, c.claimed_at, "
            "c.updated_at, cp.kind AS point_kind, cp.value AS point_value FROM contact c "
            "JOIN account a ON a.id = c.account_id "
            "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id "
            "WHERE c.plan_date = :d AND c.state IN ('uncertain', 'failed') "
            "ORDER BY c.state DESC, a.account_ref, c.key",
            d=day,
        )
    for r in rows:
        r["destination"] = show_destination(r.pop("point_kind"), r.pop("point_value"), pii)
        if not pii and r["error_detail"]:
            r["error_detail"] = scrub_text(r["error_detail"])
    return rows


# The resolve actions: what each does to the ledger row.
RESOLUTIONS = {
    "mark_sent": "sent",  # the person confirmed with the provider that it went out
    "mark_not_sent": "planned",  # it did not go out: back to planned, the dispatcher may resend
    "drop": "suppressed",  # it will not go out at all: suppressed with ops.dropped
}


class ResolveError(Exception):
    """Why a resolve was refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Resolution:
    key: str
    previous_state: str
    state: str
    resolution: str
    resolved_by: str
    resolved_at: dt.datetime


def resolve_contact(
    engine: Engine,
    key: str,
    resolution: str,
    *,
    who: str,
    why: str,
    now: Callable[[], dt.datetime] = utcnow,
) -> Resolution:
    """Settle an uncertain or failed contact by hand, in one transaction.

    The row moves only if it is still uncertain or failed (a conditional UPDATE: a callback or
    another person that got there first wins, and this one is refused with 409). Who and why go
    into the row's ``error_detail`` and into a ``contact_event`` (source ``ops``, direction
    ``ops`` so the gate's frequency counts never read it as a contact). ``mark_sent`` also
    writes the outbound event the dispatcher would have (same ``ledger:`` ref), so the gate
    counts the message; the other two write none: nothing reached the consumer."""
    if resolution not in RESOLUTIONS:
        raise ResolveError(422, f"unknown resolution {resolution!r}")
    reason = " ".join(scrub_text(why).split())[:MAX_NOTE]
    if not reason:
        raise ResolveError(422, "say why: the reason is required")
    state = RESOLUTIONS[resolution]
    at = now()
    note = f"ops {resolution} by {who}: {reason}"[:300]
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT account_id, channel, contact_point_id, state, reasons, claimed_at "
                "FROM contact WHERE key = :k"
            ),
            {"k": key},
        ).first()
        if row is None:
            raise ResolveError(404, "no such contact")
        if row.state not in RESOLVABLE_STATES:
            raise ResolveError(409, f"contact is {row.state}, only uncertain or failed resolve")
        # The message went out (if it did) when it was claimed and handed to the provider, not
        # when a person settled it: the gate's frequency counts must see it on its own day.
        sent_at = as_instant(row.claimed_at) if row.claimed_at is not None else at
        fields = {
            "mark_sent": "sent_at = :sent_at, outcome = 'ops_marked_sent', error_code = NULL",
            "mark_not_sent": "outcome = 'ops_not_sent', error_code = NULL, claim_token = NULL, "
            "claimed_at = NULL",
            "drop": "outcome = 'ops_dropped', reasons = :drop",
        }[resolution]
        moved = conn.execute(
            text(
                f"UPDATE contact SET state = :state, error_detail = :note, updated_at = :at, "
                f"{fields} WHERE key = :k AND state = :prev"
            ),
            {"state": state, "note": note, "at": at, "k": key, "prev": row.state,
             "drop": DROP_REASON, "sent_at": sent_at},
        ).rowcount
        if moved != 1:  # settled by someone else between our read and our write
            raise ResolveError(409, "contact changed meanwhile; reload and try again")
        event = (
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, "
            "contact_point_id, direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, "
            ":ch, :cp, :dir, :o, :src, :k) ON CONFLICT (event_ref) DO NOTHING"
        )
        base = {"a": row.account_id, "at": at, "ch": row.channel, "cp": row.contact_point_id,
                "k": key}
        conn.execute(
            text(event),
            {**base, "ref": f"ops:{uuid.uuid4().hex}", "dir": "ops",
             "o": f"ops_{resolution}", "src": "ops"},
        )
        if resolution == "mark_sent":
            conn.execute(
                text(event),
                {**base, "at": sent_at, "ref": f"ledger:{key}", "dir": "outbound",
                 "o": EVENT_OUTCOME.get(row.channel, "sent"), "src": "ops"},
            )
    return Resolution(key, row.state, state, resolution, who, at)


def ladder_overview(engine: Engine | None = None) -> dict[str, Any]:
    """The ladder in force (the approved version, or the configured file before any approval):
    version, stages, their entry and actions, and the versions on record; or its errors."""
    from outreach.planning.ladder_versions import history, ladder_in_force

    path = settings.ladder_path()
    try:
        ladder = ladder_in_force(engine=engine)
    except LadderError as exc:
        return {"path": path.name, "version": None,
                "errors": [e.__dict__ for e in exc.errors], "stages": []}
    return {
        "path": ladder.source if ladder.source.startswith("ladder version") else path.name,
        "history": [
            {"version": r.version, "state": r.state, "proposed_by": r.proposed_by,
             "approved_by": r.approved_by,
             "approved_at": r.approved_at.isoformat() + "Z" if r.approved_at else None}
            for r in history(engine=engine)
        ],  # fmt: skip
        "version": ladder.version,
        "name": ladder.model.name,
        "errors": [],
        "stages": [
            {
                "id": s.id,
                "entry": s.entry.model_dump(mode="json"),
                "requires": [r.model_dump(mode="json") for r in s.requires],
                "actions": [a.model_dump(mode="json") for a in s.actions],
            }
            for s in ladder.stages
        ],
    }


def check_draft_ladder(draft: str) -> dict[str, Any]:
    """Validate a draft ladder text with the same checks as loading; errors carry YAML paths."""
    return _checked_draft(draft)[1]


def _checked_draft(draft: str) -> tuple[Any, dict[str, Any]]:
    """The draft's model (None if invalid) and its check report."""
    model, errors = check_ladder_text(draft)
    return model, {
        "valid": model is not None,
        "version": ladder_version(model) if model is not None else None,
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in errors],
    }


def diff_draft_ladder(engine: Engine, draft: str, day: dt.date) -> dict[str, Any]:
    """What the draft would change against the ladder in force, for ``day``'s portfolio: the
    same comparison as ``outreach config diff`` (``outreach.operations.ladder_diff``), sending and writing
    nothing. An invalid draft gets its errors instead. Counts, codes and account references
    only: no personal data."""
    from outreach.operations.ladder_diff import diff_ladders
    from outreach.planning.ladder import Ladder
    from outreach.planning.ladder_versions import ladder_in_force

    model, check = _checked_draft(draft)
    if model is None:
        return {"check": check, "diff": None}
    new = Ladder(model=model, version=check["version"], source="draft")
    old = ladder_in_force(engine=engine)
    return {"check": check, "diff": diff_ladders(engine, old, new, day).as_dict()}


def change_ladder(engine: Engine, user: Any, action: str, *, draft: str = "",
                  version: str = "", now: Callable[[], dt.datetime] = utcnow) -> dict[str, Any]:
    """Propose the draft, or approve a proposed version, as the signed-in user (their Airflow
    login is the name recorded; nobody types it). Returns ``{"version", "state"}``; raises
    ResolveError with the HTTP status for a refusal (403 role, 409 version rules, 422 draft)."""
    from outreach.planning.ladder_versions import VersionError, approve, propose_text

    if not may_change_ladder(user):
        raise ResolveError(403, "your role may not propose or approve ladder versions")
    who = user_name(user)
    at = now()
    try:
        if action == "propose":
            made = propose_text(draft, who, source=f"console draft by {who}", engine=engine,
                                now=at)  # fmt: skip
            return {"version": made, "state": "proposed"}
        if action == "approve":
            record = approve(version, who, engine=engine, now=at)
            return {"version": record.version, "state": record.state}
    except LadderError as exc:
        raise ResolveError(422, "; ".join(str(e) for e in exc.errors)) from None
    except VersionError as exc:
        raise ResolveError(409, str(exc)) from None
    raise ResolveError(422, f"unknown ladder action {action!r}")


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


def _base(request: Request) -> str:
    """Where the console is mounted, as the request saw it: the api-server's mount point
    (``/outreach-console``) behind any prefix a proxy gave Airflow (its ``root_path``), so links
    work wherever Airflow is served."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _templates() -> Any:
    from fastapi.templating import Jinja2Templates
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(loader=DictLoader(PAGES), autoescape=select_autoescape(default=True))
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
        from outreach.storage.db import get_engine

        return get_engine()

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
            return change_ladder(db(), user, action, draft=draft, version=version, now=now)
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
        request: Request, user: Any = current_user, account_ref: str | None = None
    ) -> HTMLResponse:
        found = None
        if account_ref:
            found = await run_in_threadpool(
                account_timeline, db(), account_ref, pii=may_see_pii(user)
            )
        return page(request, "timeline.html", user, account_ref=account_ref or "", t=found)

    @app.get("/suppressions", response_class=HTMLResponse)
    async def suppressions_page(
        request: Request, user: Any = current_user, day: str | None = None
    ) -> HTMLResponse:
        board = await run_in_threadpool(suppression_dashboard, db(), _parse_day(day, today))
        return page(request, "suppressions.html", user, board=board)

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
                    change_ladder, db(), user, action, draft=draft, version=version, now=now
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


# --- the pages (Jinja2, autoescaped) ----------------------------------------------------------

_LAYOUT_HEAD = """<!doctype html><html><head><meta charset="utf-8"><title>Outreach console</title>
<style>body{font-family:sans-serif;margin:1rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}</style></head><body>
<nav><a href="{{ base }}/timeline">Timeline</a> | <a href="{{ base }}/suppressions">
Suppressions</a> | <a href="{{ base }}/open-contacts">Uncertain and failed</a> |
<a href="{{ base }}/ladder">Ladder</a> <small>signed in as {{ user }};
personal data {{ "shown" if pii else "masked" }}</small></nav><hr>"""
_LAYOUT_TAIL = "</body></html>"


def _page(body: str) -> str:
    return _LAYOUT_HEAD + body + _LAYOUT_TAIL


PAGES = {
    "home.html": _page("<h1>Outreach console</h1><p>Pick a view above.</p>"),
    "timeline.html": _page(
        """<h1>Account timeline</h1>
<form method="get"><input name="account_ref" value="{{ account_ref }}" placeholder="account ref">
<button>Show</button></form>
{% if account_ref and not t %}<p>No such account.</p>{% endif %}
{% if t %}<h2>{{ t.account.account_ref }}: {{ t.account.name }}</h2>
<p>{{ t.account.product }}, {{ t.account.currency }} {{ t.account.balance }} balance,
{{ t.account.amount_past_due }} past due since {{ t.account.due_date }}</p>
<h3>Contacts</h3><table><tr><th>plan date</th><th>stage / action</th><th>channel</th>
<th>destination</th><th>state</th><th>reasons</th><th>decisions</th><th>note</th></tr>
{% for c in t.contacts %}<tr><td>{{ c.plan_date }}</td><td>{{ c.stage }} / {{ c.action }}</td>
<td>{{ c.channel }}</td><td>{{ c.destination or "" }}</td><td>{{ c.state }}</td>
<td>{{ c.reasons|join(" ") }}</td><td>{% for d in c.decisions %}{{ d.phase }}: {{ d.verdict }}
{{ d.reasons|join(" ") }} ({{ d.pack_versions }}, {{ d.decided_at }})<br>{% endfor %}</td>
<td>{{ c.error_detail or "" }}</td></tr>{% endfor %}</table>
{% for title, key in [("Events", "events"), ("Payments", "payments"), ("Holds", "holds"),
("Promises", "promises"), ("Call tasks", "call_tasks"), ("Placements", "placements"),
("Legal cases", "legal_cases")] %}<h3>{{ title }}</h3>
{% if t[key] %}<table><tr>{% for col in t[key][0] %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in t[key] %}<tr>{% for col in row %}<td>{{ row[col] if row[col] is not none else "" }}
</td>{% endfor %}</tr>{% endfor %}</table>{% else %}<p>none</p>{% endif %}{% endfor %}
{% endif %}"""
    ),
    "suppressions.html": _page(
        """<h1>Suppressions on {{ board.as_of }}</h1>
<form method="get"><input name="day" value="{{ board.as_of }}" type="date"><button>Show</button>
</form><h3>Totals</h3><table>{% for s, n in board.totals.items() %}<tr><td>{{ s }}</td>
<td>{{ n }}</td></tr>{% endfor %}</table>
<h3>Suppressed by reason</h3><table>{% for code, n in board.suppressed_by_reason.items() %}
<tr><td>{{ code }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
<h3>Deferred by reason</h3><table>{% for code, n in board.deferred_by_reason.items() %}
<tr><td>{{ code }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
<h3>Suppressed by stage</h3><table>{% for stage, codes in board.suppressed_by_stage.items() %}
{% for code, n in codes.items() %}<tr><td>{{ stage }}</td><td>{{ code }}</td><td>{{ n }}</td>
</tr>{% endfor %}{% endfor %}</table>"""
    ),
    "open_contacts.html": _page(
        """<h1>Uncertain and failed contacts on {{ day }}</h1>
<form method="get"><input name="day" value="{{ day }}" type="date"><button>Show</button></form>
{% if done %}<p>Resolved: the contact is now {{ done }}.</p>{% endif %}
<table><tr><th>account</th><th>stage / action</th><th>channel</th><th>destination</th>
<th>state</th><th>error</th><th>resolve</th></tr>
{% for r in rows %}<tr><td>{{ r.account_ref }}</td><td>{{ r.stage }} / {{ r.action }}</td>
<td>{{ r.channel }}</td><td>{{ r.destination or "" }}</td><td>{{ r.state }}</td>
<td>{{ r.error_code or "" }} {{ r.error_detail or "" }}</td><td>{% if may_resolve %}
<form method="post" action="{{ base }}/open-contacts/resolve"><input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input type="hidden" name="key" value="{{ r.key }}"><input type="hidden" name="day"
value="{{ day }}"><select name="resolution"><option value="mark_sent">it was sent</option>
<option value="mark_not_sent">not sent: allow a resend</option><option value="drop">drop it
</option></select> <input name="reason" required placeholder="why"> <button>Resolve</button>
</form>{% else %}read only{% endif %}</td></tr>{% else %}<tr><td colspan="7">nothing to resolve
</td></tr>{% endfor %}</table>"""
    ),
    "ladder.html": _page(
        """<h1>Ladder {{ ladder.name or "" }}</h1>
<p>Active: {{ ladder.path }}, version {{ ladder.version or "INVALID" }}</p>
{% if notice %}<p class="notice">{{ notice }}</p>{% endif %}
{% if ladder.history %}<h2>Versions</h2><table><tr><th>version</th><th>state</th><th>proposed by</th><th>approved by</th><th>approved at</th><th></th></tr>{% for v in ladder.history %}<tr><td>{{ v.version }}</td><td>{{ v.state }}</td><td>{{ v.proposed_by }}</td><td>{{ v.approved_by or "" }}</td><td>{{ v.approved_at or "" }}</td><td>{% if v.state == "proposed" and may_change and v.proposed_by != user %}<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token }}"><input type="hidden" name="version" value="{{ v.version }}"><button name="action" value="approve">Approve</button></form>{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% for e in ladder.errors %}<p>{{ e.path }}: {{ e.message }}</p>{% endfor %}
<table><tr><th>stage</th><th>entry</th><th>actions</th></tr>{% for s in ladder.stages %}
<tr><td>{{ s.id }}</td><td>dpd {{ s.entry.dpd_min }}-{{ s.entry.dpd_max or "" }}</td>
<td>{% for a in s.actions %}{{ a.id }} ({{ a.channel }}, every {{ a.cadence.every_days }} d,
max {{ a.cadence.max_times }}){% if a.template %} {{ a.template }}{% endif %}<br>
{% endfor %}</td></tr>{% endfor %}</table>
<h2>Check a draft</h2><form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token }}"><textarea name="draft" rows="20" cols="100">
{{ draft }}</textarea><br><button name="action" value="check">Check</button>
<label>as of <input name="as_of" type="date" value="{{ as_of }}"></label>
{% if may_change %}<button name="action" value="diff">Diff against the ladder in force</button>
<button name="action" value="propose">Propose as a new version</button>{% endif %}</form>
{% if check %}{% if check.valid %}<p>Valid, version {{ check.version }}.</p>{% else %}
<ul>{% for e in check.errors %}<li>{{ e.path }}{% if e.line %} (line {{ e.line }}){% endif %}:
{{ e.message }}</li>{% endfor %}</ul>{% endif %}{% endif %}
{% if diff %}<h2 id="diff">What the draft changes on {{ diff.as_of }}</h2>
<p>{{ diff.accounts }} accounts; in force {{ diff.old.version }}: {{ diff.old.steps }} due steps,
{{ diff.old.send }} sends; draft {{ diff.new.version }}: {{ diff.new.steps }} due steps,
{{ diff.new.send }} sends.{% if diff.empty %} No change.{% endif %}</p>
{% if diff.contacts %}<table><tr><th>stage</th><th>action</th><th>channel</th><th>added</th>
<th>removed</th><th>changed</th><th>rerouted</th><th>verdict moves</th></tr>
{% for r in diff.contacts %}<tr><td>{{ r.stage }}</td><td>{{ r.action }}</td>
<td>{{ r.channel }}</td><td>{{ r.added }}</td><td>{{ r.removed }}</td><td>{{ r.changed }}</td>
<td>{{ r.rerouted }}</td><td>{% for m, n in r.moves.items() %}{{ m }} {{ n }}<br>{% endfor %}
</td></tr>{% endfor %}</table>{% endif %}
{% for title, shift in (("Newly blocked", diff.newly_blocked),
                        ("Newly allowed", diff.newly_allowed)) %}{% if shift.accounts %}
<h3>{{ title }}: {{ shift.accounts }} accounts</h3><table>
{% for code, n in shift.by_reason.items() %}<tr><td>{{ code }}</td><td>{{ n }}</td></tr>
{% endfor %}</table><p>For example: {{ shift.examples | join(", ") }}</p>{% endif %}{% endfor %}
{% endif %}"""
    ),
}
