"""API channels' plain parts: what a posted message may be, what a callback receives, what its answer means,
and who may post or pull."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.messages import OutboundMessage
from bot.settings import ApiChannelSettings, ApiEndpointSettings, Settings
from channels.api import ApiChannel, Endpoint, Refused, callback_body, outcome_of, parse_message, split_address
from channels.base import build


def parse(body: object, limit: int = 100):
    return parse_message(
        "shop", json.dumps(body).encode() if not isinstance(body, bytes) else body, max_text_chars=limit
    )


def test_a_posted_message_is_addressed_within_its_endpoint():
    msg = parse(
        {
            "id": 7001,
            "sender": "cust-42",
            "sender_name": "Mei",
            "text": "Where is 5521?",
            "attachments": [{"kind": "photo", "name": "a.jpg", "mime": "image/jpeg", "size": 9, "url": "u"}],
        }
    )
    assert (msg.channel, msg.external_id, msg.sender, msg.sender_name) == ("api", "shop:7001", "shop:cust-42", "Mei")
    assert [a.as_dict() for a in msg.attachments] == [
        {"kind": "photo", "name": "a.jpg", "mime": "image/jpeg", "size": 9, "ref": "u"}
    ]
    assert msg.meta_value("api_channel") == "shop"
    only_file = parse({"id": "x", "sender": "s", "attachments": [{"url": "https://f"}]})
    assert only_file.text == "" and only_file.attachments[0].kind == "file"


def test_poison_strings_are_cleaned_not_stored_raw():
    msg = parse({"id": "m\u0000-1", "sender": "cu\u0007st", "text": "hi\u0000 there \udc80", "sender_name": "\x1bAnn"})
    assert (msg.external_id, msg.sender, msg.text, msg.sender_name) == ("shop:m-1", "shop:cust", "hi there ?", "Ann")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        ([1, 2], 400, "JSON object"),
        ({"sender": "s", "text": "t"}, 422, "id and sender"),
        ({"id": "1", "text": "t"}, 422, "id and sender"),
        ({"id": True, "sender": "s", "text": "t"}, 422, "id and sender"),
        ({"id": "1", "sender": "s", "text": 5}, 422, "text must be a string"),
        ({"id": "1", "sender": "s", "text": "x" * 101}, 422, "longer than 100"),
        ({"id": "1", "sender": "s", "text": "  "}, 422, "text or attachments"),
        ({"id": "1", "sender": "\u0000", "text": "t"}, 422, "printable"),
        ({"id": "\u0007 ", "sender": "s", "text": "t"}, 422, "printable"),
        ({"id": "1" * 300, "sender": "s", "text": "t"}, 422, "longer than 255"),
        ({"id": "1", "sender": "s", "text": "t", "attachments": "a"}, 422, "attachments must be a list"),
        ({"id": "1", "sender": "s", "text": "t", "attachments": [{"size": "big"}]}, 422, "size an integer"),
        ({"id": "1", "sender": "s", "text": "t", "attachments": [3]}, 422, "each attachment"),
    ],
)
def test_what_cannot_be_a_message_is_refused_with_its_reason(body, status, says):
    with pytest.raises(Refused) as refused:
        parse(body)
    assert refused.value.status == status and says in refused.value.reason


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (500, "retry"),
        (503, "retry"),
        (408, "retry"),
        (429, "retry"),
        (410, "failed"),
        (404, "failed"),
        (400, "failed"),
        (301, "failed"),
    ],
)
def test_the_callbacks_answer_decides(status, outcome):
    assert outcome_of(status) == outcome


def test_a_callback_body_is_the_reply_for_the_callers_sender():
    message = OutboundMessage(
        channel="api",
        recipient="shop:cust-42",
        text="Shipped",
        reply_to="shop:m-1",
        ticket_id=12,
        idempotency_key="t12:r3",
    )
    assert callback_body("shop", message) == (
        '{"channel":"shop","id":"t12:r3","recipient":"cust-42","reply_to":"m-1","text":"Shipped","ticket":"T-12"}'
    )
    assert split_address("gw:+1:555") == ("gw", "+1:555")
    with pytest.raises(ValueError):
        split_address("no-endpoint")


def test_only_the_endpoints_own_token_gets_in():
    channel = ApiChannel([Endpoint("shop", "tok-1"), Endpoint("gw", "tok-2")])
    assert channel.authorize("shop", {"authorization": "Bearer tok-1"}).name == "shop"
    assert channel.authorize("shop", {"authorization": "bearer  tok-1 "}).name == "shop"
    for headers in ({"authorization": "Bearer tok-2"}, {}, {"authorization": "tok-1"}, {"authorization": "Bearer tök"}):
        with pytest.raises(Refused) as refused:
            channel.authorize("shop", headers)
        assert refused.value.status == 401
    with pytest.raises(Refused) as unknown:
        channel.authorize("nope", {"authorization": "Bearer tok-1"})
    assert unknown.value.status == 404


def test_configuration_mistakes_stop_startup_with_a_reason():
    for endpoints, says in [
        ([], "no API channel"),
        ([Endpoint("a b", "t")], "letters, digits"),
        ([Endpoint("shop", "")], "no token"),
        ([Endpoint("shop", "t", callback_url="http://x")], "no signing secret"),
    ]:
        with pytest.raises(ValueError, match=says):
            ApiChannel(endpoints)
    settings = Settings(
        api_channel=ApiChannelSettings(
            endpoints={
                "shop": ApiEndpointSettings(token="t", callback_url="http://127.0.0.1:9/cb", secret="s", timeout_s=2),
                "gw": ApiEndpointSettings(token="u"),
            }
        )
    )
    channel = build("api", settings)
    assert channel.endpoints["shop"] == Endpoint("shop", "t", "http://127.0.0.1:9/cb", "s", 2.0)
    assert channel.endpoints["gw"].pulled and not channel.endpoints["shop"].pulled


async def test_a_reply_for_an_unknown_endpoint_fails_for_good_and_pulled_ones_wait():
    from bot.core.messages import DeliveryError

    channel = ApiChannel([Endpoint("gw", "t")])
    with pytest.raises(DeliveryError) as failed:
        await channel.send(OutboundMessage(channel="api", recipient="shop:1", text="x", idempotency_key="k"))
    assert failed.value.permanent
    assert await channel.send(OutboundMessage(channel="api", recipient="gw:1", text="x", idempotency_key="k")) == "k"


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "sender", "text", "sender_name", "attachments", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["kind", "name", "size", "url"]), inner)
            ),
            max_leaves=12,
        ),
        max_size=6,
    )
)
def test_any_json_object_is_a_message_or_a_clear_refusal(body):
    try:
        msg = parse(body, limit=1000)
    except Refused as refused:
        assert refused.status in (400, 422) and refused.reason
        return
    assert msg.external_id.startswith("shop:") and len(msg.external_id) > 5
    assert msg.sender.startswith("shop:") and len(msg.sender) > 5
