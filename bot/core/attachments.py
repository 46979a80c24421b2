"""Attachments: how one reads in a line of text, how it reaches someone on another channel, and the files an
outbox row carries.

A customer's photo, document, voice note or sticker reaches an agent on Telegram as the media itself: the outbox
row of the notice names the customer's message (``copy_of``) and the Telegram sender copies it (``copyMessage``:
no download, no upload). Where the two ends are on different channels the row names the file instead (meta
``files``: where it is, its name, type and size) and the outbox loads the bytes just before the send
(`OutboxFiles`): from the channel it came from (a Telegram file id, fetched with getFile) or from the state folder
the web inbox keeps its uploads in. A row that waits through a crash keeps that reference, so it is sent later.
A file for a web chat visitor is kept in that folder under a token the reply's link already names.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from bot.core.messages import Attachment, DeliveryError, InboundMessage, OutboundFile, OutboundMessage
from channels.base import ChannelRegistry, UnknownChannel, traits_of

COPY_OF = "copy_of"
"""Outbox meta: the ``m{chat}:{message_id}`` of a Telegram message to copy to the recipient with this row."""
COPY_ONLY = "copy_only"
"""Outbox meta "1": the copy is the message (its caption is the text); the row's text is not sent as well."""
FILES = "files"
"""Outbox meta: a JSON list of the files that go with the row (`file_spec`)."""
UPLOAD = "upload"
"""The source of a file kept in the state folder; an attachment's ref is ``upload:<token>``."""
MEDIA_KINDS = frozenset({"photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker"})
MAX_FILE_BYTES = 10 * 1024 * 1024
"""The largest file sent on to another channel (a mail attachment, a web chat link) or uploaded by a visitor."""
TOKEN = re.compile(r"[0-9a-f]{32}")


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def attachment_label(a: Attachment | Mapping[str, Any]) -> str:
    """ "[photo: receipt.jpg, 120 KB]", "[voice: 9 KB]", "[sticker: 😀]": what an attachment is, in a line."""
    get = a.get if isinstance(a, Mapping) else lambda key, default=None: getattr(a, key, default)
    kind = str(get("kind", "") or "file")
    name = str(get("name", "") or "")
    size = get("size", 0)
    details = [name] if name and kind not in ("location",) else []
    if isinstance(size, int) and size > 0:
        details.append(size_label(size))
    if kind == "location" and get("ref"):
        details = [str(get("ref"))]
    return f"[{kind}: {', '.join(details)}]" if details else f"[{kind}]"


def said(text: str, attachments: Iterable[Attachment | Mapping[str, Any]]) -> str:
    """The text of a message with its attachments named after it; "(no text)" only when there is nothing."""
    labels = " ".join(attachment_label(a) for a in attachments)
    return " ".join(part for part in (text.strip(), labels) if part) or "(no text)"


def has_media(attachments: Iterable[Attachment]) -> bool:
    return any(a.kind in MEDIA_KINDS and a.ref for a in attachments)


def copy_media(
    rows: Iterable[dict[str, Any]], key_prefix: str, channel: str, source: str, *, only: bool = False
) -> int:
    """Mark the outbox rows on `channel` whose key starts with `key_prefix` to carry a copy of its message
    `source` (a channel whose traits say it `copies_media`)."""
    if not traits_of(channel).copies_media:
        return 0
    marked = 0
    for row in rows:
        if row["channel"] == channel and row["idempotency_key"].startswith(key_prefix):
            row["meta"][COPY_OF] = source
            if only:
                row["meta"][COPY_ONLY] = "1"
            marked += 1
    return marked


def show_media(rows: Iterable[dict[str, Any]], msg: InboundMessage, key_prefix: str) -> None:
    """A customer's media for the agents' rows under `key_prefix`: copied where the channel copies its own
    messages (Telegram), sent as the file where the customer's came as an upload (web chat)."""
    rows = list(rows)
    if has_media(msg.attachments) and msg.external_id.startswith("m"):
        copy_media(rows, key_prefix, msg.channel, msg.external_id)
    uploads = [file_spec(a, UPLOAD, a.ref.partition(":")[2]) for a in msg.attachments if uploaded(a)]
    if uploads:
        attach_files(rows, key_prefix, uploads, only_to="attach")


def uploaded(a: Attachment) -> bool:
    source, _, token = a.ref.partition(":")
    return source == UPLOAD and TOKEN.fullmatch(token) is not None


# --- files that go with an outbox row ----------------------------------------------------------------------------


def file_name(a: Attachment | Mapping[str, Any]) -> str:
    """The attachment's own name, or one made from its kind and type ("photo.jpg"): a mail needs a filename."""
    get = a.get if isinstance(a, Mapping) else lambda key, default="": getattr(a, key, default)
    name = clean_name(str(get("name", "") or ""))
    if name != "file":
        return name
    mime = str(get("mime", "") or "")
    ext = ".jpg" if mime == "image/jpeg" else (mimetypes.guess_extension(mime) or "") if mime else ""
    return f"{get('kind', '') or 'file'}{ext}"


def clean_name(name: str) -> str:
    base = re.sub(r"[^\w.\- ]", "_", Path(name or "file").name).strip(" .")[:100]
    return base or "file"


def file_spec(a: Attachment, source: str, token: str = "") -> dict[str, Any]:
    """What an outbox row keeps of a file: where it is (`source` and `ref`, or the folder's `token`) and what it
    is. Small and durable: the bytes are loaded at send time."""
    return {
        "kind": "photo" if a.kind == "photo" else "document",
        "name": file_name(a),
        "mime": a.mime or mimetypes.guess_type(a.name)[0] or "application/octet-stream",
        "size": a.size,
        "source": source,
        "ref": a.ref,
        "token": token,
    }


def attach_files(
    rows: Iterable[dict[str, Any]], key_prefix: str, specs: list[dict[str, Any]], *, only_to: str = ""
) -> int:
    """Name `specs` in the meta of the rows whose key starts with `key_prefix` (and, with `only_to`, whose channel
    takes files that way)."""
    marked = 0
    for row in rows:
        if not row["idempotency_key"].startswith(key_prefix):
            continue
        if only_to and traits_of(row["channel"]).takes_files != only_to:
            continue
        row["meta"][FILES] = json.dumps(specs)
        marked += 1
    return marked


def files_of(meta: Mapping[str, str] | tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    raw = dict(meta).get(FILES, "")
    if not raw:
        return []
    try:
        specs = json.loads(raw)
    except ValueError:
        return []
    return [s for s in specs if isinstance(s, dict)] if isinstance(specs, list) else []


# --- the state folder: the web inbox's uploads, and the copies a link names ----------------------------------------


def files_folder(state_dir: str) -> Path:
    return Path(state_dir) / "uploads"


def new_token() -> str:
    """128 random bits: only those who were sent a file's link can fetch it."""
    return secrets.token_hex(16)


def file_link(base_url: str, token: str, name: str, size: int) -> str:
    """How a text names a kept file: its name, size and link (the web app's ``/files/<token>/<name>``)."""
    return f"{name} ({link_size(size)}): {base_url.rstrip('/')}/files/{token}/{quote(name)}"


def link_size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} KB"


def describe(folder: Path, token: str, name: str, size: int, mime: str = "") -> None:
    """Write the file's facts beside it (written last: a file without them is not served)."""
    (folder / f"{token}.json").write_text(json.dumps({"name": name, "size": size, "mime": mime}))


def keep(state_dir: str, token: str, name: str, data: bytes, mime: str = "") -> None:
    folder = files_folder(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / token).write_bytes(data)
    describe(folder, token, name, len(data), mime)


def kept(state_dir: str, token: str) -> tuple[dict[str, Any], Path] | None:
    """The facts and path of a kept file, or None when there is none under that token."""
    folder = files_folder(state_dir)
    if not TOKEN.fullmatch(token or "") or not (folder / f"{token}.json").is_file():
        return None
    return json.loads((folder / f"{token}.json").read_text()), folder / token


class FileSource(Protocol):
    """A channel that can fetch a file it delivered to us by its id (Telegram's getFile)."""

    async def fetch_file(self, ref: str, max_bytes: int) -> bytes: ...


class OutboxFiles:
    """Loads the files an outbox row names, just before its send: from the state folder when kept there, else
    from the channel they came from (kept afterwards when the row's link names a token)."""

    def __init__(self, registry: ChannelRegistry, state_dir: str) -> None:
        self.registry = registry
        self.state_dir = state_dir

    async def load(self, message: OutboundMessage) -> OutboundMessage:
        specs = files_of(message.meta)
        if not specs:
            return message
        files = []
        for spec in specs:
            data, facts = await self._bytes(spec)
            files.append(
                OutboundFile(
                    name=str(facts.get("name") or "file"),
                    data=data,
                    mime=str(facts.get("mime") or "application/octet-stream"),
                    kind=str(spec.get("kind") or "document"),
                )
            )
        return replace(message, files=tuple(files))

    async def _bytes(self, spec: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """The file's bytes and its facts (a kept file's own name and type win over what the row says)."""
        name, token, source = str(spec.get("name", "file")), str(spec.get("token", "")), str(spec.get("source", ""))
        found = kept(self.state_dir, token) if token else None
        if found is not None and found[1].is_file():
            return found[1].read_bytes(), {**spec, **{k: v for k, v in found[0].items() if v}}
        if source == UPLOAD:
            raise DeliveryError(f"{name} is no longer kept; it cannot be sent", permanent=True)
        try:
            channel = self.registry.get(source)
        except UnknownChannel as exc:
            raise DeliveryError(f"{name} waits for the {source} channel: {exc}") from exc
        fetch = getattr(channel, "fetch_file", None)
        if fetch is None:
            raise DeliveryError(f"{name}: files cannot be fetched from {source}", permanent=True)
        data = await fetch(str(spec.get("ref", "")), MAX_FILE_BYTES)
        if len(data) > MAX_FILE_BYTES:
            raise DeliveryError(f"{name} is over {MAX_FILE_BYTES // 1024 // 1024} MB", permanent=True)
        if token:
            keep(self.state_dir, token, name, data, str(spec.get("mime", "")))
        return data, spec
