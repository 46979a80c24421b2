"""Web chat frames into the frame parser: every generated frame is either a well-formed `Frame` or a `BadFrame`
with a code the widget knows; nothing else escapes, so one bad frame never closes the visitor's socket."""

from __future__ import annotations

import json

from hypothesis import given

from channels.webchat.frames import CLIENT_ID, EMAIL, BadFrame, Frame, dump, parse_frame
from tests.fuzz.nasty import FUZZ_EXAMPLES, batches, fuzz_settings, storable
from tests.fuzz.webchat_frames import frame_text

CODES = {"too_large", "bad_json", "bad_frame", "bad_client_id", "empty", "too_long", "bad_email"}
LIMIT = 4000


def check(raw: str) -> str:
    """Parse one frame; return the frame type or the refusal code, asserting what each promises."""
    try:
        frame = parse_frame(raw, max_message_chars=LIMIT)
    except BadFrame as bad:
        assert bad.code in CODES and bad.reason and len(bad.reason) < 200, bad.code
        assert bad.client_id == "" or CLIENT_ID.match(bad.client_id)
        dump({"type": "error", "code": bad.code, "reason": bad.reason, "client_id": bad.client_id})
        return bad.code
    assert isinstance(frame, Frame)
    if frame.type == "message":
        assert CLIENT_ID.match(frame.client_id) and isinstance(frame.text, str)
        assert frame.text.strip() and len(frame.text) <= LIMIT
    elif frame.type == "email":
        assert EMAIL.match(frame.email) and storable(frame.email) and frame.email.isprintable(), frame.email
    else:
        assert frame.type in ("typing", "ping")
    return frame.type


def test_generated_frames_are_parsed_or_refused_with_a_code():
    seen: dict[str, int] = {}

    @fuzz_settings()
    @given(batches(frame_text))
    def parse(frames):
        for raw in frames:
            kind = check(raw)
            seen[kind] = seen.get(kind, 0) + 1

    parse()
    print(f"webchat frames: {sum(seen.values())} generated: {seen}")
    assert sum(seen.values()) >= FUZZ_EXAMPLES
    assert seen.get("message", 0) >= 500 and seen.get("bad_json", 0) >= 500  # both sides were reached


def test_an_email_with_a_nul_or_a_lone_surrogate_is_refused():
    for email in ("a\x00b@example.com", "a\ud800@example.com", "a\x1b@example.com"):
        assert check(dump({"type": "email", "email": email})) == "bad_email"
        assert check(json.dumps({"type": "email", "email": email})) == "bad_email"  # as \\u escapes
    assert check(dump({"type": "email", "email": " Mei@Example.com "})) == "email"
