"""What every dashboard page shares: who is looking (their server-side session), CSRF checks, rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets.access import MAX_ID, TicketError
from bot.web.auth import Viewer, csrf_ok
from bot.web.sessions import read_session
from bot.web.web_sessions import load_viewer
from crm_store.models import TIERS

STATUS_OF_ERROR = {"not_found": 404, "not_allowed": 403, "conflict": 409, "invalid": 422}
"""The dashboard's one mapping of the ticket core's refusals to HTTP status codes."""


class LoginRequired(Exception):
    def __init__(self, next_path: str = "/") -> None:
        self.next_path = next_path


class Forbidden(Exception):
    def __init__(self, reason: str = "This page is for supervisors.") -> None:
        self.reason = reason


def error_status(exc: TicketError) -> int:
    """The status a refused ticket action answers with (a rating's own codes are conflicts with its state)."""
    return STATUS_OF_ERROR.get(exc.code, 409)


async def refused_page(request: Request, exc: Exception) -> HTMLResponse:
    """A ticket-core refusal as a page: a ticket or customer that does not exist (or is not the viewer's to
    see) is a 404, never a server error."""
    assert isinstance(exc, TicketError)
    title = "Not found" if exc.code == "not_found" else "Not done"
    return render(request, "error.html", None, status_code=error_status(exc), title=title, message=exc.message)


async def current_viewer(request: Request) -> Viewer:
    """The agent of the request's server-side session; anyone else (no cookie, an ended or timed-out session,
    a second factor still to pass) is sent to the login page."""
    viewer = await load_viewer(request)
    if viewer is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return viewer


async def page_viewer(request: Request, session: AsyncSession = Depends(read_session)) -> Viewer:
    """current_viewer for a page that reads: the session is read in the page's own read session (FastAPI hands a
    request one), so the page costs one read transaction instead of two."""
    viewer = await load_viewer(request, session)
    if viewer is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return viewer


async def supervisor(viewer: Viewer = Depends(current_viewer)) -> Viewer:
    if not viewer.is_supervisor:
        raise Forbidden()
    return viewer


async def check_csrf(request: Request, viewer: Viewer) -> dict[str, Any]:
    """The submitted form, if its CSRF token (field `csrf` or header X-CSRF-Token) is this session's."""
    form = await request.form()
    given = form.get("csrf") or request.headers.get("x-csrf-token")
    if not csrf_ok(viewer.csrf, str(given) if given else None):
        raise Forbidden("The form expired or did not come from this site. Reload the page and try again.")
    return dict(form)


def render(
    request: Request, template: str, viewer: Viewer | None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    env = request.app.state.templates
    html = env.get_template(template).render(
        viewer=viewer, csrf=viewer.csrf if viewer else "", path=request.url.path, tiers=TIERS, **context
    )
    return HTMLResponse(html, status_code=status_code)


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path if next_path.startswith("/") and not next_path.startswith("//") else "/")


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def date_range(start: str | None, end: str | None, *, default_days: int = 14) -> tuple[date, date, datetime, datetime]:
    """The inclusive day range a page shows (default: the last `default_days` days) and its UTC bounds."""
    today = datetime.now(UTC).date()
    last = parse_day(end) or today
    first = parse_day(start) or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    if (last - first).days > 366:
        first = last - timedelta(days=366)
    since = datetime.combine(first, datetime.min.time(), UTC)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    return first, last, since, until


def int_or_none(value: str | None) -> int | None:
    """A query-string number (an id filter or cursor); anything else, or out of range, is no filter."""
    try:
        number = int(value) if value not in (None, "") and len(value) <= 20 else None
    except ValueError:
        return None
    return number if number is None or 0 < number <= MAX_ID else None
