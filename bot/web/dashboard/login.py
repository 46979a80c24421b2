"""Sign in and out of the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_MAX_AGE_S, Viewer, verify_password
from bot.web.dashboard.common import check_csrf, current_viewer, render
from crm_store.repositories import web as web_repo

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    public = request.app.state.ctx.settings.web.public_url
    return request.url.scheme == "https" or public.startswith("https://")


def _safe_next(value: str | None) -> str:
    value = value or "/"
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _login_page(request: Request, *, error: str = "", email: str = "", status: int = 200) -> Response:
    token, cookie = request.app.state.signer.login_csrf()
    response = render(request, "login.html", None, status_code=status, login_csrf=token, error=error, email=email,
                      next=_safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_CSRF_COOKIE, cookie, max_age=3600, httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:255].strip()
    password = str(form.get("password", ""))[:1024]
    signer = request.app.state.signer
    if not signer.login_csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf", ""))):
        return _login_page(request, error="The form expired. Please try again.", email=email, status=400)
    ip = request.client.host if request.client else "?"
    limiter = request.app.state.limiter
    if await limiter.blocked(ip, email):
        return _login_page(request, error="Too many failed attempts. Wait 15 minutes and try again.", email=email,
                           status=429)
    async with request.app.state.ctx.sessions() as session:
        agent = await web_repo.agent_by_email(session, email) if email else None
    if agent is None or not verify_password(agent.password_hash, password):
        await limiter.failed(ip, email)
        return _login_page(request, error="Wrong email or password.", email=email, status=401)
    await limiter.succeeded(ip, email)
    cookie, _ = signer.issue(agent.id, agent.password_hash)
    target = _safe_next(str(form.get("next", "/")))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_MAX_AGE_S, httponly=True, samesite="lax",
                        secure=_secure(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, viewer: Viewer = Depends(current_viewer)) -> Response:
    await check_csrf(request, viewer)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
