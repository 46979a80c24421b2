"""Generated frames through the real WebSocket endpoint (uvicorn, the App, both databases): every frame gets its
answer or its error frame, the socket stays open, and a message sent after all of it is stored and acknowledged."""

from __future__ import annotations

import json
import time

import websockets

from tests.fuzz.nasty import collect
from tests.fuzz.webchat_frames import frame_text
from tests.web.test_webchat import Visitor, ws_url

FRAMES = 300
KNOWN_CODES = {"too_large", "bad_json", "bad_frame", "bad_client_id", "empty", "too_long", "bad_email"}


async def test_poison_frames_never_close_the_socket(live):
    started = time.monotonic()
    # A text frame is UTF-8 on the wire: raw lone surrogates cannot be sent (escaped ones in JSON are, and are).
    frames = [f.encode("utf-8", "replace").decode("utf-8") for f in collect(frame_text, FRAMES)]
    ws = await websockets.connect(ws_url(live), max_size=None)
    v = Visitor(ws)
    await v.expect(lambda f: f["type"] == "history_end")
    for raw in frames:
        await ws.send(raw)
    await v.send({"type": "message", "client_id": "after-poison", "text": "still there?"})
    ack = await v.expect(lambda f: f["type"] == "ack" and f.get("client_id") == "after-poison", within=60)
    await v.send({"type": "ping"})
    await v.expect(lambda f: f["type"] == "pong")
    await ws.close()
    errors = [f for f in v.frames if f["type"] == "error"]
    print(f"webchat socket: {len(frames)} generated frames, {len(errors)} error frames, "
          f"{time.monotonic() - started:.1f}s")
    assert ack["client_id"] == "after-poison" and len(frames) >= FRAMES
    assert errors and {f["code"] for f in errors} <= KNOWN_CODES
    assert all(f["reason"] and "Traceback" not in f["reason"] for f in errors)
    assert all(isinstance(json.dumps(f), str) for f in v.frames)
