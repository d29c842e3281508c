"""The shared job store: jobs, resume tickets, leases and instance slots in PostgreSQL (`jobs.url`).

Every replica that is given the same database answers every job. The replica that takes or adopts a job
owns it for a lease (`lease_s`) that its heartbeat renews; only the owner saves the job's snapshots. A
replica that dies stops renewing, and once the lease has run out another claims the job
(`SELECT … FOR UPDATE SKIP LOCKED`, so two adopters never take the same one) and resumes it from its
ticket: by the upstream id recorded before submission, so no prompt is submitted twice. A replica that
shuts down releases its leases at once. Cancelling through any replica sets `cancel_requested`, which the
owner's next heartbeat picks up. Upstream instance slots are rows' `slot` flags, counted under a
transaction-level advisory lock per provider, so a per-instance cap holds across all replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg
import msgspec
import structlog

from service_common.postgres import Database, Migration, storage_errors
from shared_contracts.errors import StorageError
from shared_contracts.media import Job

from .job_registry import FINAL, JobRegistry, JobTicket, Lease
from .slots import SlotLedger, SlotOffer, choose

__all__ = ["MIGRATIONS", "PostgresJobRegistry", "PostgresSlots"]

_log = structlog.get_logger(component="jobs.postgres")
_FINAL = sorted(FINAL)
_OPEN = ["queued", "running"]

MIGRATIONS = (
    Migration(1, "media jobs with leases and instance slots", """
CREATE TABLE media_jobs (
    id               text        PRIMARY KEY,
    provider         text        NOT NULL,
    status           text        NOT NULL,
    job              jsonb       NOT NULL,     -- the public Job snapshot
    ticket           jsonb,                    -- what resuming needs; NULL once final
    upstream_id      text,                     -- the upstream's id for the work (ComfyUI's prompt_id)
    accepted         boolean     NOT NULL DEFAULT false,  -- the upstream confirmed it has the work
    instance         text,                     -- the upstream instance the job is bound to
    slot             boolean     NOT NULL DEFAULT false,  -- holds one of that instance's in-flight slots
    owner            text,                     -- the replica driving it; NULL when nobody is
    lease_until      timestamptz,              -- the owner must renew before this
    cancel_requested boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_jobs_open ON media_jobs (lease_until) WHERE status IN ('queued', 'running');
CREATE INDEX media_jobs_owner ON media_jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX media_jobs_slots ON media_jobs (provider, instance) WHERE slot;
CREATE INDEX media_jobs_finished ON media_jobs (updated_at) WHERE status IN ('succeeded', 'failed', 'canceled');
"""),
)

_encode = msgspec.json.Encoder().encode
_decode_job = msgspec.json.Decoder(Job)
_decode_ticket = msgspec.json.Decoder(JobTicket)
_STORE = "job"
# At most this many jobs are adopted per sweep; the rest wait for the next one.
_ADOPT_BATCH = 100


def _text(value: Any) -> str:
    return _encode(value).decode()


def _lock_key(provider: str) -> int:
    digest = hashlib.sha256(f"pdp-media-slots:{provider}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresJobRegistry(JobRegistry):
    """Jobs in `media_jobs`; `owner` names this replica (unique per process)."""

    durable = True
    shared = True

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        lease_s: float,
        max_jobs: int,
        retention_s: float,
        slot_poll_s: float = 0.5,
        pool_size: int = 10,
    ) -> None:
        self.db = Database(url, component="media_jobs", migrations=MIGRATIONS, max_size=pool_size)
        self.owner = owner
        self.lease_s = lease_s
        self._max, self._retention = max_jobs, retention_s
        self._slots = PostgresSlots(self, poll_s=slot_poll_s)

    def __repr__(self) -> str:
        return f"PostgresJobRegistry({self.db!r}, owner={self.owner!r})"

    @property
    def slots(self) -> SlotLedger:
        return self._slots

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def save(self, job: Job) -> None:
        with storage_errors("save", _STORE):
            if job.status in FINAL:
                done = await self.db.pool.execute(
                    "UPDATE media_jobs SET status = $2, job = $3, ticket = NULL, slot = false, owner = NULL, "
                    "lease_until = NULL, updated_at = now() WHERE id = $1 AND (owner = $4 OR owner IS NULL)",
                    job.id, job.status, _text(job), self.owner,
                )
            else:
                done = await self.db.pool.execute(
                    "INSERT INTO media_jobs (id, provider, status, job, owner, lease_until) "
                    "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) "
                    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, job = excluded.job, "
                    "updated_at = now() WHERE media_jobs.owner = $5",
                    job.id, job.provider, job.status, _text(job), self.owner, self.lease_s,
                )
        if done.endswith(" 0"):
            # Another replica adopted it (this one's lease ran out): its saves are the ones that count now.
            _log.warning("job_save_not_owner", job_id=job.id, status=job.status)

    async def get(self, job_id: str) -> Job | None:
        with storage_errors("read", _STORE):
            raw = await self.db.pool.fetchval("SELECT job::text FROM media_jobs WHERE id = $1", job_id)
        return _decode_job.decode(raw) if raw is not None else None

    async def track(self, job_id: str, ticket: JobTicket) -> None:
        with storage_errors("save", _STORE):
            await self.db.pool.execute("UPDATE media_jobs SET ticket = $2 WHERE id = $1", job_id, _text(ticket))

    async def bind(self, job_id: str, *, instance: str | None, upstream_id: str) -> None:
        with storage_errors("save", _STORE):
            await self.db.pool.execute(
                "UPDATE media_jobs SET instance = coalesce($2, instance), upstream_id = $3, accepted = false "
                "WHERE id = $1", job_id, instance, upstream_id,
            )

    async def set_upstream(self, job_id: str, upstream_id: str) -> None:
        with storage_errors("save", _STORE):
            await self.db.pool.execute(
                "UPDATE media_jobs SET upstream_id = $2, accepted = true WHERE id = $1", job_id, upstream_id
            )

    async def unfinished(self) -> list[tuple[Job, JobTicket | None]]:
        with storage_errors("read", _STORE):
            rows = await self.db.pool.fetch(
                "SELECT job::text, ticket::text, upstream_id, instance, accepted FROM media_jobs "
                "WHERE status = ANY($1::text[]) ORDER BY created_at", _OPEN,
            )
        return [_unpack(row) for row in rows]

    async def adopt(self) -> list[tuple[Job, JobTicket | None]]:
        with storage_errors("adopt jobs", _STORE):
            rows = await self.db.pool.fetch(
                "WITH picked AS (SELECT id FROM media_jobs WHERE status = ANY($1::text[]) "
                "AND (lease_until IS NULL OR lease_until < now()) ORDER BY created_at LIMIT $4 "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE media_jobs j SET owner = $2, lease_until = now() + make_interval(secs => $3) "
                "FROM picked WHERE j.id = picked.id "
                "RETURNING j.job::text, j.ticket::text, j.upstream_id, j.instance, j.accepted, j.created_at",
                _OPEN, self.owner, self.lease_s, _ADOPT_BATCH,
            )
        rows = sorted(rows, key=lambda row: row["created_at"])
        if rows:
            _log.info("jobs_adopted", jobs=len(rows), owner=self.owner)
        await self._prune()
        return [_unpack(row) for row in rows]

    async def heartbeat(self) -> Lease:
        with storage_errors("renew leases", _STORE):
            rows = await self.db.pool.fetch(
                "UPDATE media_jobs SET lease_until = now() + make_interval(secs => $2) "
                "WHERE owner = $1 AND status = ANY($3::text[]) RETURNING id, cancel_requested",
                self.owner, self.lease_s, _OPEN,
            )
        return Lease(
            owned=frozenset(row["id"] for row in rows),
            cancel=frozenset(row["id"] for row in rows if row["cancel_requested"]),
        )

    async def release(self, job_ids: Collection[str]) -> None:
        if not job_ids:
            return
        with storage_errors("release leases", _STORE):
            await self.db.pool.execute(
                "UPDATE media_jobs SET owner = NULL, lease_until = NULL WHERE id = ANY($1::text[]) AND owner = $2",
                list(job_ids), self.owner,
            )
        _log.info("jobs_released", jobs=len(job_ids), owner=self.owner)

    async def request_cancel(self, job_id: str) -> bool:
        with storage_errors("save", _STORE):
            found = await self.db.pool.fetchval(
                "UPDATE media_jobs SET cancel_requested = true WHERE id = $1 AND status = ANY($2::text[]) "
                "RETURNING id", job_id, _OPEN,
            )
        return found is not None

    async def unfinished_count(self, provider: str) -> int | None:
        with storage_errors("read", _STORE):
            count = await self.db.pool.fetchval(
                "SELECT count(*) FROM media_jobs WHERE provider = $1 AND status = ANY($2::text[])", provider, _OPEN
            )
        return int(count or 0)

    async def _prune(self) -> None:
        """Finished jobs past `retention_s`, and beyond the newest `max_jobs`, are deleted."""
        try:
            with storage_errors("prune", _STORE):
                await self.db.pool.execute(
                    "DELETE FROM media_jobs WHERE status = ANY($1::text[]) AND "
                    "(updated_at < now() - make_interval(secs => $2) OR id IN (SELECT id FROM media_jobs "
                    "WHERE status = ANY($1::text[]) ORDER BY updated_at DESC OFFSET $3))",
                    _FINAL, self._retention, self._max,
                )
        except StorageError as exc:
            _log.warning("jobs_prune_failed", error=exc.message)


def _unpack(row: asyncpg.Record) -> tuple[Job, JobTicket | None]:
    job = _decode_job.decode(row[0])
    ticket = _decode_ticket.decode(row[1]) if row[1] is not None else None
    if ticket is not None and row[2] is not None:
        ticket = msgspec.structs.replace(ticket, upstream_id=row[2], instance=row[3], accepted=bool(row[4]))
    return job, ticket


class PostgresSlots(SlotLedger):
    """Instance slots as flags on the job rows; `take` runs under a per-provider advisory lock."""

    def __init__(self, registry: PostgresJobRegistry, *, poll_s: float) -> None:
        self._registry = registry
        self._poll_s = poll_s
        # Set when this process frees a slot, so its own waiters need not wait for the next poll.
        self._changed = asyncio.Event()

    async def take(self, job_id: str, provider: str, offers: Sequence[SlotOffer]) -> str | None:
        pool = self._registry.db.pool
        with storage_errors("count instance slots", _STORE):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(provider))
                rows = await conn.fetch(
                    "SELECT instance, count(*) AS n FROM media_jobs WHERE provider = $1 AND slot AND id <> $2 "
                    "GROUP BY instance", provider, job_id,
                )
                chosen = choose(offers, {row["instance"]: int(row["n"]) for row in rows})
                await conn.execute(
                    "UPDATE media_jobs SET slot = $2, instance = coalesce($3, instance) WHERE id = $1",
                    job_id, chosen is not None, chosen,
                )
        return chosen

    async def keep(self, job_id: str, provider: str, instance: str) -> None:
        with storage_errors("save", _STORE):
            await self._registry.db.pool.execute(
                "UPDATE media_jobs SET slot = true, instance = $2 WHERE id = $1", job_id, instance
            )

    async def release(self, job_id: str) -> None:
        with storage_errors("save", _STORE):
            await self._registry.db.pool.execute("UPDATE media_jobs SET slot = false WHERE id = $1", job_id)
        self._changed.set()
        self._changed = asyncio.Event()

    async def held(self, provider: str) -> dict[str, int]:
        with storage_errors("read", _STORE):
            rows = await self._registry.db.pool.fetch(
                "SELECT instance, count(*) AS n FROM media_jobs WHERE provider = $1 AND slot GROUP BY instance",
                provider,
            )
        return {row["instance"]: int(row["n"]) for row in rows}

    async def freed(self, timeout: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(timeout, self._poll_s)):
                await changed.wait()
