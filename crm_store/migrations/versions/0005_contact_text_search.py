"""Contact-log text search the database can answer from an index, for common, rare and absent words alike.

PostgreSQL: a stored generated tsvector column with its own GIN index replaces the expression index of 0002.
Characters of scripts written without spaces (Chinese, Japanese, Korean) are spaced out before parsing, so each
is a lexeme of its own and a run of them is found as a phrase (`退 <-> 款`), i.e. as a substring.

SQLite: an FTS5 trigram index (substring match, Unicode case folding, any script) over contacts.text, an
external-content table kept in sync by triggers and backfilled here. A later batch migration that recreates the
contacts table drops these triggers and must create them again.

The query side is crm_store.repositories.contact_search; keep the expressions here and there the same.

Revision ID: 0005_contact_text_search
Revises: 0004_ticket_figures_index
"""

from alembic import op

revision = "0005_contact_text_search"
down_revision = "0004_ticket_figures_index"
branch_labels = None
depends_on = None

# Must match contact_search.SPACED (the characters each made a word of their own).
_SPACED = r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]"
PG_TSV = (
    "to_tsvector('simple'::regconfig, regexp_replace(coalesce(text, ''), '(" + _SPACED + r")', ' \1 ', 'g'))"
)

SQLITE_UP = (
    "CREATE VIRTUAL TABLE contacts_fts USING fts5(text, content='contacts', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER contacts_fts_ai AFTER INSERT ON contacts BEGIN "
    "INSERT INTO contacts_fts (rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER contacts_fts_ad AFTER DELETE ON contacts BEGIN "
    "INSERT INTO contacts_fts (contacts_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER contacts_fts_au AFTER UPDATE OF text ON contacts BEGIN "
    "INSERT INTO contacts_fts (contacts_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO contacts_fts (rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE contacts ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({PG_TSV}) STORED")
        op.execute("CREATE INDEX ix_contacts_search_tsv ON contacts USING gin (search_tsv)")
        op.execute("DROP INDEX IF EXISTS ix_contacts_text_fts")
        op.execute("ANALYZE contacts")
        return
    for statement in SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_contacts_text_fts ON contacts USING gin (to_tsvector('simple'::regconfig, text))")
        op.execute("DROP INDEX IF EXISTS ix_contacts_search_tsv")
        op.execute("ALTER TABLE contacts DROP COLUMN IF EXISTS search_tsv")
        return
    for trigger in ("contacts_fts_ai", "contacts_fts_ad", "contacts_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS contacts_fts")
