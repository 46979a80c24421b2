"""What Meta's webhook deliveries mean, as plain values: the signature check, the verification handshake, and
the messages and statuses a delivery carries. No I/O here: media ids are resolved by the channel."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")
STATUSES = ("sent", "delivered", "read", "failed")


class BadDelivery(ValueError):
    """The body is not a webhook delivery at all (not JSON, not an object)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One customer message, before its media ids are resolved."""

    external_id: str
    sender: str
    sender_name: str = ""
    text: str = ""
    kind: str = "text"
    media: tuple[dict[str, str], ...] = ()
    """Each: id, kind, mime, name."""
    context_id: str = ""
    """The id of our message the customer answered, if they quoted one."""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Status:
    external_id: str
    status: str
    recipient: str = ""
    error: str = ""
    error_code: int = 0
    at: datetime | None = None


@dataclass(slots=True)
class Delivery:
    messages: list[Incoming] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    skipped: int = 0
    """Items that could not be read (no id, no sender): logged, never retried."""


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signed(app_secret: str, body: bytes, header: str) -> bool:
    """Whether `X-Hub-Signature-256` is the app secret's HMAC-SHA256 of the exact body."""
    return bool(header) and hmac.compare_digest(signature(app_secret, body).encode(), header.strip().encode())


def challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta subscribes with our verify token; None otherwise."""
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def parse(body: bytes) -> Delivery:
    """The messages and statuses in one delivery; unreadable items are counted, not raised."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadDelivery(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadDelivery("not a JSON object")
    found = Delivery()
    for value in _values(data):
        names = _names(value.get("contacts"))
        for raw in _dicts(value.get("messages")):
            msg = _message(raw, names)
            if msg is None:
                found.skipped += 1
            else:
                found.messages.append(msg)
        for raw in _dicts(value.get("statuses")):
            status = _status(raw)
            if status is None:
                found.skipped += 1
            else:
                found.statuses.append(status)
    return found


def _names(contacts: Any) -> dict[str, str]:
    """The profile name WhatsApp gives each sender, by wa_id."""
    names = {}
    for contact in _dicts(contacts):
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else ""
        names[_str(contact.get("wa_id"))] = name if isinstance(name, str) else ""
    return names


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _values(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        change["value"]
        for entry in _dicts(data.get("entry"))
        for change in _dicts(entry.get("changes"))
        if change.get("field") == "messages" and isinstance(change.get("value"), dict)
    ]


def _str(value: Any) -> str:
    """A field as text: strings as they are, numbers written out, anything else empty."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _when(raw: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _message(raw: dict[str, Any], names: dict[str, str]) -> Incoming | None:
    msg_id, sender, kind = _str(raw.get("id")), _str(raw.get("from")), _str(raw.get("type")) or "text"
    if not msg_id or not sender:
        return None
    body = raw.get(kind) if isinstance(raw.get(kind), dict) else {}
    media: tuple[dict[str, str], ...] = ()
    if kind == "text":
        text = _str(body.get("body"))
    elif kind in MEDIA_KINDS:
        text = _str(body.get("caption"))
        media = (
            {
                "id": _str(body.get("id")),
                "kind": kind,
                "mime": _str(body.get("mime_type")),
                "name": _str(body.get("filename")),
            },
        )
    else:
        text = _other_text(kind, body)
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    return Incoming(
        external_id=msg_id,
        sender=sender,
        sender_name=names.get(sender, ""),
        text=text,
        kind=kind,
        media=media,
        context_id=_str(context.get("id")),
        at=_when(raw.get("timestamp")),
    )


def _other_text(kind: str, body: dict[str, Any]) -> str:
    """A readable line for what is not text or media: buttons pressed, a location, a reaction."""
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or {}
        return _str(reply.get("title")) if isinstance(reply, dict) else ""
    if kind == "button":
        return _str(body.get("text"))
    if kind == "location":
        return f"[location {_str(body.get('latitude'))},{_str(body.get('longitude'))}] {_str(body.get('name'))}"
    if kind == "reaction":
        return _str(body.get("emoji"))
    return f"[{kind}]"


def _status(raw: dict[str, Any]) -> Status | None:
    msg_id, status = _str(raw.get("id")), _str(raw.get("status"))
    if not msg_id or status not in STATUSES:
        return None
    errors = _dicts(raw.get("errors"))
    first = errors[0] if errors else {}
    code = first.get("code") if isinstance(first.get("code"), int) else 0
    title = _str(first.get("title")) or _str(first.get("message"))
    return Status(
        external_id=msg_id,
        status=status,
        recipient=_str(raw.get("recipient_id")),
        error=f"{code} {title}".strip() if first else "",
        error_code=code,
        at=_when(raw.get("timestamp")),
    )
