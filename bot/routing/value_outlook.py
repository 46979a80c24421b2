"""The customer card's forward look in one line: predicted 12-month value, probability alive, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ValueOutlook:
    predicted_value: float | None
    p_alive: float | None
    reason: str

    def line(self) -> str:
        if self.predicted_value is None:
            return f"Outlook: {self.reason}"
        alive = "—" if self.p_alive is None else f"{self.p_alive:.0%}"
        return (
            f"Outlook: {self.predicted_value:,.2f} predicted over 12 months · probability alive {alive} — {self.reason}"
        )


def value_outlook(
    predicted: float | None, p_alive: float | None, orders: int, days_since_last: float | None
) -> ValueOutlook:
    """Why the value model says what it says, from the customer's orders and the days since the last one."""
    if orders <= 0:
        return ValueOutlook(None, None, "no purchases yet, nothing to forecast")
    if predicted is None:
        return ValueOutlook(None, None, "no forecast yet: the next tier run makes one")
    last = "" if days_since_last is None else f", the last {days_since_last:,.0f} days ago"
    if orders == 1:
        why = f"one order so far{last}: forecast from how one-time buyers go on"
    elif p_alive is not None and p_alive < 0.5:
        why = f"{orders} orders{last}: a long silence for someone who bought that often"
    else:
        why = f"{orders} orders{last}: buying at their usual pace"
    return ValueOutlook(predicted, p_alive, why)
