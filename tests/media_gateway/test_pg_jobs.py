"""The PostgreSQL job store on a real server: migrations, leases, adoption, cancel requests, instance slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from media_gateway.job_registry import JobTicket
from media_gateway.pg_jobs import MIGRATIONS, PostgresJobRegistry
from media_gateway.slots import SlotOffer
from shared_contracts.media import Job

pytestmark = pytest.mark.slow


def _job(job_id: str, status: str = "queued", provider: str = "comfyui") -> Job:
    return Job(id=job_id, status=status, mode="live", provider=provider, workflow="smoke_v1",  # type: ignore[arg-type]
               progress=0.0, images=[], seed=1, error=None, created_at=datetime.now(UTC), started_at=None,
               finished_at=None, latency_ms=None)


def _ticket() -> JobTicket:
    return JobTicket(provider="comfyui", workflow="smoke_v1", params={"seed": 1}, deadline_at=2e9)


def _registry(dsn: str, owner: str, *, lease_s: float = 30.0) -> PostgresJobRegistry:
    return PostgresJobRegistry(dsn, owner=owner, lease_s=lease_s, max_jobs=100, retention_s=3600)


@pytest_asyncio.fixture
async def pair(postgres_dsn: str) -> AsyncIterator[tuple[PostgresJobRegistry, PostgresJobRegistry]]:
    """Two replicas' registries on one database; `a` leases for 1 s so `b` can adopt its jobs soon."""
    a, b = _registry(postgres_dsn, "replica-a", lease_s=1.0), _registry(postgres_dsn, "replica-b")
    await asyncio.gather(a.open(), b.open())  # both migrate at once: the advisory lock makes it one migration
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_migrations_run_once_and_are_recorded(pair: tuple[PostgresJobRegistry, PostgresJobRegistry]) -> None:
    a, b = pair
    assert await a.db.applied() == [m.version for m in MIGRATIONS]
    assert await b.db.applied() == [m.version for m in MIGRATIONS]


async def test_any_replica_reads_a_job_and_only_the_owner_saves_it(
    pair: tuple[PostgresJobRegistry, PostgresJobRegistry]
) -> None:
    a, b = pair
    await a.save(_job("j1"))
    await a.track("j1", _ticket())
    seen = await b.get("j1")
    assert seen is not None and seen.status == "queued" and seen.provider == "comfyui"
    await b.save(_job("j1", "running"))  # b does not own it: ignored
    got = await b.get("j1")
    assert got is not None and got.status == "queued"
    await a.save(_job("j1", "running"))
    got = await b.get("j1")
    assert got is not None and got.status == "running"


async def test_a_dead_replicas_job_is_adopted_once_with_its_binding(
    pair: tuple[PostgresJobRegistry, PostgresJobRegistry]
) -> None:
    a, b = pair
    await a.save(_job("j1"))
    await a.track("j1", _ticket())
    await a.bind("j1", instance="http://gpu-1:8188", upstream_id="p-1")
    assert await b.adopt() == []  # a's lease still runs
    await asyncio.sleep(1.2)  # a stops renewing (as if killed)
    (adopted,) = await b.adopt()
    job, ticket = adopted
    assert job.id == "j1" and ticket is not None
    assert (ticket.upstream_id, ticket.instance, ticket.accepted) == ("p-1", "http://gpu-1:8188", False)
    assert await b.adopt() == []  # owned by b now
    lease = await a.heartbeat()
    assert "j1" not in lease.owned  # a learns it lost the job
    assert "j1" in (await b.heartbeat()).owned


async def test_cancel_asked_anywhere_reaches_the_owner_at_its_heartbeat(
    pair: tuple[PostgresJobRegistry, PostgresJobRegistry]
) -> None:
    a, b = pair
    await a.save(_job("j1", "running"))
    assert await b.request_cancel("j1") is True
    lease = await a.heartbeat()
    assert lease.cancel == {"j1"} and lease.owned == {"j1"}
    await a.save(_job("j1", "canceled"))
    assert await b.request_cancel("j1") is False


async def test_released_jobs_are_adopted_at_once(pair: tuple[PostgresJobRegistry, PostgresJobRegistry]) -> None:
    a, b = pair
    await b.save(_job("j1"))
    await b.release(["j1"])
    assert [job.id for job, _ in await a.adopt()] == ["j1"]


async def test_instance_caps_hold_across_replicas(pair: tuple[PostgresJobRegistry, PostgresJobRegistry]) -> None:
    a, b = pair
    offers = [SlotOffer("http://gpu-1:8188", 1), SlotOffer("http://gpu-2:8188", 1)]
    for n in range(6):
        await (a if n % 2 else b).save(_job(f"j{n}"))
    # Six takers at once from two replicas: two instances with one slot each admit exactly two.
    taken = await asyncio.gather(*((a if n % 2 else b).slots.take(f"j{n}", "comfyui", offers) for n in range(6)))
    assert sorted(t for t in taken if t is not None) == ["http://gpu-1:8188", "http://gpu-2:8188"]
    assert await a.slots.held("comfyui") == {"http://gpu-1:8188": 1, "http://gpu-2:8188": 1}
    winner = next(f"j{n}" for n, t in enumerate(taken) if t == "http://gpu-1:8188")
    await b.slots.release(winner)
    assert await a.slots.take("j5", "comfyui", offers) == "http://gpu-1:8188"
    # A final save frees the job's slot too.
    await a.save(_job("j5", "succeeded"))
    assert await a.slots.held("comfyui") == {"http://gpu-2:8188": 1}


async def test_bad_url_is_a_config_error_without_the_password() -> None:
    from service_common.config import ConfigError

    registry = _registry("postgresql://user:s3cret@127.0.0.1:1/none", "x")
    with pytest.raises(ConfigError) as caught:
        await registry.open()
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


async def test_a_job_store_down_is_a_storage_error(postgres_dsn: str) -> None:
    from shared_contracts.errors import StorageError

    registry = _registry(postgres_dsn, "x")
    await registry.open()
    try:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute("DROP TABLE media_jobs")
        await conn.close()
        with pytest.raises(StorageError):
            await registry.save(_job("j1"))
    finally:
        await registry.close()
