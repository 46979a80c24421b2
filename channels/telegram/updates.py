"""Telegram updates → `InboundMessage`, as a pure function on the Bot API's JSON shape.

External ids (the idempotency key the dispatcher dedups on) are chosen so that both a redelivered update and an
edit work:

- a message is ``m{chat_id}:{message_id}`` — the same on every redelivery, and the same key the sender returns for
  what *we* send, so a reply to any message (``reply_to_message``) maps to a logged contact via ``thread_ref``;
- an edit is ``e{chat_id}:{message_id}:{update_id}`` with ``edit_of`` = the original's ``m…`` id: each edit is its
  own contact, a redelivered edit (same update id) is still one;
- a button press is ``q{callback_query_id}``.

The update id itself travels in ``raw_ref`` (``telegram:update:{update_id}``). aiogram objects are dumped to this
JSON shape first (``as_update_dict``); python-telegram-bot's ``Update.to_dict()`` already is.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from bot.core.messages import Attachment, InboundMessage, InvalidMessage, clean_text

log = logging.getLogger(__name__)

CHANNEL = "telegram"

# Media keys of a Message with the MIME type to assume when Telegram does not send one.
_MEDIA_KINDS: dict[str, str] = {
    "document": "application/octet-stream",
    "voice": "audio/ogg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "video_note": "video/mp4",
    "animation": "video/mp4",
    "sticker": "image/webp",
}


def as_update_dict(update: Any) -> dict[str, Any] | None:
    """The Bot API JSON of an update given as a dict, an aiogram `Update` or a PTB `Update`; None if neither."""
    if isinstance(update, dict):
        return update
    dump = getattr(update, "model_dump", None)
    if callable(dump):  # aiogram (pydantic): `from_user` is aliased to "from"
        return dump(mode="json", by_alias=True, exclude_none=True)
    to_dict = getattr(update, "to_dict", None)
    if callable(to_dict):  # python-telegram-bot
        return to_dict()
    return None


def message_external_id(chat_id: int | str, message_id: int | str) -> str:
    """The external id of one Telegram message, inbound or outbound."""
    return f"m{chat_id}:{message_id}"


def parse_message_ref(ref: str) -> tuple[str, int] | None:
    """(chat_id, message_id) from ``m{chat}:{id}``; None for anything else."""
    if not ref.startswith("m") or ":" not in ref:
        return None
    chat, _, mid = ref[1:].partition(":")
    try:
        return chat, int(mid)
    except ValueError:
        return None


def update_to_inbound(update: Any, *, bot_username: str = "") -> InboundMessage | None:
    """Convert one update; None (and a log line) for update types and shapes we do not take. Never raises."""
    try:
        data = as_update_dict(update)
    except Exception as exc:  # a library object that cannot dump itself
        log.warning("telegram: ignored an update that cannot be read: %s", type(exc).__name__)
        return None
    if not isinstance(data, dict):
        log.warning("telegram: ignored an update that is not a JSON object: %r", type(update).__name__)
        return None
    try:
        return _convert(data, bot_username=bot_username.lstrip("@").lower())
    except InvalidMessage as exc:
        log.warning("telegram: ignored update %s: %s", _update_ref(data), exc)
    except Exception:  # odd input must never take the channel down
        log.exception("telegram: could not convert update %s", _update_ref(data))
    return None


def _update_ref(data: dict[str, Any]) -> str:
    """The update id for a log line; never the 5,000-digit number or the megabyte a broken update may carry."""
    update_id = data.get("update_id")
    return str(update_id) if _id(update_id) is not None else "(no valid update_id)"


def _convert(data: dict[str, Any], *, bot_username: str) -> InboundMessage | None:
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or _id(update_id) is None or update_id < 0:
        raise InvalidMessage("update has no integer update_id")
    raw_ref = f"telegram:update:{update_id}"
    if isinstance(data.get("message"), dict):
        return _from_message(_shaped(data["message"]), raw_ref=raw_ref, bot_username=bot_username)
    if isinstance(data.get("edited_message"), dict):
        return _from_message(_shaped(data["edited_message"]), raw_ref=raw_ref, bot_username=bot_username,
                             edit_update=update_id)
    if isinstance(data.get("callback_query"), dict):
        return _from_callback(data["callback_query"], raw_ref=raw_ref)
    kinds = sorted(str(k)[:40] for k in data if k != "update_id")[:10]
    log.info("telegram: ignored update %s of type %s", update_id, ",".join(kinds) or "(empty)")
    return None


_MAX_ID = 2**63
_TEXT_FIELDS = ("text", "caption")
_NAME_FIELDS = ("first_name", "last_name", "username", "language_code")
_MEDIA_FIELDS = ("file_id", "mime_type", "file_name", "emoji")


def _id(value: Any) -> int | None:
    """A Telegram id (chat, user, message, update): an integer of at most 64 bits, or its decimal text (cleaned
    first: a NUL or a control character inside an id is noise around the number, not another id)."""
    if isinstance(value, str):
        value = clean_text(value, 40)[0].strip()
    if isinstance(value, str) and 0 < len(value) <= 20 and value.lstrip("-").isdigit() and value.isascii():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and -_MAX_ID < value < _MAX_ID:
        return value
    return None


def _texts(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    return {name: obj[name] for name in names if isinstance(obj.get(name), str)}


def _user(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or _id(value.get("id")) is None:
        return None
    return {"id": _id(value["id"]), "is_bot": value.get("is_bot") is True, **_texts(value, _NAME_FIELDS)}


def _media(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    media: dict[str, Any] = _texts(value, _MEDIA_FIELDS)
    media.update({k: True for k in ("is_video", "is_animated") if value.get(k) is True})
    size = value.get("file_size")
    if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < _MAX_ID:
        media["file_size"] = size
    return media


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and abs(value) <= 180
    return value if ok else None


def _shaped(msg: dict[str, Any]) -> dict[str, Any]:
    """The message with every field we read of the type the Bot API documents; a wrong one is dropped.

    Bot API servers, proxies and host bots do send broken shapes; dropping a broken field keeps what is readable
    (the text of a message with a malformed photo is still the customer's message)."""
    shaped: dict[str, Any] = _texts(msg, _TEXT_FIELDS)
    for key in ("message_id", "message_thread_id"):
        if _id(msg.get(key)) is not None:
            shaped[key] = _id(msg[key])
    for key in ("date", "edit_date"):
        shaped[key] = msg.get(key)
    shaped["is_topic_message"] = msg.get("is_topic_message") is True
    if (user := _user(msg.get("from"))) is not None:
        shaped["from"] = user
    chat = msg.get("chat")
    if isinstance(chat, dict) and _id(chat.get("id")) is not None:
        shaped["chat"] = {"id": _id(chat["id"]), **_texts(chat, ("type",))}
    reply = msg.get("reply_to_message")
    if isinstance(reply, dict) and _id(reply.get("message_id")) is not None:
        shaped["reply_to_message"] = {"message_id": _id(reply["message_id"])}
    photos = msg.get("photo")
    if isinstance(photos, list):
        shaped["photo"] = [m for m in map(_media, photos) if m is not None]
    for key in _MEDIA_KINDS:
        if (media := _media(msg.get(key))) is not None:
            shaped[key] = media
    contact = msg.get("contact")
    if isinstance(contact, dict):
        shaped["contact"] = _texts(contact, ("phone_number", "first_name", "last_name"))
        if _id(contact.get("user_id")) is not None:
            shaped["contact"]["user_id"] = _id(contact["user_id"])
    location = msg.get("location")
    if isinstance(location, dict) and _number(location.get("latitude")) is not None:
        shaped["location"] = {"latitude": location["latitude"], "longitude": _number(location.get("longitude")) or 0}
    return shaped


def _sender(user: Any) -> tuple[str, str, dict[str, str]]:
    if not isinstance(user, dict) or "id" not in user:
        raise InvalidMessage("update has no sender")
    name = " ".join(str(user[k]) for k in ("first_name", "last_name") if user.get(k)) or str(user.get("username", ""))
    meta = {"username": str(user["username"])} if user.get("username") else {}
    if user.get("language_code"):
        meta["language_code"] = str(user["language_code"])
    return str(user["id"]), name, meta


def _timestamp(value: Any) -> datetime | None:
    # Up to the year 3000: a bigger number is a broken clock, not a date datetime can hold.
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 32_503_680_000:
        return datetime.fromtimestamp(value, UTC)
    return None


def _from_message(
    msg: dict[str, Any], *, raw_ref: str, bot_username: str, edit_update: int | None = None
) -> InboundMessage | None:
    user = msg.get("from")
    if isinstance(user, dict) and user.get("is_bot"):
        log.info("telegram: ignored a message from bot %s", user.get("id"))
        return None
    sender, sender_name, meta = _sender(user)
    chat = msg.get("chat") or {}
    chat_id, message_id = chat.get("id"), msg.get("message_id")
    if chat_id is None or message_id is None:
        raise InvalidMessage("message has no chat or message id")
    text = msg.get("text") or msg.get("caption") or ""
    text = _strip_bot_mention(text, bot_username) if isinstance(text, str) else ""
    attachments = _attachments(msg)
    contact = msg.get("contact")
    if isinstance(contact, dict) and contact.get("phone_number"):
        # Telegram vouches for a number only when the user shared their own (contact.user_id == from.id, the
        # "share my number" button); anyone else's card is merely a claim.
        own = str(contact.get("user_id", "")) == sender
        meta["vouched_phone" if own else "claimed_phone"] = str(contact["phone_number"])
    if not text and not attachments:
        log.info("telegram: ignored service message %s in chat %s", message_id, chat_id)
        return None
    meta.update(chat_id=str(chat_id), message_id=str(message_id), chat_type=str(chat.get("type", "")))
    if msg.get("message_thread_id") is not None:
        meta["message_thread_id"] = str(msg["message_thread_id"])
    thread_ref = ""
    reply = msg.get("reply_to_message")
    if isinstance(reply, dict) and reply.get("message_id") is not None:
        # Inside a forum topic every message "replies" to the topic's first message; that is not a real reply.
        topic_root = msg.get("is_topic_message") and reply.get("message_id") == msg.get("message_thread_id")
        if not topic_root:
            meta["reply_to_message_id"] = str(reply["message_id"])
            thread_ref = message_external_id(chat_id, reply["message_id"])
    original = message_external_id(chat_id, message_id)
    extra: dict[str, Any] = {}
    if edit_update is not None:
        external_id = f"e{chat_id}:{message_id}:{edit_update}"
        extra["edit_of"] = original
        received_at = _timestamp(msg.get("edit_date")) or _timestamp(msg.get("date"))
    else:
        external_id = original
        received_at = _timestamp(msg.get("date"))
    return InboundMessage.build(
        channel=CHANNEL,
        external_id=external_id,
        sender=sender,
        text=text,
        sender_name=sender_name,
        thread_ref=thread_ref,
        attachments=attachments,
        received_at=received_at,
        raw_ref=raw_ref,
        meta=meta,
        **extra,
    )


def _from_callback(query: dict[str, Any], *, raw_ref: str) -> InboundMessage:
    sender, sender_name, meta = _sender(_user(query.get("from")))
    query_id = query.get("id")
    if not isinstance(query_id, str | int) or isinstance(query_id, bool) or not str(query_id) or len(
            str(query_id)) > 64:
        raise InvalidMessage("callback query has no id")
    meta["callback_query_id"] = str(query_id)
    message = _shaped(query["message"]) if isinstance(query.get("message"), dict) else None
    thread_ref = ""
    if isinstance(message, dict) and message.get("message_id") is not None:
        chat = message.get("chat") or {}
        if chat.get("id") is not None:
            meta.update(chat_id=str(chat["id"]), chat_type=str(chat.get("type", "")))
            thread_ref = message_external_id(chat["id"], message["message_id"])
        meta["message_id"] = str(message["message_id"])
        if message.get("message_thread_id") is not None:
            meta["message_thread_id"] = str(message["message_thread_id"])
    data = query.get("data")
    return InboundMessage.build(
        channel=CHANNEL,
        external_id=f"q{query_id}",
        sender=sender,
        text=data if isinstance(data, str) else "",
        sender_name=sender_name,
        thread_ref=thread_ref,
        raw_ref=raw_ref,
        meta=meta,
    )


def _strip_bot_mention(text: str, bot_username: str) -> str:
    """``/take@ourbot 12`` → ``/take 12`` (group chats); a command addressed to another bot stays as it is."""
    if not text.startswith("/") or not bot_username:
        return text
    head, sep, rest = text.partition(" ")
    command, at, target = head.partition("@")
    if at and target.lower() == bot_username:
        return command + sep + rest
    return text


def _attachments(msg: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    photos = msg.get("photo")
    if isinstance(photos, list) and photos:
        largest = photos[-1]  # Telegram lists the sizes smallest first
        found.append(
            Attachment(kind="photo", mime="image/jpeg", size=_int(largest.get("file_size")), ref=_file_id(largest))
        )
    for key, default_mime in _MEDIA_KINDS.items():
        media = msg.get(key)
        if not isinstance(media, dict):
            continue
        mime = str(media.get("mime_type") or default_mime)
        if key == "sticker":
            mime = "video/webm" if media.get("is_video") else "application/x-tgsticker" if media.get(
                "is_animated") else "image/webp"
        name = str(media.get("file_name") or media.get("emoji") or "")
        found.append(Attachment(kind=key, name=name, mime=mime, size=_int(media.get("file_size")), ref=_file_id(media)))
    contact = msg.get("contact")
    if isinstance(contact, dict):
        name = " ".join(str(contact[k]) for k in ("first_name", "last_name") if contact.get(k))
        found.append(Attachment(kind="contact", name=name, ref=str(contact.get("phone_number", ""))))
    location = msg.get("location")
    if isinstance(location, dict) and "latitude" in location:
        found.append(Attachment(kind="location", ref=f"{location['latitude']},{location.get('longitude', '')}"))
    return tuple(found)


def _file_id(media: Any) -> str:
    return str(media.get("file_id", "")) if isinstance(media, dict) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
