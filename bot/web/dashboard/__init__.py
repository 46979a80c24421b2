"""The supervisor dashboard: server-rendered pages behind a login."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from bot.tickets import TicketError
from bot.web.dashboard import contacts, customers, login, overview, team, tickets, tiers
from bot.web.dashboard.common import Forbidden, LoginRequired, login_url, refused_page, render
from crm_store.errors import NotFound


def install(app: FastAPI) -> None:
    from bot.web.inbox import live, pages, uploads

    for module in (login, overview, contacts, customers, tickets, team, tiers, pages, live, uploads):
        app.include_router(module.router)
    app.add_exception_handler(TicketError, refused_page)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", None, status_code=403, title="Not allowed", message=exc.reason)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            from fastapi.responses import JSONResponse

            return JSONResponse({"detail": str(exc)}, status_code=404)
        return render(request, "error.html", None, status_code=404, title="Not found", message=str(exc))
