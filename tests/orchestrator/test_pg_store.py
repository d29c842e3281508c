"""The PostgreSQL run store on a real server: documents, listing, leases, adoption, release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import pytest_asyncio

from orchestrator.runs.pg_store import PostgresRunStore
from orchestrator.runs.store import new_run_id
from shared_contracts.errors import NotFound
from shared_contracts.flows import Product, RunDocument
from tests.orchestrator.answers import PRODUCT

pytestmark = pytest.mark.slow


def _doc(minutes_ago: int, status: str = "running") -> RunDocument:
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return RunDocument(
        run_id=new_run_id(started), flow="p0-product-detail", status=status, mode=None,  # type: ignore[arg-type]
        product=msgspec.convert(PRODUCT, Product), outputs={}, images=[], steps={}, started_at=started,
        finished_at=None, duration_ms=None,
    )


@pytest_asyncio.fixture
async def pair(postgres_dsn: str) -> AsyncIterator[tuple[PostgresRunStore, PostgresRunStore]]:
    a = PostgresRunStore(postgres_dsn, owner="replica-a", lease_s=1.0)
    b = PostgresRunStore(postgres_dsn, owner="replica-b", lease_s=30.0)
    await asyncio.gather(a.open(), b.open())
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_documents_are_shared_and_listed_newest_first(pair: tuple[PostgresRunStore, PostgresRunStore]) -> None:
    a, b = pair
    old, new, done = _doc(5), _doc(1), _doc(3, "succeeded")
    for doc in (old, new, done):
        await a.save(doc)
    assert (await b.get(new.run_id)).run_id == new.run_id
    assert [d.run_id for d in await b.recent(10)] == [new.run_id, done.run_id, old.run_id]
    assert [d.run_id for d in await b.recent(10, status="succeeded")] == [done.run_id]
    assert [d.run_id for d in await b.unfinished()] == [old.run_id, new.run_id]
    with pytest.raises(NotFound):
        await b.get(new_run_id())
    with pytest.raises(NotFound):
        await b.get("../etc/passwd")


async def test_a_dead_replicas_runs_are_adopted_once(pair: tuple[PostgresRunStore, PostgresRunStore]) -> None:
    a, b = pair
    doc = _doc(1)
    await a.save(doc)
    assert await b.adopt() == []
    await asyncio.sleep(1.2)  # a stops renewing
    assert [d.run_id for d in await b.adopt()] == [doc.run_id]
    assert await b.adopt() == []
    assert doc.run_id not in await a.heartbeat()  # a learns it lost the run
    assert doc.run_id in await b.heartbeat()
    await a.save(doc)  # a's late write is ignored: b owns the run now
    doc.status = "succeeded"
    await b.save(doc)
    assert (await a.get(doc.run_id)).status == "succeeded"


async def test_released_runs_are_adopted_at_once(pair: tuple[PostgresRunStore, PostgresRunStore]) -> None:
    a, b = pair
    doc = _doc(1)
    await b.save(doc)
    await b.release([doc.run_id])
    assert [d.run_id for d in await a.adopt()] == [doc.run_id]
