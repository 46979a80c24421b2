"""/metrics after real traffic: the counts a Prometheus scrape reads, against a history counted by hand."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.core.messages import DeliveryError
from crm_store.models import Contact


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(web_env) -> dict:
    got = await web_env.client.get("/metrics")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return _samples(got.text)


async def test_metrics_count_contacts_tickets_and_the_backlog_after_traffic(web_env):
    before = await _scrape(web_env)
    await web_env.agent("Alice", role="supervisor")
    # By hand: Bob writes twice (one ticket), Carol once (a second ticket); NLU is off, so each first message is
    # handed off and acknowledged. Alice closes Bob's ticket at the desk.
    bob = await web_env.console.receive("bob", "my parcel is late")
    await web_env.console.receive("bob", "any news on it?")
    await web_env.console.receive("carol", "I need to change my address")
    await web_env.console.receive("alice", f"/close T-{bob.ticket_id} sent again")
    await web_env.app.outbox.drain()

    after = await _scrape(web_env)
    assert _value(after, "tierdesk_contacts", channel="console", direction="in") == 3
    async with web_env.app.sessions() as s:
        out = await s.scalar(
            select(func.count()).where(
                Contact.direction == "out", Contact.desk.is_(False), Contact.channel == "console"
            )
        )
    assert out >= 3  # two acknowledgements and the rating question at least
    assert _value(after, "tierdesk_contacts", channel="console", direction="out") == out

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("tierdesk_tickets_total", change="opened", tier="potential") == 2
    assert delta("tierdesk_tickets_total", change="closed", tier="potential") == 1
    assert _value(after, "tierdesk_open_tickets", tier="potential") == 1
    assert _value(after, "tierdesk_breached_open_tickets", tier="potential") == 0
    assert not [k for k in after if k[0] == "tierdesk_outbox_items"]  # everything was sent
    # each message is handled in a batch of its own here (they arrive one after another)
    assert delta("tierdesk_dispatch_batch_messages_sum") == 4
    assert delta("tierdesk_dispatch_batch_seconds_count") == delta("tierdesk_dispatch_batch_messages_count") >= 1
    assert _value(after, "tierdesk_metrics_scrape_errors_total", source="database") == _value(
        before, "tierdesk_metrics_scrape_errors_total", source="database"
    )


async def test_metrics_show_a_failed_send_per_channel(web_env):
    web_env.console.fail_next = [DeliveryError("mailbox gone", permanent=True)]
    await web_env.console.receive("dora", "hello?")  # its acknowledgement is refused for good
    await web_env.app.outbox.drain()
    samples = await _scrape(web_env)
    assert _value(samples, "tierdesk_outbox_items", channel="console", status="failed") == 1


@pytest.mark.parametrize("web_env", [{"metrics_token": "s3cret-scrape"}], indirect=True)
async def test_metrics_need_the_token_when_one_is_set(web_env):
    assert (await web_env.client.get("/metrics")).status_code == 401
    wrong = await web_env.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await web_env.client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert right.status_code == 200 and "tierdesk_contacts" in right.text


async def test_metrics_without_a_token_answer_this_machine_only(web_env):
    far = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web_env.web, client=("203.0.113.9", 4000)), base_url="http://testserver"
    )
    async with far:
        assert (await far.get("/metrics")).status_code == 403
