"""Figures for supervisors' tools: the same numbers as the dashboard's overview and the desk's /report, from the
one definition in `crm_store.repositories.figures` (its docstring says what each figure means)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets import Actor
from bot.web.api.deps import api_actor
from bot.web.sessions import read_session
from crm_store.repositories.figures import figures

router = APIRouter(tags=["reports"])
DEFAULT_DAYS = 14
MAX_SPAN = timedelta(days=367)


class DurationsOut(BaseModel):
    n: int
    p50: float | None
    p90: float | None


class SliceOut(BaseModel):
    """The figures of one group of counted tickets opened in the range; durations in seconds."""

    conversations: int
    handed_off: int
    bot_resolved: int
    bot_resolved_share: float | None
    breached: int
    csat: float | None
    csat_n: int
    first_response: DurationsOut
    resolution: DurationsOut


class TierSliceOut(SliceOut):
    tier: str


class ChannelSliceOut(SliceOut):
    channel: str


class AgentFiguresOut(BaseModel):
    id: int
    name: str
    role: str
    status: str
    email: str | None
    tiers: list[str]
    queues: list[str]
    capacity: int
    load: int
    handled: int
    replies: int
    tickets: SliceOut


class FiguresOut(BaseModel):
    since: datetime
    until: datetime
    at: datetime
    total: SliceOut
    by_tier: list[TierSliceOut]
    by_channel: list[ChannelSliceOut]
    unassigned: SliceOut
    agents: list[AgentFiguresOut]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def figure_range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC (a time without a zone is UTC). By default the dashboard's: the last fourteen days,
    today included."""
    try:
        if until is None:
            until = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time.min, UTC)
        until = _utc(until)
        since = _utc(since) if since is not None else until - timedelta(days=DEFAULT_DAYS)
    except OverflowError:
        raise HTTPException(422, [{"loc": ["query", "since"], "msg": "out of range", "type": "value_error"}]) from None
    if since >= until:
        raise HTTPException(422, [{"loc": ["query", "since"], "msg": "since must be before until",
                                   "type": "value_error"}])
    if until - since > MAX_SPAN:
        raise HTTPException(422, [{"loc": ["query", "since"], "msg": "a range covers at most 367 days",
                                   "type": "value_error"}])
    return since, until


@router.get("/reports/figures", response_model=FiguresOut,
            responses={401: {"description": "Missing or invalid token"},
                       403: {"description": "The token acts as an agent who is not a supervisor"}})
async def get_figures(
    since: Annotated[datetime | None, Query(description="start (inclusive); a time without a zone is UTC")] = None,
    until: Annotated[datetime | None, Query(description="end (exclusive); default: the end of today")] = None,
    s: AsyncSession = Depends(read_session), actor: Actor = Depends(api_actor),
) -> FiguresOut:
    """Conversations, bot-resolved, first-response and resolution p50/p90, SLA breaches and CSAT of the tickets
    opened in [since, until), in total, by tier, by channel and by agent; agents' replies, handled and load.
    For supervisors, as the overview is: a token made for an agent who is not one gets 403."""
    if not actor.is_supervisor:
        raise HTTPException(403, "the figures are for supervisors")
    start, end = figure_range(since, until)
    return FiguresOut.model_validate((await figures(s, start, end)).as_dict())
