"""The web chat's wire format: JSON frames in both directions, parsed and checked before anything else.

Visitor → server: {"type": "message", "client_id", "text", "files"?}, {"type": "email", "client_id"?, "email"},
{"type": "hello", "user", "user_hash"} (a website's logged-in user, signed by the site), {"type": "typing"},
{"type": "ping"}.
Server → visitor: hello, message, ack, error, typing, email_ok, user_ok, pong. A message may carry
"buttons": [{"label", "data"}]; pressing one sends {"type": "message", "text": data} like typed text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
USER_HASH = re.compile(r"^[0-9A-Fa-f]{64}$")
EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,190}\.[^@\s<>\".]{2,63}$")
MAX_FRAME_CHARS = 1_000_000
MAX_FILES = 5
UPLOAD_REF = re.compile(r"^upload:[0-9a-f]{32}$")
MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


class BadFrame(ValueError):
    """A frame we cannot act on; `code` and the message go back to the visitor, the connection stays."""

    def __init__(self, code: str, reason: str, client_id: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class Frame:
    type: str
    client_id: str = ""
    text: str = ""
    email: str = ""
    user: str = ""
    user_hash: str = ""
    place: str = ""
    """Where the visitor's browser says it is (its time zone's city), for the name agents see."""
    files: tuple[dict[str, Any], ...] = ()
    """Files the visitor uploaded first (``POST /webchat/files``): each {"ref", "name", "size", "mime"}."""


def _place(value: Any) -> str:
    """A city from a time zone name like "Europe/Berlin"; anything unreadable is no place."""
    if not isinstance(value, str) or len(value) > 64 or "/" not in value or value.startswith("Etc/"):
        return ""  # "UTC", "Etc/GMT+2": no place
    city = value.rsplit("/", 1)[-1].replace("_", " ").strip()
    return city if city.replace(" ", "").replace("-", "").isalpha() else ""


def _files(value: Any, client_id: str) -> tuple[dict[str, Any], ...]:
    """A message's uploaded files: at most `MAX_FILES`, each named by the ref its upload answered."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_FILES:
        raise BadFrame("bad_files", f"files must be a list of at most {MAX_FILES} uploaded files.", client_id)
    files = []
    for f in value:
        ref, name, size, mime = ((f if isinstance(f, dict) else {}).get(k) for k in ("ref", "name", "size", "mime"))
        if not (isinstance(ref, str) and UPLOAD_REF.match(ref) and isinstance(name, str) and 0 < len(name) <= 200
                and isinstance(size, int) and size >= 0 and isinstance(mime, str) and MIME.match(mime)):
            raise BadFrame("bad_files", "That file was not uploaded here; attach it again.", client_id)
        files.append({"ref": ref, "name": name, "size": size, "mime": mime})
    return tuple(files)


def parse_frame(raw: str, *, max_message_chars: int) -> Frame:
    """Turn one received text frame into a `Frame`, or raise `BadFrame` saying why not."""
    if len(raw) > MAX_FRAME_CHARS:
        raise BadFrame("too_large", "That frame is too large.")
    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadFrame("bad_json", "Could not read that frame (not JSON).") from None
    if not isinstance(data, dict):
        raise BadFrame("bad_frame", "A frame must be a JSON object.")
    kind = data.get("type")
    client_id = data.get("client_id", "")
    if not isinstance(client_id, str) or (client_id and not CLIENT_ID.match(client_id)):
        raise BadFrame("bad_client_id", "client_id must be 1-64 letters, digits, '-' or '_'.")
    if kind == "message":
        text = data.get("text")
        if not client_id:
            raise BadFrame("bad_client_id", "A message needs a client_id.")
        files = _files(data.get("files"), client_id)
        if not isinstance(text, str) or not (text.strip() or files):
            raise BadFrame("empty", "The message is empty.", client_id)
        if len(text) > max_message_chars:
            raise BadFrame(
                "too_long",
                f"Message too long: {len(text)} characters (the limit is {max_message_chars}).",
                client_id,
            )
        return Frame("message", client_id, text, place=_place(data.get("zone")), files=files)
    if kind == "email":
        email = data.get("email")
        # isprintable: no NUL, control character or lone surrogate (the regex alone lets them through)
        if not isinstance(email, str) or not email.strip().isprintable() or not EMAIL.match(email.strip()):
            raise BadFrame("bad_email", "That does not look like an email address.", client_id)
        return Frame("email", client_id, email=email.strip().lower())
    if kind == "hello":
        user, user_hash = data.get("user"), data.get("user_hash")
        if not (isinstance(user, str) and 0 < len(user) <= 200 and user.isprintable()) \
                or not (isinstance(user_hash, str) and USER_HASH.match(user_hash)):
            raise BadFrame("bad_user", "user must be 1-200 characters and user_hash 64 hex digits.", client_id)
        return Frame("hello", client_id, user=user, user_hash=user_hash.lower())
    if kind in ("typing", "ping"):
        return Frame(kind)
    raise BadFrame("bad_frame", "Unknown frame type.", client_id)


def dump(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
