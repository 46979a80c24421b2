"""Erasing a customer, or contact retention, deletes the stored raw mails and attachments nobody else's contact
still refers to; files shared with another contact stay, and nothing outside the store is ever touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.retention import remove_stored_files, retain_contacts
from crm_store.models import Contact, Customer
from crm_store.repositories import privacy


def _contact(n: int, customer_id: int, raw: str | None, attachments: list[dict], at: datetime) -> Contact:
    return Contact(channel="email", external_id=f"m{n}", direction="in", author="customer", address="a@x",
                   customer_id=customer_id, text=f"text {n}", raw_ref=raw, attachments=attachments, created_at=at,
                   logged_at=at)


async def test_erase_deletes_only_the_files_nobody_else_refers_to(db, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    own, shared, photo, outside = (store / "own.eml", store / "shared.eml", store / "photo.jpg",
                                   tmp_path / "outside.txt")
    for f in (own, shared, photo, outside):
        f.write_bytes(b"x")
    now = datetime.now(UTC)
    async with db.sessions() as s, s.begin():
        s.add_all([Customer(id=1, name="Vera"), Customer(id=2, name="Otto")])
        await s.flush()
        s.add_all([
            _contact(1, 1, str(own), [{"kind": "photo", "ref": str(photo)}], now),
            _contact(2, 1, str(shared), [{"kind": "file", "ref": str(outside)}], now),
            _contact(3, 2, str(shared), [], now),  # Otto's copy of the same mail: it stays
        ])
    async with db.sessions() as s, s.begin():
        done = await privacy.erase_customer(s, 1)
    assert set(done.files) == {str(own), str(photo), str(outside)}
    assert done.as_dict()["files"] == 3
    assert remove_stored_files(done.files, str(store)) == 2
    assert not own.exists() and not photo.exists()
    assert shared.exists() and outside.exists()  # shared with Otto; outside the store


async def test_retention_deletes_the_raw_mail_of_old_contacts(db, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    old, new = store / "old.eml", store / "new.eml"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    now = datetime.now(UTC)
    async with db.sessions() as s, s.begin():
        s.add(Customer(id=1, name="Vera"))
        await s.flush()
        s.add_all([_contact(1, 1, str(old), [], now - timedelta(days=400)), _contact(2, 1, str(new), [], now)])
    assert await retain_contacts(db.sessions, 365, files_root=str(store)) == 1
    assert not old.exists() and new.exists()
