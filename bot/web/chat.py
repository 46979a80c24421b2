"""Web chat routes: the WebSocket, the widget's script and style, and a demo page to try it on.

A visitor is a random id, signed with the web secret and kept by the widget in localStorage; on every
(re)connect the widget says the last message id it saw and gets what it missed from the contact log.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse
from itsdangerous import BadSignature

from bot.assistant import clarify
from bot.web.app import HERE
from crm_store.models import Contact
from crm_store.repositories import web as web_repo

router = APIRouter(include_in_schema=False)


def _webchat(ctx: Any) -> Any:
    """The running channel that serves visitors' WebSockets (`serve(socket, visitor_id, on_open=...)`)."""
    registry = getattr(ctx, "registry", None)
    return next((c for c in registry or () if callable(getattr(c, "serve", None))), None)


def history_frame(contact: Contact) -> dict[str, Any] | None:
    """A logged contact as the widget shows it; None for what the visitor never sees (an email claim)."""
    files = [{"name": a.get("name", ""), "ref": a.get("ref", "")} for a in contact.attachments or ()
             if str(a.get("ref", "")).startswith("upload:")]
    if not contact.text and not files:
        return None
    if contact.direction == "in":
        client_id = contact.external_id.split(":", 1)[1] if ":" in contact.external_id else ""
        chose = (contact.nlu or {}).get("label") if (contact.nlu or {}).get("payload") else None  # a pressed button
        return {"type": "message", "from": "visitor", "text": chose or contact.text, "id": contact.external_id,
                "client_id": client_id, "history": True, **({"files": files} if files else {})}
    who = "agent" if contact.author == "agent" else "bot"
    return {"type": "message", "from": who, "text": contact.text, "id": contact.external_id, "history": True}


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Which pages may open the chat socket: any, until `web.widget_origins` names the sites that embed the widget;
    then those and our own pages (a page elsewhere cannot talk as a visitor of ours: cross-site WebSocket
    hijacking). A client that sends no Origin (not a browser) is let in."""
    if not allowed or not origin:
        return True
    if host and origin.split("://", 1)[-1] == host:
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed}


@router.websocket("/webchat/ws")
async def webchat_socket(ws: WebSocket) -> None:
    ctx = ws.app.state.ctx
    channel = _webchat(ctx)
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), ctx.settings.web.widget_origins):
        await ws.close(code=1008)
        return
    await ws.accept()
    if channel is None:
        await ws.send_json({"type": "error", "code": "unavailable", "reason": "Chat is not available right now."})
        await ws.close(code=1013)
        return
    visitors = ws.app.state.visitors
    token = ws.query_params.get("token", "")
    try:
        visitor_id = visitors.loads(token) if token else None
    except BadSignature:
        visitor_id = None
    if not isinstance(visitor_id, str):
        visitor_id = "v" + uuid.uuid4().hex
        token = visitors.dumps(visitor_id)
    after = ws.query_params.get("after", "")[:300]

    async def on_open(send: Any) -> None:
        await send({"type": "hello", "visitor": token, "max_chars": channel.max_message_chars})
        async with ctx.sessions() as session:
            rows = await web_repo.webchat_history(session, visitor_id, after_external_id=after)
            ours = [c.external_id for c in rows if c.direction == "out" and c.author == "bot"]
            buttons = await clarify.open_question_buttons(session, ctx.settings, "webchat", visitor_id, ours)
        for contact in rows:
            frame = history_frame(contact)
            if frame is not None and contact.external_id in buttons:
                frame["buttons"] = buttons[contact.external_id]
            if frame is not None:
                await send(frame)
        await send({"type": "history_end"})

    await channel.serve(ws, visitor_id, on_open=on_open)


@router.get("/widget.js")
async def widget_js() -> FileResponse:
    return FileResponse(HERE / "static" / "widget.js", media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=300"})


@router.get("/widget.css")
async def widget_css() -> FileResponse:
    return FileResponse(HERE / "static" / "widget.css", media_type="text/css",
                        headers={"Cache-Control": "public, max-age=300"})


@router.get("/demo", response_class=HTMLResponse)
async def demo(request: Request) -> HTMLResponse:
    html = request.app.state.templates.get_template("demo.html").render()
    return HTMLResponse(html)
