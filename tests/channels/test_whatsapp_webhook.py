"""The WhatsApp channel's plain parts on recorded and hand-built payloads: signatures, the verification
handshake, what a delivery holds, what Graph errors mean for the outbox, and the per-number send limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.send_limits import Rate, gcra_reserve
from channels.whatsapp import WhatsAppChannel, graph, webhook
from channels.whatsapp.channel import send_rates

PAYLOAD = (Path(__file__).parent / "payloads" / "whatsapp_delivery.json").read_bytes()


def test_only_the_app_secrets_signature_of_the_exact_body_counts():
    good = webhook.signature("s3cret", PAYLOAD)
    assert good.startswith("sha256=") and len(good) == 71
    assert webhook.signed("s3cret", PAYLOAD, good)
    assert not webhook.signed("s3cret", PAYLOAD + b" ", good)
    assert not webhook.signed("other", PAYLOAD, good)
    assert not webhook.signed("s3cret", PAYLOAD, "")
    assert not webhook.signed("s3cret", PAYLOAD, "sha256=é")  # non-ASCII in the header is a mismatch, not a crash


def test_the_verification_handshake_needs_our_token():
    asked = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert webhook.challenge(asked, "tok") == "1158201444"
    assert webhook.challenge({**asked, "hub.verify_token": "guess"}, "tok") is None
    assert webhook.challenge({**asked, "hub.mode": "unsubscribe"}, "tok") is None
    assert webhook.challenge({**asked, "hub.verify_token": ""}, "") is None  # no verify token set: refuse all


def test_a_recorded_delivery_becomes_messages_and_statuses():
    found = webhook.parse(PAYLOAD)
    assert [(m.external_id[:9], m.kind, m.text) for m in found.messages] == [
        ("wamid.HBg", "text", "My parcel\x00 8812 never arrived"),
        ("wamid.IMG", "image", "the dent"),
        ("wamid.DOC", "document", ""),
        ("wamid.BTN", "interactive", "Yes, refund"),
        ("wamid.LOC", "location", "[location 52.52,13.405] Depot"),
        ("wamid.UNS", "unsupported", "[unsupported]"),
    ]
    image, document = found.messages[1], found.messages[2]
    assert image.media == ({"id": "1003383421387256", "kind": "image", "mime": "image/jpeg", "name": ""},)
    assert image.context_id == "wamid.OUT9" and image.sender_name == "Leo"
    assert document.media[0]["name"] == "invoice.pdf"
    assert found.messages[0].at.isoformat() == "2025-06-08T20:59:43+00:00" and found.messages[5].at is None
    assert [(s.external_id, s.status, s.error_code, s.error) for s in found.statuses] == [
        ("wamid.OUT9", "delivered", 0, ""),
        ("wamid.OUT8", "failed", 131047, "131047 Re-engagement message"),
    ]
    assert found.skipped == 2  # the message without a sender, the unknown status "deleted"


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_what_is_not_a_delivery_is_refused(body):
    with pytest.raises(webhook.BadDelivery):
        webhook.parse(body)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"entry": "x"}',
        b'{"entry": [{"changes": [{"field": "messages"}]}]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": {"messages": 3}}]}]}',
    ],
)
def test_odd_shapes_are_empty_deliveries(body):
    found = webhook.parse(body)
    assert (found.messages, found.statuses, found.skipped) == ([], [], 0)


async def test_poison_text_becomes_a_clean_message_with_a_vouched_number(tmp_path):
    channel = WhatsAppChannel("tok", "1055", app_secret="s", media_dir=str(tmp_path))
    first = webhook.parse(PAYLOAD).messages[0]
    msg = await channel.inbound(first)
    assert (msg.channel, msg.sender, msg.text) == ("whatsapp", "8613800138000", "My parcel 8812 never arrived")
    assert msg.sender_name == "Mei Lin" and msg.meta_value("vouched_phone") == "+8613800138000"
    odd = webhook.Incoming(external_id="wamid.x", sender="49\udc80151", sender_name="\ud800Ann", text="a\udfffb")
    msg = await channel.inbound(odd)
    assert (msg.sender, msg.sender_name, msg.text) == ("49?151", "?Ann", "a?b")


async def test_media_that_cannot_be_fetched_keeps_its_id(tmp_path):
    channel = WhatsAppChannel("tok", "1055", app_secret="s", media_dir=str(tmp_path))  # not started: no API
    msg = await channel.inbound(webhook.parse(PAYLOAD).messages[1])
    assert [a.as_dict() for a in msg.attachments] == [
        {"kind": "image", "name": "", "mime": "image/jpeg", "size": 0, "ref": "whatsapp-media:1003383421387256"}
    ]


def test_a_channel_without_its_secrets_says_which():
    with pytest.raises(ValueError, match="app secret"):
        WhatsAppChannel("tok", "1055", app_secret="")
    assert WhatsAppChannel("tok", "1055", app_secret="", send_only=True).name == "whatsapp"


@pytest.mark.parametrize(
    ("status", "code", "permanent", "retry_after"),
    [
        (400, 131047, True, None),  # outside the window, no template: the agent is told
        (400, 130429, False, 1.0),  # throughput: wait and retry
        (400, 131056, False, 1.0),  # pair rate limit
        (429, 0, False, 1.0),
        (400, 131026, True, None),  # undeliverable
        (401, 190, True, None),  # bad token
        (500, 1, False, None),  # Meta's trouble: retry
        (503, 0, False, None),
    ],
)
def test_graph_errors_decide_retry_or_give_up(status, code, permanent, retry_after):
    error = graph.delivery_error(graph.GraphError(status, code, "x"))
    assert (error.permanent, error.retry_after) == (permanent, retry_after)
    if code == graph.OUTSIDE_WINDOW:
        assert "24-hour window" in error.reason and "whatsapp.template_name" in error.reason


def test_a_template_carries_the_reply_on_one_line():
    payload = graph.template_payload("4915", "reply_waiting", "de", "Line one\n\n\tline  two" + "x" * 2000)
    [param] = payload["template"]["components"][0]["parameters"]
    assert param["text"].startswith("Line one line two") and len(param["text"]) == 1024
    assert payload["template"]["language"] == {"code": "de"} and payload["to"] == "4915"
    assert json.dumps(graph.text_payload("4915", "y" * 5000))  # cut to the API's 4096
    assert len(graph.text_payload("4915", "y" * 5000)["text"]["body"]) == 4096


def test_send_limits_space_the_number_and_cap_each_person():
    channel = WhatsAppChannel("tok", "1055", app_secret="s", sends_per_second=4, sends_per_recipient_per_minute=3)
    tats: dict[str, float] = {}

    def turn(to: str, now: float = 100.0) -> float:  # one send's wait, as the shared limits reserve it
        waits = []
        for key, rate in channel.buckets(to):
            wait, tats[key] = gcra_reserve(tats.get(key), now, rate)
            waits.append(wait)
        return max(waits)

    # The number: 4 a second, bursts of 4. One person: 3 at once, then one every 20 s.
    assert [turn("a") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(20.0)]
    # Someone else is not held up by "a", only by the number: the fifth turn this second waits 1/4 s.
    assert turn("b") == pytest.approx(0.25)
    assert turn("a", now=160.0) == pytest.approx(0.0)  # a minute later "a" may write again (its 4th is at 120)
    assert [k for k, _ in channel.buckets("b")] == ["whatsapp:1055", "whatsapp:1055:b"]
    assert send_rates(0, 0) == (Rate(0.01, 1.0), Rate(1 / 60, 1.0))  # nonsense settings still limit


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
fields = st.sampled_from(
    [
        "from",
        "id",
        "type",
        "text",
        "body",
        "image",
        "statuses",
        "messages",
        "errors",
        "code",
        "status",
        "timestamp",
        "contacts",
        "wa_id",
        "profile",
        "name",
        "context",
        "caption",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(fields, json_values, max_size=6), st.dictionaries(fields, json_values, max_size=6))
def test_any_json_in_a_delivery_parses_or_is_skipped(message, status):
    value = {"messages": [{"from": "49", "id": "wamid.1", **message}], "statuses": [status], "contacts": [message]}
    body = json.dumps({"entry": [{"changes": [{"field": "messages", "value": value}]}]}).encode()
    found = webhook.parse(body)
    assert len(found.messages) + len(found.statuses) + found.skipped == 2
    for m in found.messages:
        assert isinstance(m.text, str) and isinstance(m.sender_name, str) and m.external_id and m.sender


def test_a_long_reply_is_cut_where_a_reader_would_pause():
    text = "a" * 4000 + "\n" + "b" * 200 + " " + "c" * 5000
    parts = graph.split_text(text)
    # after the newline; after the space; 5,000 c's have no place to pause, so 4,096 and the rest
    assert [len(p) for p in parts] == [4001, 201, 4096, 904] and "".join(parts) == text
    assert parts[0].endswith("\n") and parts[1] == "b" * 200 + " "
    assert graph.split_text("") == [""] and graph.split_text("short") == ["short"]


def test_media_is_stored_once_per_content_where_erasure_deletes_it(tmp_path):
    from bot.core.retention import remove_stored_files

    root = tmp_path / "attachments"  # email.attachment_dir, the store erasure and retention clean
    channel = WhatsAppChannel("tok", "1055", app_secret="s", media_dir=str(root / "whatsapp"))
    ref = channel._keep(b"\x89PNG same bytes", "image/png")
    assert ref == channel._keep(b"\x89PNG same bytes", "image/png") and ref.endswith(".png")
    assert remove_stored_files([ref], str(root)) == 1 and not Path(ref).exists()
