"""Tier history: each run's tier per customer, with the predicted 12-month value and probability alive.

tier_assignments keeps every run's result for every customer, so the tiers page can show who moved between two
runs (the migration matrix), the trend of tier sizes, and which valuable customers' probability alive fell.

Revision ID: 0012_tier_history
Revises: 0011_workspace
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_tier_history"
down_revision = "0011_workspace"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tier_assignments",
        sa.Column(
            "run_id",
            BigId,
            sa.ForeignKey("tier_runs.id", name="fk_tier_assignments_run_id_tier_runs", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "customer_id",
            BigId,
            sa.ForeignKey("customers.id", name="fk_tier_assignments_customer_id_customers", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("computed_tier", sa.String(20), nullable=False),
        sa.Column("predicted_value", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name="pk_tier_assignments"),
    )
    op.create_index("ix_tier_assignments_customer_run", "tier_assignments", ["customer_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_tier_assignments_customer_run", table_name="tier_assignments")
    op.drop_table("tier_assignments")
