"""EmailChannel against real servers: dovecot (IMAP, started per test) and an aiosmtpd relay."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from bot.core.messages import DeliveryError, InboundMessage, OutboundMessage
from channels.base import Channel
from channels.email import EmailChannel
from tests.e2e.mailservers import (  # noqa: F401 (fixtures "dovecot", "smtp_relay")
    Dovecot,
    SmtpRelay,
    dovecot_fixture,
    free_port,
    smtp_relay_fixture,
)

MIME = Path(__file__).parent / "mime"


def mail(n: int, *, extra: str = "", sender: str = "ann@example.org") -> bytes:
    return (
        f"From: Ann <{sender}>\r\nTo: support@desk.test\r\nSubject: question {n}\r\n"
        f"Message-ID: <q{n}@example.org>\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n{extra}\r\n"
        f"Question number {n}\r\n"
    ).encode()


class Collector:
    """A deliver callback that records messages; can be told to fail or to block."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.fail_ids: set[str] = set()
        self.block: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, msg: InboundMessage) -> None:
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        if msg.external_id in self.fail_ids:
            raise RuntimeError("database is down")
        self.messages.append(msg)

    def ids(self) -> list[str]:
        return [m.external_id for m in self.messages]

    async def wait_for(self, count: int, within: float = 15.0) -> None:
        for _ in range(int(within / 0.05)):
            if len(self.messages) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} delivered, expected {count}")


def channel(tmp_path: Path, server: Dovecot | None = None, relay: SmtpRelay | None = None, **kw) -> EmailChannel:
    values = {"address": "support@desk.test", "attachment_dir": str(tmp_path / "files")}
    if server is not None:
        values.update(server.settings())
    if relay is not None:
        values.update(relay.settings())
    values.update(kw)
    return EmailChannel(**values)


async def test_is_a_channel(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    assert isinstance(ch, Channel) and ch.name == "email"


@pytest.mark.parametrize("idle", [True, False], ids=["idle", "polling"])
async def test_imap_delivers_then_marks_seen(tmp_path: Path, dovecot: Dovecot, idle: bool) -> None:
    await dovecot.append(mail(1))
    collector = Collector()
    collector.block = asyncio.Event()
    ch = channel(tmp_path, dovecot, imap_idle=idle)
    await ch.start(collector)
    try:
        await asyncio.wait_for(collector.entered.wait(), 10)
        # deliver has the message but has not returned: the server must still show it unseen.
        assert await dovecot.flags() == {"<q1@example.org>": set()}
        collector.block.set()
        await collector.wait_for(1)
        for _ in range(100):
            if "\\Seen" in (await dovecot.flags())["<q1@example.org>"]:
                break
            await asyncio.sleep(0.05)
        assert "\\Seen" in (await dovecot.flags())["<q1@example.org>"]
        # New mail arrives while the channel waits (IDLE push or the next poll).
        await dovecot.append(mail(2))
        await collector.wait_for(2)
    finally:
        await ch.stop()
    first = collector.messages[0]
    assert (first.sender, first.text, first.meta_value("subject")) == ("ann@example.org", "Question number 1",
                                                                        "question 1")
    raw = await asyncio.to_thread(Path(first.raw_ref).read_bytes)
    assert raw.replace(b"\r\n", b"\n") == mail(1).replace(b"\r\n", b"\n")
    assert collector.ids() == ["<q1@example.org>", "<q2@example.org>"]


async def test_idle_push_delivers_without_waiting_for_the_poll(tmp_path: Path, dovecot: Dovecot) -> None:
    collector = Collector()
    ch = channel(tmp_path, dovecot, imap_poll_s=60.0)  # a poll would come only after a minute
    await ch.start(collector)
    try:
        await asyncio.sleep(0.5)  # connected and idling
        await dovecot.append(mail(7))
        await collector.wait_for(1, within=8.0)
    finally:
        await ch.stop()
    assert collector.ids() == ["<q7@example.org>"]


async def test_poll_now_wakes_a_polling_channel(tmp_path: Path, dovecot: Dovecot) -> None:
    collector = Collector()
    ch = channel(tmp_path, dovecot, imap_poll_s=60.0, imap_idle=False)
    await ch.start(collector)
    try:
        await asyncio.sleep(0.5)
        await dovecot.append(mail(8))
        await asyncio.sleep(0.5)
        assert collector.messages == []  # polling, and the next poll is a minute away
        ch.poll_now()
        await collector.wait_for(1, within=8.0)
    finally:
        await ch.stop()


async def test_failed_deliver_stays_unseen_and_is_retried(tmp_path: Path, dovecot: Dovecot) -> None:
    await dovecot.append(mail(1))
    await dovecot.append(mail(2))
    collector = Collector()
    collector.fail_ids = {"<q1@example.org>"}
    ch = channel(tmp_path, dovecot, imap_idle=False)
    await ch.start(collector)
    try:
        await collector.wait_for(1)
        assert collector.ids() == ["<q2@example.org>"]  # the bad one does not block the next
        flags = await dovecot.flags()
        assert flags["<q1@example.org>"] == set() and "\\Seen" in flags["<q2@example.org>"]
        collector.fail_ids.clear()  # the database is back
        await collector.wait_for(2)
    finally:
        await ch.stop()
    assert collector.ids() == ["<q2@example.org>", "<q1@example.org>"]
    assert ch.inbox is not None and ch.inbox.failed >= 1


async def test_a_fetched_batch_is_delivered_senders_side_by_side_each_in_order(tmp_path: Path,
                                                                            dovecot: Dovecot) -> None:
    """One dispatch batch for a mailbox of several senders, instead of one transaction per mail."""
    senders = ["ann@example.org", "bob@example.org", "cid@example.org"]
    for n in range(9):
        await dovecot.append(mail(n, sender=senders[n % 3]))
    in_flight, most, order = 0, 0, []

    async def deliver(msg: InboundMessage) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)  # the dispatcher storing it
        in_flight -= 1
        order.append((msg.sender, msg.external_id))

    ch = channel(tmp_path, dovecot, imap_idle=False)
    await ch.start(deliver)
    try:
        for _ in range(300):
            if len(order) == 9:
                break
            await asyncio.sleep(0.05)
    finally:
        await ch.stop()
    assert most == 3  # the three senders at once, never two mails of one sender
    for i, who in enumerate(senders):
        assert [ext for s, ext in order if s == who] == [f"<q{n}@example.org>" for n in range(i, 9, 3)]
    flags = await dovecot.flags()
    assert all("\\Seen" in flags[f"<q{n}@example.org>"] for n in range(9))


async def test_crash_before_commit_loses_nothing_and_restart_does_not_repeat(tmp_path: Path, dovecot: Dovecot) -> None:
    await dovecot.append(mail(1))
    crashing = Collector()
    crashing.block = asyncio.Event()  # never set: the process "dies" inside deliver
    ch = channel(tmp_path, dovecot)
    await ch.start(crashing)
    await asyncio.wait_for(crashing.entered.wait(), 10)
    await ch.stop()
    assert crashing.messages == []
    assert await dovecot.flags() == {"<q1@example.org>": set()}

    restarted = Collector()
    ch = channel(tmp_path, dovecot)
    await ch.start(restarted)
    try:
        await restarted.wait_for(1)
        await asyncio.sleep(1.0)  # a few more polls/IDLE rounds: nothing is delivered twice
    finally:
        await ch.stop()
    assert restarted.ids() == ["<q1@example.org>"]

    third = Collector()
    ch = channel(tmp_path, dovecot)
    await ch.start(third)
    await asyncio.sleep(1.0)
    await ch.stop()
    assert third.messages == []


async def test_same_message_twice_has_same_external_id(tmp_path: Path, dovecot: Dovecot) -> None:
    await dovecot.append(mail(1))
    await dovecot.append(mail(1))
    await dovecot.append((MIME / "no_message_id.eml").read_bytes())
    await dovecot.append((MIME / "no_message_id.eml").read_bytes())
    collector = Collector()
    ch = channel(tmp_path, dovecot)
    await ch.start(collector)
    try:
        await collector.wait_for(4)
    finally:
        await ch.stop()
    ids = collector.ids()
    assert ids[0] == ids[1] == "<q1@example.org>"
    assert ids[2] == ids[3] and ids[2].endswith("@no-message-id.invalid>")


async def test_unparseable_mail_is_set_aside_and_the_rest_flows(tmp_path: Path, dovecot: Dovecot) -> None:
    await dovecot.append(b"Subject: nobody sent this\r\n\r\nno From at all\r\n")
    await dovecot.append(mail(2))
    collector = Collector()
    ch = channel(tmp_path, dovecot)
    await ch.start(collector)
    try:
        await collector.wait_for(1)
    finally:
        await ch.stop()
    assert collector.ids() == ["<q2@example.org>"]
    assert ch.inbox is not None and ch.inbox.rejected == 1
    assert list((await dovecot.flags()).keys()) == ["<q2@example.org>"]
    assert len(await dovecot.flags("tierdesk-rejected")) == 1


async def test_wrong_password_retries_without_crashing(tmp_path: Path, dovecot: Dovecot) -> None:
    await dovecot.append(mail(1))
    collector = Collector()
    ch = channel(tmp_path, dovecot, imap_password="wrong")
    await ch.start(collector)
    await asyncio.sleep(1.5)
    assert ch._imap_task is not None and not ch._imap_task.done()
    await ch.stop()
    assert collector.messages == []


async def test_send_with_threading_headers(tmp_path: Path, smtp_relay: SmtpRelay) -> None:
    ch = channel(tmp_path, relay=smtp_relay, from_name="Desk")
    sent_id = await ch.send(
        OutboundMessage(
            channel="email", recipient="ann@example.org", text="We are on it.", subject="Re: question 1",
            reply_to="<q1@example.org>", ticket_id=123, idempotency_key="ob-1",
            meta=(("author", "bot"), ("references", "<q0@example.org>")),
        )
    )
    (got,) = await smtp_relay.handler.wait_for(1)
    assert got["Message-ID"] == sent_id and sent_id.endswith("@desk.test>")
    assert got["Subject"] == "Re: question 1 [#T-123]"
    assert got["In-Reply-To"] == "<q1@example.org>"
    assert got["References"] == "<q0@example.org> <q1@example.org>"
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["From"] == "Desk <support@desk.test>"
    assert smtp_relay.handler.envelopes == [("support@desk.test", ["ann@example.org"])]
    assert got.get_content().strip() == "We are on it."


async def test_agent_reply_is_not_auto_submitted(tmp_path: Path, smtp_relay: SmtpRelay) -> None:
    ch = channel(tmp_path, relay=smtp_relay)
    await ch.send(OutboundMessage(channel="email", recipient="ann@example.org", text="Hi", meta=(("author", "agent"),)))
    (got,) = await smtp_relay.handler.wait_for(1)
    assert got["Auto-Submitted"] is None


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [("451 4.3.0 try later", False), ("421 4.7.0 busy", False), ("550 5.1.1 no such user", True),
     ("554 5.7.1 rejected", True)],
)
async def test_smtp_codes_map_to_retry_or_fail(tmp_path: Path, smtp_relay: SmtpRelay, answer: str,
                                               permanent: bool) -> None:
    smtp_relay.handler.answers.append(answer)
    ch = channel(tmp_path, relay=smtp_relay)
    msg = OutboundMessage(channel="email", recipient="ann@example.org", text="Hi")
    with pytest.raises(DeliveryError) as info:
        await ch.send(msg)
    assert info.value.permanent is permanent
    assert answer.split()[0] in info.value.reason
    # The relay recovers: the retry goes through.
    await ch.send(msg)
    assert len(await smtp_relay.handler.wait_for(1)) == 1


async def test_unreachable_relay_is_transient(tmp_path: Path) -> None:
    ch = channel(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False, smtp_timeout_s=3)
    with pytest.raises(DeliveryError) as info:
        await ch.send(OutboundMessage(channel="email", recipient="ann@example.org", text="Hi"))
    assert info.value.permanent is False


async def test_bad_recipient_is_permanent(tmp_path: Path, smtp_relay: SmtpRelay) -> None:
    ch = channel(tmp_path, relay=smtp_relay)
    with pytest.raises(DeliveryError) as info:
        await ch.send(OutboundMessage(channel="email", recipient="not-an-address", text="Hi"))
    assert info.value.permanent is True
    assert smtp_relay.handler.received == []


@pytest.mark.parametrize("scheme", ["lmtp", "smtp"])
async def test_listener_answers_250_only_after_deliver(tmp_path: Path, scheme: str) -> None:
    port = free_port()
    listen = f"127.0.0.1:{port}" if scheme == "lmtp" else f"smtp://127.0.0.1:{port}"
    collector = Collector()
    collector.fail_ids = {"<q2@example.org>"}
    ch = channel(tmp_path, lmtp_listen=listen)
    await ch.start(collector)

    def send(raw: bytes) -> dict:
        client = smtplib.LMTP("127.0.0.1", port) if scheme == "lmtp" else smtplib.SMTP("127.0.0.1", port)
        try:
            return client.sendmail("ann@example.org", ["support@desk.test"], raw)
        finally:
            client.quit()

    try:
        assert await asyncio.to_thread(send, mail(1)) == {}
        assert collector.ids() == ["<q1@example.org>"]  # stored before the 250 came back
        with pytest.raises(smtplib.SMTPDataError) as temp:
            await asyncio.to_thread(send, mail(2))
        assert temp.value.smtp_code == 451  # the MTA keeps it and retries
        with pytest.raises(smtplib.SMTPDataError) as perm:
            await asyncio.to_thread(send, b"Subject: no sender\r\n\r\nbody\r\n")
        assert perm.value.smtp_code == 550 and b"no sender address" in perm.value.smtp_error
    finally:
        await ch.stop()
    assert collector.ids() == ["<q1@example.org>"]


def test_from_settings_reads_the_settings_section(tmp_path: Path) -> None:
    from bot.settings import EmailSettings

    section = EmailSettings(address="desk@x.test", imap_host="imap.x.test", smtp_host="smtp.x.test",
                            attachment_dir=str(tmp_path))
    ch = EmailChannel.from_settings(section)
    assert ch.address == "desk@x.test"
    assert ch.imap_account is not None and ch.imap_account.host == "imap.x.test"
    assert ch.smtp["hostname"] == "smtp.x.test" and ch.smtp["start_tls"] is True
