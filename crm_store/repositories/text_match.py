"""The words of a contact-log search, as each database's text index understands them.

PostgreSQL reads the stored tsvector `contacts.search_tsv` (migration 0005): every word of the query must start a
word of the text; a run of Chinese/Japanese/Korean characters (no spaces between words) is a phrase of single
characters, i.e. a substring. SQLite reads the FTS5 trigram index `contacts_fts`: every term of the query must
occur in the text as a substring, case-folded; terms shorter than three characters have no trigram and are only
checked row by row.
"""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact
from crm_store.repositories._sql import dialect

# Must match the migration's character class: each of these is spaced out, so it is a lexeme of its own.
SPACED = "\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff"
MAX_TERMS = 8
_WORD = re.compile(r"\w+", re.UNICODE)
_RUN = re.compile(f"[{SPACED}]+|[^{SPACED}]+")
_SPACED_RUN = re.compile(f"[{SPACED}]+")
_CFG = "'simple'::regconfig"
STATS_TTL_S = 600.0
_STATS: weakref.WeakKeyDictionary[Any, tuple[float, float, dict[str, float]]] = weakref.WeakKeyDictionary()
"""Per engine: when read, the contacts' row estimate and the share of contacts with each common lexeme."""


def _lexeme(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def to_tsquery_text(q: str) -> str:
    """`to_tsquery` input for q: a prefix per word, a phrase of characters per run of CJK; '' if q has no word."""
    parts: list[str] = []
    for word in _WORD.findall(q)[:MAX_TERMS]:
        for run in _RUN.findall(word):
            if _SPACED_RUN.fullmatch(run):
                parts.append("(" + " <-> ".join(_lexeme(ch) for ch in run) + ")")
            else:
                parts.append(_lexeme(run) + ":*")
    return " & ".join(parts)


def estimated_share(q: str, shares: dict[str, float]) -> float:
    """The share of contacts matching q by the planner's statistics (common lexemes only; a word they do not list
    counts as rare), words taken as independent."""
    total = 1.0
    for word in _WORD.findall(q.lower())[:MAX_TERMS]:
        for run in _RUN.findall(word):
            if _SPACED_RUN.fullmatch(run):
                share = min(shares.get(ch, 0.0) for ch in run)
            else:
                share = min(1.0, sum(f for lexeme, f in shares.items() if lexeme.startswith(run)))
            total *= share
    return total


async def _lexeme_shares(session: AsyncSession) -> tuple[float, dict[str, float]]:
    engine = session.get_bind()
    cached = _STATS.get(engine)
    if cached is not None and time.monotonic() - cached[0] < STATS_TTL_S:
        return cached[1], cached[2]
    row = (await session.execute(text(
        "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs FROM pg_class c "
        "LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = 'contacts' "
        "AND s.attname = 'search_tsv' WHERE c.oid = 'contacts'::regclass"
    ))).first()
    rows, shares = 0.0, {}
    if row is not None:
        rows = max(float(row[0] or 0), 0.0)
        shares = dict(zip(row[1] or [], row[2] or [], strict=False))
    _STATS[engine] = (time.monotonic(), rows, shares)
    return rows, shares


async def estimated_log_rows(session: AsyncSession) -> float:
    """The contacts' row count by the planner's statistics (PostgreSQL), read with the lexeme shares."""
    return (await _lexeme_shares(session))[0]


def fts_terms(q: str) -> list[str]:
    """The whitespace-separated terms of q (SQLite matches each as a substring)."""
    return q.split()[:MAX_TERMS]


def contains_pattern(term: str) -> str:
    """A LIKE pattern (escape character backslash) matching text that contains `term` as written."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"





def _substring(column: Any, term: str) -> Any:
    # SQLite's LIKE folds ASCII case only: also try the usual spellings of other scripts (lower, upper, title).
    variants = {term} if term.isascii() else {term, term.lower(), term.upper(), term.capitalize()}
    return or_(*(column.like(contains_pattern(v), escape="\\") for v in sorted(variants)))


@dataclass(frozen=True)
class TextQuery:
    """A search string, parsed once for the per-row check and the index probe."""

    q: str
    postgres: bool

    @property
    def tsquery(self) -> str:
        return to_tsquery_text(self.q)

    def row_match(self, contact: Any, tsv: Any = None) -> Any:
        """The condition one contact row must meet (`tsv` is the row's search_tsv on PostgreSQL)."""
        if self.postgres:
            query = self.tsquery
            if not query:  # no word at all (punctuation only): a plain substring
                return contact.text.ilike(contains_pattern(self.q), escape="\\")
            column = tsv if tsv is not None else literal_column("contacts.search_tsv")
            return column.op("@@")(func.to_tsquery(literal_column(_CFG), query))
        return and_(*(_substring(contact.text, t) for t in fts_terms(self.q)))

    async def estimated_matches(self, session: AsyncSession) -> float | None:
        """How many contacts match by the planner's statistics (PostgreSQL; None elsewhere or for no word). A
        word they do not list counts as rare; counting a common word in the GIN index costs tens of milliseconds,
        a rare one next to nothing."""
        if not self.postgres or not self.tsquery:
            return None
        rows, shares = await _lexeme_shares(session)
        return rows * estimated_share(self.q, shares)

    async def probe(self, session: AsyncSession, cap: int) -> list[int] | None:
        """Ids of up to cap + 1 contacts the text index finds for q (SQLite: for one of its terms; every term is
        checked again on the rows); None when the index cannot answer (no indexable word)."""
        if self.postgres:
            query = self.tsquery
            if not query:
                return None
            # With a LIMIT and a prefix the statistics cannot size (0.02 of the rows by default) the planner prefers a
            # sequential scan expecting to stop early; for a rare word it reads the whole table. Only the GIN index
            # may answer here.
            previous = (await session.execute(text(
                "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)"
            ))).scalar_one()
            try:
                stmt = select(Contact.id).where(self.row_match(Contact)).limit(cap + 1)
                return list((await session.scalars(stmt)).all())
            finally:
                await session.execute(text("SELECT set_config('enable_seqscan', :v, true)"), {"v": previous})
        # One term at a time: a rare term settles it at once, and intersecting the trigram lists of several common
        # terms would cost more than walking the log.
        ids: list[int] | None = None
        for term in fts_terms(self.q):
            if len(term) < 3:
                continue
            rows = await session.execute(
                text("SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :m LIMIT :n"),
                {"m": '"' + term.replace('"', '""') + '"', "n": cap + 1},
            )
            ids = [int(r[0]) for r in rows.all()]
            if len(ids) <= cap:
                return ids
        return ids


def text_query(session: AsyncSession, q: str) -> TextQuery:
    return TextQuery(q=q, postgres=dialect(session) == "postgresql")
