"""Files an agent attaches to a web reply: kept in the state folder and sent to the customer as a link (what a
web chat visitor can open). A link's token is 128 random bits, so only those who were sent it can fetch it.
Over `MAX_BYTES` is refused with the file's size, and the reply is not sent."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile

from bot.tickets import TicketError

router = APIRouter(include_in_schema=False)
MAX_BYTES = 10 * 1024 * 1024
TOKEN = re.compile(r"[0-9a-f]{32}")
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Stored:
    token: str
    name: str
    size: int

    def line(self, base_url: str) -> str:
        """How the reply names the file: its name, size and link."""
        return f"{self.name} ({_size(self.size)}): {base_url.rstrip('/')}/files/{self.token}/{quote(self.name)}"


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} KB"


def _folder(state_dir: str) -> Path:
    return Path(state_dir) / "uploads"


def clean_name(name: str) -> str:
    base = re.sub(r"[^\w.\- ]", "_", Path(name or "file").name).strip(" .")[:100]
    return base or "file"


async def store(state_dir: str, upload: UploadFile) -> Stored:
    """Save the upload; refuse (writing nothing that stays) when it is empty or over the limit."""
    name, token = clean_name(upload.filename or ""), secrets.token_hex(16)
    folder = _folder(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path, size = folder / token, 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > MAX_BYTES:
                out.close()
                path.unlink(missing_ok=True)
                raise TicketError(f"{name} is over {MAX_BYTES // 1024 // 1024} MB; nothing was sent.", code="invalid")
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise TicketError(f"{name} is empty; nothing was sent.", code="invalid")
    (folder / f"{token}.json").write_text(json.dumps({"name": name, "size": size}))
    return Stored(token, name, size)


@router.get("/files/{token}/{name}")
async def download(token: str, name: str, request: Request) -> Response:
    """A file sent with a reply, as a download (never shown inline: it is whatever the agent attached)."""
    folder = _folder(request.app.state.ctx.settings.state_dir)
    if not TOKEN.fullmatch(token) or not (folder / token).is_file():
        return PlainTextResponse("No such file.", status_code=404)
    meta = json.loads((folder / f"{token}.json").read_text())
    return FileResponse(folder / token, filename=meta["name"], media_type="application/octet-stream")
