"""SLA clocks as plain functions: deadlines (optionally counted in business hours) and breach/escalation decisions.

Escalation levels are tied to what was breached, so each level happens once: a missed first response raises a
ticket to level 1, a missed resolution to level 2 (straight to 2 when both are missed at once). The worker
applies a decision only if the ticket is still at the level the decision was made from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACTIVE_STATUSES = ("open", "pending")
FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
LEVEL_OF = {FIRST_RESPONSE: 1, RESOLUTION: 2}


def _parse_time(raw: str) -> time:
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"business hours: {raw!r} is not a time like 09:00") from None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When SLA clocks run: local opening hours on some weekdays (ISO: Monday = 1), minus holidays."""

    timezone: str
    days: frozenset[int]
    start: time
    end: time
    holidays: frozenset[date] = frozenset()
    tiers: frozenset[str] | None = None
    """Tiers whose clocks follow these hours; None: all tiers."""

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"business hours: unknown timezone {self.timezone!r}") from None
        if not self.days or not self.days <= set(range(1, 8)):
            raise ValueError("business hours: days must be ISO weekdays 1 (Monday) to 7 (Sunday)")
        if self.start >= self.end:
            raise ValueError("business hours: start must be before end")

    @classmethod
    def from_dict(cls, data: dict) -> BusinessHours:
        tiers = data.get("tiers")
        return cls(
            timezone=str(data.get("timezone", "UTC")),
            days=frozenset(int(d) for d in data.get("days", (1, 2, 3, 4, 5))),
            start=_parse_time(str(data.get("start", "09:00"))),
            end=_parse_time(str(data.get("end", "17:00"))),
            holidays=frozenset(date.fromisoformat(str(d)) for d in data.get("holidays", ())),
            tiers=frozenset(tiers) if tiers is not None else None,
        )

    def covers(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers

    def _open_day(self, day: date) -> bool:
        return day.isoweekday() in self.days and day not in self.holidays

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `start` has passed (UTC, timezone-aware)."""
        zone = ZoneInfo(self.timezone)
        local = start.astimezone(zone)
        remaining = duration
        day = local.date()
        for _ in range(366 * 3):
            if self._open_day(day):
                opens = datetime.combine(day, self.start, zone)
                closes = datetime.combine(day, self.end, zone)
                begin = max(local, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), zone)
        raise ValueError("business hours leave no open time within three years")


def deadline(start: datetime, target: timedelta, hours: BusinessHours | None, tier: str) -> datetime:
    """When a target of `target` counted from `start` falls due, in business time if the tier follows hours."""
    if hours is not None and hours.covers(tier):
        return hours.add(start, target)
    return start + target


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """What the SLA clock needs of a ticket."""

    id: int
    status: str
    priority: int
    escalation_level: int
    first_response_due: datetime | None
    first_responded_at: datetime | None
    resolution_due: datetime | None
    assignee_id: int | None = None
    clocked: bool = True
    """Whether the ticket runs SLA clocks at all (handed to a person, not imported history)."""


@dataclass(frozen=True, slots=True)
class Escalation:
    ticket_id: int
    breached: tuple[str, ...]
    old_level: int
    new_level: int
    old_priority: int
    new_priority: int
    reassign: bool
    """The assignee is not online: hand the ticket to someone else (or back to the queue)."""


def breaches(ticket: SlaTicket, now: datetime) -> tuple[str, ...]:
    """Which targets the ticket has missed by `now`."""
    if not ticket.clocked or ticket.status not in ACTIVE_STATUSES:
        return ()
    missed = []
    if ticket.first_response_due and ticket.first_responded_at is None and ticket.first_response_due < now:
        missed.append(FIRST_RESPONSE)
    if ticket.resolution_due and ticket.resolution_due < now:
        missed.append(RESOLUTION)
    return tuple(missed)


def plan_escalation(ticket: SlaTicket, now: datetime, assignee_status: str | None) -> Escalation | None:
    """The escalation due now, or None when the ticket is within its targets or already escalated that far."""
    missed = breaches(ticket, now)
    if not missed:
        return None
    level = max(LEVEL_OF[kind] for kind in missed)
    if level <= ticket.escalation_level:
        return None
    return Escalation(
        ticket_id=ticket.id,
        breached=missed,
        old_level=ticket.escalation_level,
        new_level=level,
        old_priority=ticket.priority,
        new_priority=max(1, ticket.priority - (level - ticket.escalation_level)),
        reassign=ticket.assignee_id is not None and assignee_status != "online",
    )
