"""Dashboard search: full-text index on contact text (PostgreSQL) and the contact log by agent.

Revision ID: 0002_dashboard_search
Revises: 0001
"""

from alembic import op

revision = "0002_dashboard_search"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_agent_created", "contacts", ["agent_id", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Superseded by the stored search_tsv column of 0005 (crm_store.repositories.text_match).
        op.execute("CREATE INDEX ix_contacts_text_fts ON contacts USING gin (to_tsvector('simple'::regconfig, text))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_contacts_text_fts")
    op.drop_index("ix_contacts_agent_created", table_name="contacts")
