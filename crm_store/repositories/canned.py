"""Canned responses: snippets an agent sends by name, in Telegram (`/canned`) and in the web inbox.

A name may have one text per language and a default (language ""); `choose` picks the text for a customer's
language, so the desk and the web agree on which version a customer gets. Writes happen in the caller's
transaction; `put` replaces the text of an existing (name, language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import CannedResponse, now

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
MAX_TEXT = 4000


class BadCanned(ValueError):
    """A name, language or text the store will not keep; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class Canned:
    name: str
    language: str
    text: str


def clean_name(name: str) -> str:
    value = name.strip().lower()
    if not NAME.fullmatch(value):
        raise BadCanned(f"a canned response name is 1-64 letters, digits, '-', '_' or '.', not {name[:70]!r}")
    return value


def clean_language(language: str | None) -> str:
    value = (language or "").strip().lower().replace("_", "-")
    if value and not LANGUAGE.fullmatch(value):
        raise BadCanned(f"a language is a code such as 'de' or 'pt-br', not {language[:20]!r}")
    return value


def choose(versions: list[Canned], language: str | None) -> Canned | None:
    """The version for `language`: exact code, then its primary subtag ('de' for 'de-at'), then the default,
    then the first version there is (a snippet written only in English still answers a French customer)."""
    if not versions:
        return None
    wanted = (language or "").strip().lower().replace("_", "-")
    by_language = {v.language: v for v in versions}
    for key in (wanted, wanted.split("-")[0], ""):
        if key in by_language:
            return by_language[key]
    return sorted(versions, key=lambda v: v.language)[0]


def _canned(row: CannedResponse) -> Canned:
    return Canned(row.name, row.language, row.text)


async def put(
    session: AsyncSession, name: str, text: str, *, language: str | None = None, agent_id: int | None = None
) -> Canned:
    """Add a snippet, or replace the text of the same (name, language)."""
    name, language = clean_name(name), clean_language(language)
    text = text.strip()
    if not text:
        raise BadCanned("a canned response needs a text")
    if len(text) > MAX_TEXT:
        raise BadCanned(f"a canned response is at most {MAX_TEXT} characters, this one has {len(text)}")
    row = await session.scalar(
        select(CannedResponse).where(CannedResponse.name == name, CannedResponse.language == language)
    )
    if row is None:
        row = CannedResponse(name=name, language=language, text=text, created_by=agent_id)
        session.add(row)
    else:
        row.text, row.updated_at = text, now()
    await session.flush()
    return _canned(row)


async def list_all(session: AsyncSession) -> list[Canned]:
    """Every version, by name then language (the default first)."""
    rows = await session.scalars(select(CannedResponse).order_by(CannedResponse.name, CannedResponse.language))
    return [_canned(r) for r in rows]


async def versions(session: AsyncSession, name: str) -> list[Canned]:
    try:
        name = clean_name(name)
    except BadCanned:
        return []
    rows = await session.scalars(
        select(CannedResponse).where(CannedResponse.name == name).order_by(CannedResponse.language)
    )
    return [_canned(r) for r in rows]


async def pick(session: AsyncSession, name: str, language: str | None) -> Canned | None:
    """The text of `name` for a customer speaking `language` (see `choose`); None when there is no such name."""
    return choose(await versions(session, name), language)


async def remove(session: AsyncSession, name: str, *, language: str | None = None) -> int:
    """Delete one language's version, or every version of the name when `language` is None; how many went."""
    stmt = delete(CannedResponse).where(CannedResponse.name == clean_name(name))
    if language is not None:
        stmt = stmt.where(CannedResponse.language == clean_language(language))
    result = await session.execute(stmt)
    return result.rowcount or 0
