"""The words of a contact-log search, as each database's text index understands them.

PostgreSQL reads the stored tsvector `contacts.search_tsv` (migration 0005): every word of the query must start a
word of the text; a run of Chinese/Japanese/Korean characters (no spaces between words) is a phrase of single
characters, i.e. a substring. SQLite reads the FTS5 trigram index `contacts_fts`: every term of the query must
occur in the text as a substring, case-folded; terms shorter than three characters have no trigram and are only
checked row by row.
"""

from __future__ import annotations

import re
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


def fts_terms(q: str) -> list[str]:
    """The whitespace-separated terms of q (SQLite matches each as a substring)."""
    return q.split()[:MAX_TERMS]


def to_fts_match(q: str) -> str:
    """An FTS5 MATCH expression over the terms the trigram index can answer (three characters or more)."""
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in fts_terms(q) if len(t) >= 3)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _substring(column: Any, term: str) -> Any:
    # SQLite's LIKE folds ASCII case only: also try the usual spellings of other scripts (lower, upper, title).
    variants = {term} if term.isascii() else {term, term.lower(), term.upper(), term.capitalize()}
    return or_(*(column.like(_like(v), escape="\\") for v in sorted(variants)))


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
                return contact.text.ilike(_like(self.q), escape="\\")
            column = tsv if tsv is not None else literal_column("contacts.search_tsv")
            return column.op("@@")(func.to_tsquery(literal_column(_CFG), query))
        return and_(*(_substring(contact.text, t) for t in fts_terms(self.q)))

    async def probe(self, session: AsyncSession, cap: int) -> list[int] | None:
        """Ids of up to cap + 1 contacts whose text matches, read from the text index alone; None when the index
        cannot answer this query (no indexable word)."""
        if self.postgres:
            query = self.tsquery
            if not query:
                return None
            # No ORDER BY: the planner's choice is a GIN bitmap scan (or, for a word its statistics call common, a
            # sequential scan that stops after cap + 1 rows).
            stmt = select(Contact.id).where(self.row_match(Contact)).limit(cap + 1)
            return list((await session.scalars(stmt)).all())
        match = to_fts_match(self.q)
        if not match:
            return None
        rows = await session.execute(
            text("SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :m LIMIT :n"), {"m": match, "n": cap + 1}
        )
        return [int(r[0]) for r in rows.all()]


def text_query(session: AsyncSession, q: str) -> TextQuery:
    return TextQuery(q=q, postgres=dialect(session) == "postgresql")
