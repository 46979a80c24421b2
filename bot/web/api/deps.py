"""What every API route shares: the bearer token check and who it acts as, a session, cursor parsing, and the
one mapping of the ticket core's refusals to HTTP status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.tickets import Actor, TicketError
from bot.web.api.schemas import decode_cursor
from bot.web.tokens import TOKEN_PREFIX, token_hash
from crm_store.repositories import web as web_repo

bearer = HTTPBearer(auto_error=False, description="A token from `tierdesk tokens create NAME`.")

STATUS_OF_ERROR = {"not_found": 404, "not_allowed": 403, "conflict": 409, "invalid": 422}
"""The API's one mapping of a TicketError's code to a status (other codes, a rating's, are conflicts: 409)."""


async def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """A valid, unrevoked token; who it acts as is kept for `api_actor`."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    ok, agent = False, None
    if token.startswith(TOKEN_PREFIX) and len(token) <= 200:
        async with request.app.state.ctx.sessions() as s:
            ok, agent = await web_repo.api_token_agent(s, token_hash(token))
    if not ok:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    request.state.api_actor = Actor.api(agent)


def api_actor(request: Request) -> Actor:
    """The caller as the ticket core sees it: the token's agent, or an API client with supervisor rights."""
    return request.state.api_actor


Caller = Annotated[Actor, Depends(api_actor)]
"""A route's caller, as a parameter: `actor: Caller`."""


async def ticket_errors() -> AsyncIterator[None]:
    """Turn a ticket-core refusal raised anywhere in a route into its status code (see STATUS_OF_ERROR); a 422
    is shaped like FastAPI's own validation errors."""
    try:
        yield
    except TicketError as exc:
        status = STATUS_OF_ERROR.get(exc.code, 409)
        if status == 422:
            raise invalid("", exc.message) from None
        raise HTTPException(status, exc.message) from None


def cursor_id(cursor: str | None) -> int | None:
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise HTTPException(400, "invalid cursor") from None


RESPONSES = {
    400: {"description": "Invalid cursor"}, 401: {"description": "Missing or invalid token"},
    403: {"description": "Not allowed for this token's agent"},
    404: {"description": "Not found"}, 409: {"description": "Conflicts with the current state"},
}


def invalid(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, so clients parse one format."""
    return HTTPException(422, [{"loc": ["body", field] if field else ["body"], "msg": message, "type": "value_error"}])
