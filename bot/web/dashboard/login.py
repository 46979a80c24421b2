"""Sign in and out of the dashboard: the password, then (when enabled) the second factor's code.

Failures are throttled per (client, account) by bot.web.login_guard, never by locking the account; an unknown
email costs the same work and gets the same answer as a wrong password.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot.tickets.access import is_admin
from bot.web import login_guard, totp
from bot.web.auth import LOGIN_CSRF_COOKIE, Viewer
from bot.web.dashboard.common import Forbidden, check_csrf, current_viewer, render
from bot.web.web_sessions import end_session, pass_second_factor, pending_agent, start_session
from crm_store.repositories import audit
from crm_store.repositories import web as web_repo

router = APIRouter(include_in_schema=False)
WRONG_CODE = "That code is not right. Enter the current code from your authenticator app."


def _secure(request: Request) -> bool:
    public = request.app.state.ctx.settings.web.public_url
    return request.url.scheme == "https" or public.startswith("https://")


def _safe_next(value: str | None) -> str:
    value = value or "/"
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _client(request: Request) -> str:
    """The throttle's client: the peer address (uvicorn puts a trusted proxy's X-Forwarded-For there)."""
    return (request.client.host if request.client else "") or "?"


def _writer(request: Request) -> Any:
    ctx = request.app.state.ctx
    return getattr(ctx, "writer_sessions", None) or ctx.sessions


def _page(request: Request, template: str, *, status: int = 200, next_path: str | None = None,
          retry_after: int = 0, **context: Any) -> Response:
    """A login-step page with a fresh double-submit CSRF token (there is no session to hold one yet)."""
    token, cookie = request.app.state.signer.login_csrf()
    target = _safe_next(next_path if next_path is not None else request.query_params.get("next"))
    response = render(request, template, None, status_code=status, login_csrf=token, next=target, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, cookie, max_age=3600, httponly=True, samesite="lax", secure=_secure(request))
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _login_page(request: Request, *, error: str = "", email: str = "", status: int = 200,
                next_path: str | None = None, retry_after: int = 0) -> Response:
    return _page(request, "login.html", status=status, next_path=next_path, retry_after=retry_after,
                 error=error, email=email)


async def _begin(request: Request, account: str) -> login_guard.Attempt:
    async with _writer(request)() as session, session.begin():
        return await login_guard.begin_attempt(session, _client(request), account)


async def _succeeded(request: Request, account: str) -> None:
    async with _writer(request)() as session, session.begin():
        await login_guard.attempt_succeeded(session, _client(request), account)


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:255].strip()
    password = str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "/")))
    if not request.app.state.signer.login_csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf", ""))):
        return _login_page(request, error="The form expired. Please try again.", email=email, status=400,
                           next_path=target)
    attempt = await _begin(request, email)
    if not attempt.allowed:
        return _login_page(request, error=login_guard.wait_message(attempt.wait_s), email=email, status=429,
                           next_path=target, retry_after=attempt.wait_s)
    async with request.app.state.ctx.sessions() as session:
        agent = await web_repo.agent_by_email(session, email) if email else None
    if not login_guard.password_matches(agent.password_hash if agent is not None else None, password):
        return _login_page(request, error=login_guard.WRONG_LOGIN, email=email, status=401, next_path=target)
    assert agent is not None
    if agent.totp_secret:
        # The failure counted for this attempt stays until the code is right: guessing codes is throttled too.
        response: Response = RedirectResponse("/login/code?next=" + quote(target), status_code=303)
        await start_session(request, response, agent)
        return response
    await _succeeded(request, email)
    response = RedirectResponse(target, status_code=303)
    await start_session(request, response, agent)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.get("/login/code")
async def code_form(request: Request) -> Response:
    """The second step: only for a session whose password was right and whose code is still missing."""
    if await pending_agent(request) is None:
        return RedirectResponse("/login", status_code=303)
    return _page(request, "login_code.html", error="")


@router.post("/login/code")
async def code(request: Request) -> Response:
    agent = await pending_agent(request)
    if agent is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    target = _safe_next(str(form.get("next", "/")))
    if not request.app.state.signer.login_csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf", ""))):
        return _page(request, "login_code.html", error="The form expired. Please try again.", status=400,
                     next_path=target)
    account = agent.email or ""
    attempt = await _begin(request, account)
    if not attempt.allowed:
        return _page(request, "login_code.html", error=login_guard.wait_message(attempt.wait_s), status=429,
                     next_path=target, retry_after=attempt.wait_s)
    if not totp.code_ok(agent.totp_secret, str(form.get("code", ""))[:32]):
        return _page(request, "login_code.html", error=WRONG_CODE, status=401, next_path=target)
    if not await pass_second_factor(request):
        return RedirectResponse("/login", status_code=303)
    await _succeeded(request, account)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, viewer: Viewer = Depends(current_viewer)) -> Response:
    await check_csrf(request, viewer)
    response = RedirectResponse("/login", status_code=303)
    await end_session(request, response)
    return response


async def admin(viewer: Viewer = Depends(current_viewer)) -> Viewer:
    if not is_admin(viewer.role):
        raise Forbidden("This page is for admins.")
    return viewer


@router.get("/login-throttles")
async def throttles_page(request: Request, viewer: Viewer = Depends(admin)) -> Response:
    """Admins see which clients wait before their next login try, and for which account."""
    async with request.app.state.ctx.sessions() as session:
        rows = await login_guard.list_throttles(session)
    return render(request, "login_throttles.html", viewer, rows=rows)


@router.post("/login-throttles/clear")
async def throttles_clear(request: Request, viewer: Viewer = Depends(admin)) -> Response:
    """Forget one account's failed logins (field `account`) or all of them (`all`), audited."""
    form = await check_csrf(request, viewer)
    account = str(form.get("account", ""))[:255]
    everything = bool(form.get("all"))
    async with _writer(request)() as session, session.begin():
        n = await login_guard.clear_throttles(session, account=account, everything=everything and not account)
        audit.record(session, "throttles_cleared", subject="login_throttles", agent_id=viewer.agent_id,
                     account=account, all=everything, count=n)
    return RedirectResponse("/login-throttles", status_code=303)
