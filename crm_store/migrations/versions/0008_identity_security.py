"""Identity you can trust and a web app that holds: claims verified by a one-time code, server-side dashboard
sessions, login throttles instead of lock-outs, a second factor, an audit log, and the privacy holds.

- identity_claims: an identity a customer merely claimed (an email typed in the widget, a phone typed in a chat).
  It links only when the one-time code sent to that address is entered (expiring, rate-limited, single use).
- web_sessions: dashboard sessions kept on the server, so logout, a password change or an admin ends them.
- login_throttles: failed logins per (client, account) with a growing delay; nobody's account is locked.
- agents.totp_secret (optional second factor), agents.password_changed_at.
- audit_log: exports, merges, identity links, erasures: who did what, when.
- customers.legal_hold (erasure refused while set), customers.erased_at.

Revision ID: 0008_identity_security
Revises: 0007_figures_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_identity_security"
down_revision = "0007_figures_indexes"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_claims",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BigId, sa.ForeignKey("customers.id", name="fk_identity_claims_customer_id_customers",
                                                      ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("via_channel", sa.String(32), nullable=False, server_default=""),
        sa.Column("via_address", sa.String(255), nullable=False, server_default=""),
        sa.Column("code_hash", sa.String(128), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("codes_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", When, nullable=False),
        sa.Column("sent_at", When, nullable=True),
        sa.Column("expires_at", When, nullable=True),
        sa.Column("verified_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identity_claims"),
    )
    op.create_index("ix_identity_claims_customer_status", "identity_claims", ["customer_id", "status"])
    op.create_index("ix_identity_claims_channel_address", "identity_claims", ["channel", "address"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("agent_id", BigId, sa.ForeignKey("agents.id", name="fk_web_sessions_agent_id_agents",
                                                   ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_seen_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("revoked_at", When, nullable=True),
        sa.Column("second_factor_at", When, nullable=True),
        sa.Column("client", sa.String(255), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_agent_id", "web_sessions", ["agent_id"])
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False, server_default=""),
        sa.Column("account", sa.String(255), nullable=False, server_default=""),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_failed_at", When, nullable=True),
        sa.Column("next_allowed_at", When, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttles"),
    )
    op.add_column("agents", sa.Column("totp_secret", sa.String(64), nullable=True))
    op.add_column("agents", sa.Column("password_changed_at", When, nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", When, nullable=False),
        sa.Column("agent_id", BigId, sa.ForeignKey("agents.id", name="fk_audit_log_agent_id_agents",
                                                   ondelete="SET NULL"), nullable=True),
        sa.Column("actor", sa.String(16), nullable=False, server_default="agent"),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False, server_default=""),
        sa.Column("data", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "at"])
    op.add_column("customers", sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("customers", sa.Column("erased_at", When, nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "erased_at")
    op.drop_column("customers", "legal_hold")
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_column("agents", "password_changed_at")
    op.drop_column("agents", "totp_secret")
    op.drop_table("login_throttles")
    op.drop_index("ix_web_sessions_agent_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_identity_claims_channel_address", table_name="identity_claims")
    op.drop_index("ix_identity_claims_customer_status", table_name="identity_claims")
    op.drop_table("identity_claims")
