"""REST API bearer tokens: shown once at creation, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.repositories import web as web_repo

TOKEN_PREFIX = "tdk_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, name: str, *, agent_id: int | None = None) -> str:
    """Create a token named `name` and return it in clear (the only time it exists in clear).

    The caller commits. `tierdesk tokens create NAME` prints what this returns.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a token needs a name of 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await web_repo.add_api_token(session, name=name, token_hash=token_hash(token), agent_id=agent_id)
    return token
