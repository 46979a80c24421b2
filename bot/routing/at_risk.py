"""Valuable customers at risk: who a supervisor should call before they go, and why. A plain function on plain
rows; the tier service gathers them and the dashboard and `/atrisk` show the same list."""

from __future__ import annotations

from dataclasses import dataclass

VALUABLE_TIERS = ("VIP", "important")
ALIVE_DROP = 0.2
"""A fall in probability alive of at least this much between two runs is a warning."""
ALIVE_LOW = 0.5
LOW_CSAT = 2
"""A rating at or below this (1-5) is a warning."""
SIGNAL_DAYS = 30


@dataclass(frozen=True, slots=True)
class CustomerSignals:
    customer_id: int
    name: str
    tier: str
    predicted_value: float | None
    p_alive: float | None
    p_alive_before: float | None
    """In the previous run, or None when the customer was not in it."""
    complaints: int = 0
    lowest_csat: int | None = None
    key_account_manager: str | None = None


@dataclass(frozen=True, slots=True)
class AtRisk:
    customer_id: int
    name: str
    tier: str
    predicted_value: float | None
    p_alive: float | None
    key_account_manager: str | None
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "tier": self.tier,
            "predicted_value_12m": None if self.predicted_value is None else round(self.predicted_value, 2),
            "p_alive": None if self.p_alive is None else round(self.p_alive, 3),
            "key_account_manager": self.key_account_manager,
            "reasons": list(self.reasons),
        }


def risk_reasons(c: CustomerSignals) -> tuple[str, ...]:
    """Why this customer is at risk, in words; empty when they are not."""
    reasons = []
    if c.p_alive is not None and c.p_alive_before is not None and c.p_alive_before - c.p_alive >= ALIVE_DROP:
        reasons.append(f"probability alive fell from {c.p_alive_before:.0%} to {c.p_alive:.0%}")
    elif c.p_alive is not None and c.p_alive < ALIVE_LOW:
        reasons.append(f"probability alive is {c.p_alive:.0%}")
    if c.complaints:
        reasons.append(f"{c.complaints} complaint{'s' if c.complaints > 1 else ''} in {SIGNAL_DAYS} days")
    if c.lowest_csat is not None and c.lowest_csat <= LOW_CSAT:
        reasons.append(f"rated {c.lowest_csat}/5 recently")
    return tuple(reasons)


def customers_at_risk(rows: list[CustomerSignals], *, limit: int = 100) -> list[AtRisk]:
    """Customers of the valuable tiers with a warning, the most valuable first (then by id)."""
    found = []
    for c in rows:
        if c.tier not in VALUABLE_TIERS:
            continue
        reasons = risk_reasons(c)
        if reasons:
            found.append(
                AtRisk(c.customer_id, c.name, c.tier, c.predicted_value, c.p_alive, c.key_account_manager, reasons)
            )
    found.sort(key=lambda r: (-(r.predicted_value or 0.0), r.customer_id))
    return found[:limit]
