"""The REST API's request and response shapes; bounds here keep any input away from the database's limits."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from bot.core.messages import clean_text
from bot.tickets import MAX_ID
from crm_store.models import TICKET_STATUSES, TIERS

T = TypeVar("T")


def Choice(values: tuple[str, ...], what: str, hint: str = "") -> object:
    """One of `values` (an enum in the schema); anything else is a 422 that names the value and the choices."""
    choices = ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]

    def check(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
            raise PydanticCustomError(
                "unknown_choice", "{value} is not a {what} (use {choices}){hint}",
                {"value": shown, "what": what, "choices": choices, "hint": hint},
            ) from None

    return Annotated[Literal[values], WrapValidator(check)]


Tier = Choice(TIERS, "tier")
TicketStatus = Choice(TICKET_STATUSES, "ticket status")
SettableStatus = Choice(("open", "pending"), "status a PATCH can set", "; close with POST /tickets/{id}/close")


def _clean(value: str) -> str:
    return clean_text(value, 100_000)[0]


def Text(max_length: int, min_length: int = 0) -> object:
    """A string without NULs or control characters (neither database stores them), bounded in length."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(_clean)]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerOut(Out):
    id: int
    name: str
    tier: str
    manual_tier: str | None
    tier_reason: str
    external_ref: str | None
    language: str | None
    lifecycle_stage: str
    key_account_manager_id: int | None
    merged_into_id: int | None
    created_at: datetime
    updated_at: datetime


class ValueOutlookOut(BaseModel):
    customer_id: int
    predicted_value_12m: float | None
    """Predicted net spend over the next 12 months (BG/NBD + Gamma-Gamma); None before a forecast exists."""
    p_alive: float | None
    """Probability the customer is still buying."""
    reason: str


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text(255) = ""  # type: ignore[valid-type]
    external_ref: Text(255, 1) | None = None  # type: ignore[valid-type]
    language: Text(8, 2) | None = None  # type: ignore[valid-type]
    lifecycle_stage: Text(32, 1) = "lead"  # type: ignore[valid-type]
    manual_tier: Tier | None = None  # type: ignore[valid-type]
    key_account_manager_id: Id | None = None


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text(255) | None = None  # type: ignore[valid-type]
    external_ref: Text(255, 1) | None = None  # type: ignore[valid-type]
    language: Text(8, 2) | None = None  # type: ignore[valid-type]
    lifecycle_stage: Text(32, 1) | None = None  # type: ignore[valid-type]
    manual_tier: Tier | None = None  # type: ignore[valid-type]
    key_account_manager_id: Id | None = None


class IdentityOut(Out):
    id: int
    customer_id: int
    channel: str
    address: str
    display_name: str
    created_at: datetime


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    address: Text(255, 1)  # type: ignore[valid-type]
    display_name: Text(255) = ""  # type: ignore[valid-type]


class ContactOut(Out):
    id: int
    channel: str
    external_id: str
    direction: str
    author: str
    address: str
    customer_id: int | None
    agent_id: int | None
    ticket_id: int | None
    text: str
    subject: str | None
    nlu: dict | None
    desk: bool = False
    """Desk traffic (an agent command, a notice to an agent), listed only with `include_desk`."""
    created_at: datetime


class TicketOut(Out):
    id: int
    customer_id: int
    channel: str
    status: str
    priority: int
    tier_at_open: str
    queue: str
    assignee_id: int | None
    subject: str
    intent: str | None
    handoff_reason: str | None
    source: str
    tags: Annotated[list[str], BeforeValidator(lambda v: list(v or []))] = []
    snoozed_until: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_responded_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    sla_breached_at: datetime | None
    csat: int | None
    resolution: str | None
    created_at: datetime
    updated_at: datetime


ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class TicketIn(BaseModel):
    """A new ticket: routed like any other, so the customer's tier decides its queue, priority and SLA times."""

    model_config = ConfigDict(extra="forbid")
    customer_id: Id
    subject: Text(255) = ""  # type: ignore[valid-type]
    channel: ChannelName | None = Field(
        None, description="Where replies go: a channel the customer has an address on, or a known channel name. "
                          "Default: the channel of the customer's first address.")
    assignee_id: Id | None = None


Tag = Annotated[str, Field(min_length=1, max_length=40)]


class TicketPatch(BaseModel):
    """Changes to a ticket, each one a ticket-core operation, in the order listed (close with POST .../close)."""

    model_config = ConfigDict(extra="forbid")
    subject: Text(255, 1) | None = None  # type: ignore[valid-type]
    queue: Text(64, 1) | None = Field(None, description="Move to another queue: it waits there, unassigned.")  # type: ignore[valid-type]
    priority: Annotated[int, Field(ge=1, le=5)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = Field(None, description="The ticket's tags, all of them.")
    status: SettableStatus | None = Field(  # type: ignore[valid-type]
        None, description="pending: waiting for the customer; open: reopen a solved or closed ticket.")
    snoozed_until: AwareDatetime | None = Field(
        None, description="With status pending: the ticket comes back to its agent at this time.")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Id | None = None


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Text(2000) = ""  # type: ignore[valid-type]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text(10_000, 1)  # type: ignore[valid-type]


class TicketNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text(10_000, 1)  # type: ignore[valid-type]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text(10_000, 1)  # type: ignore[valid-type]
    ticket_id: Id | None = None


class NoteOut(Out):
    id: int
    customer_id: int
    ticket_id: int | None
    agent_id: int | None
    text: str
    created_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id after which the next page starts; ValueError if the cursor is not one of ours."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        number = int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    if kind != "id" or not 0 < number < MAX_ID:
        raise ValueError("invalid cursor")
    return number
