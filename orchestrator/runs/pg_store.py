"""Run documents in PostgreSQL (`runs.url`), shared by every orchestrator replica, with leases on running runs.

The replica that starts (or adopts) a run owns it for `lease_s`, renewed by its heartbeat. When a replica
dies its runs' leases run out and another replica adopts them (`SELECT … FOR UPDATE SKIP LOCKED`, so each
is adopted once) and resumes each from its last finished step. A replica that shuts down releases its
runs' leases, so another adopts them at once. Only the owner writes a run's document.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec
import structlog

from service_common.postgres import Database, Migration, storage_errors
from shared_contracts.errors import NotFound
from shared_contracts.flows import RunDocument, RunStatus

from .store import RunStore, is_run_id

__all__ = ["MIGRATIONS", "PostgresRunStore"]

_log = structlog.get_logger(component="runs.postgres")
_STORE = "run"
_ADOPT_BATCH = 50

MIGRATIONS = (
    Migration(1, "run documents with leases", """
CREATE TABLE orchestrator_runs (
    run_id      text        PRIMARY KEY,
    status      text        NOT NULL,
    doc         jsonb       NOT NULL,
    started_at  timestamptz NOT NULL,
    owner       text,                 -- the replica driving it while running; NULL when nobody is
    lease_until timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orchestrator_runs_started ON orchestrator_runs (started_at DESC);
CREATE INDEX orchestrator_runs_status_started ON orchestrator_runs (status, started_at DESC);
CREATE INDEX orchestrator_runs_open ON orchestrator_runs (lease_until) WHERE status = 'running';
"""),
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RunDocument)


class PostgresRunStore(RunStore):
    """`orchestrator_runs`; `owner` names this replica."""

    shared = True

    def __init__(self, url: str, *, owner: str, lease_s: float, pool_size: int = 10) -> None:
        self.db = Database(url, component="orchestrator_runs", migrations=MIGRATIONS, max_size=pool_size)
        self.owner = owner
        self.lease_s = lease_s

    def __repr__(self) -> str:
        return f"PostgresRunStore({self.db!r}, owner={self.owner!r})"

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def save(self, doc: RunDocument) -> None:
        running = doc.status == "running"
        with storage_errors("save", _STORE):
            done = await self.db.pool.execute(
                "INSERT INTO orchestrator_runs (run_id, status, doc, started_at, owner, lease_until) "
                "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) "
                "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, doc = excluded.doc, updated_at = now(), "
                "owner = CASE WHEN $7 THEN orchestrator_runs.owner END, "
                "lease_until = CASE WHEN $7 THEN orchestrator_runs.lease_until END "
                "WHERE orchestrator_runs.owner = $5 OR orchestrator_runs.owner IS NULL",
                doc.run_id, doc.status, _encode(doc).decode(), doc.started_at, self.owner, self.lease_s, running,
            )
        if done.endswith(" 0"):
            # Another replica adopted the run (this one's lease ran out): its writes are the ones that count.
            _log.warning("run_save_not_owner", run_id=doc.run_id, status=doc.status)

    async def get(self, run_id: str) -> RunDocument:
        if not is_run_id(run_id):
            raise NotFound(f"no run {run_id!r}", details={"run_id": run_id})
        with storage_errors("read", _STORE):
            raw = await self.db.pool.fetchval("SELECT doc::text FROM orchestrator_runs WHERE run_id = $1", run_id)
        if raw is None:
            raise NotFound(f"no run {run_id!r}", details={"run_id": run_id})
        return _decode.decode(raw)

    async def recent(self, limit: int, *, status: RunStatus | None = None) -> list[RunDocument]:
        with storage_errors("read", _STORE):
            rows = await self.db.pool.fetch(
                "SELECT doc::text FROM orchestrator_runs WHERE ($2::text IS NULL OR status = $2) "
                "ORDER BY started_at DESC, run_id DESC LIMIT $1", limit, status,
            )
        return [_decode.decode(row[0]) for row in rows]

    async def unfinished(self) -> list[RunDocument]:
        with storage_errors("read", _STORE):
            rows = await self.db.pool.fetch(
                "SELECT doc::text FROM orchestrator_runs WHERE status = 'running' ORDER BY started_at"
            )
        return [_decode.decode(row[0]) for row in rows]

    async def adopt(self) -> list[RunDocument]:
        with storage_errors("adopt runs", _STORE):
            rows = await self.db.pool.fetch(
                "WITH picked AS (SELECT run_id FROM orchestrator_runs WHERE status = 'running' "
                "AND (lease_until IS NULL OR lease_until < now()) ORDER BY started_at LIMIT $3 "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE orchestrator_runs r SET owner = $1, lease_until = now() + make_interval(secs => $2) "
                "FROM picked WHERE r.run_id = picked.run_id RETURNING r.doc::text, r.started_at",
                self.owner, self.lease_s, _ADOPT_BATCH,
            )
        if rows:
            _log.info("runs_adopted", runs=len(rows), owner=self.owner)
        return [_decode.decode(row[0]) for row in sorted(rows, key=lambda row: row[1])]

    async def heartbeat(self) -> frozenset[str]:
        with storage_errors("renew leases", _STORE):
            rows = await self.db.pool.fetch(
                "UPDATE orchestrator_runs SET lease_until = now() + make_interval(secs => $2) "
                "WHERE owner = $1 AND status = 'running' RETURNING run_id", self.owner, self.lease_s,
            )
        return frozenset(row[0] for row in rows)

    async def release(self, run_ids: Collection[str]) -> None:
        if not run_ids:
            return
        with storage_errors("release leases", _STORE):
            await self.db.pool.execute(
                "UPDATE orchestrator_runs SET owner = NULL, lease_until = NULL "
                "WHERE run_id = ANY($1::text[]) AND owner = $2", list(run_ids), self.owner,
            )
        _log.info("runs_released", runs=len(run_ids), owner=self.owner)
