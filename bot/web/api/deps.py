"""What every API route shares: the bearer token check, a session, cursor parsing, error mapping."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.web.api.schemas import decode_cursor
from bot.web.tokens import token_is_valid

bearer = HTTPBearer(auto_error=False, description="A token from `tierdesk tokens create NAME`.")






async def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    async with request.app.state.ctx.sessions() as s:
        ok = await token_is_valid(s, credentials.credentials)
    if not ok:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})


def cursor_id(cursor: str | None) -> int | None:
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise HTTPException(400, "invalid cursor") from None


RESPONSES = {
    400: {"description": "Invalid cursor"}, 401: {"description": "Missing or invalid token"},
    404: {"description": "Not found"}, 409: {"description": "Conflicts with the current state"},
}


def invalid(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, so clients parse one format."""
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])
