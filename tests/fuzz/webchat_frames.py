"""Web chat frames for fuzzing: the widget's real frames with places broken, as JSON text, and raw text that is
not JSON at all (or JSON too deep, too big or with numbers too long to read)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fuzz.nasty import (
    DEEP_JSON,
    DEEP_JSON_OBJECT,
    MEGABYTE,
    json_value,
    mutated,
    nasty_text,
    one_of_values,
    to_json,
)

TEMPLATES = [
    {"type": "message", "client_id": "m-1", "text": "My order never arrived"},
    {"type": "email", "client_id": "e_1", "email": "mei@example.com"},
    {"type": "typing"},
    {"type": "ping"},
    {"type": "message", "client_id": "a" * 64, "text": "订单 1234 在哪里？", "extra": {"nested": [1, 2]}},
]
RAW = [
    DEEP_JSON, DEEP_JSON_OBJECT, MEGABYTE, '"' + MEGABYTE + '"', '{"type":"message","client_id":"x","text":"'
    + "y" * 1_000_001 + '"}', '{"type":"message","client_id":"c","text":"\\ud800\\u0000"}',
    '{"type":"message","client_id":"c","text":1e999999}', '{"type":"ping","n":' + "9" * 5000 + "}",
    '{"type": NaN}', '{"type":"message"', "[]", "null", "", "\x00", '{"type":"message","type":"ping"}',
    '{"client_id":"\\u0000"}', '{"type":"email","email":"a@b.co\\u0000"}', '{"__proto__":{"type":"message"}}',
]

frame_text = (mutated(TEMPLATES, json_value).map(to_json) | mutated(TEMPLATES, json_value).map(to_json)
              | one_of_values(RAW) | nasty_text | json_value.map(to_json) | st.binary(max_size=30).map(
                  lambda b: b.decode("utf-8", "surrogateescape")))
"""One text frame as a WebSocket client may send it."""
