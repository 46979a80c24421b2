"""Jinja filters: how numbers, times and long texts look on the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


def dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def dt_in(zone_name: str) -> Callable[[datetime | None], str]:
    """The `dt` filter for the business's time zone: stored times are UTC (a naive one is read as UTC); the
    page names the zone once, in its header."""
    zone = ZoneInfo(zone_name)

    def show(value: datetime | None) -> str:
        if value is None:
            return "—"
        return dt((value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone))

    return show


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(float(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def short(text: str | None, limit: int = 160) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


FILTERS = {"dt": dt, "duration": duration, "number": number, "short": short, "percent": percent}
