"""The durable job registry: job snapshots and their resume tickets in one SQLite file (stdlib `sqlite3`).

One connection lives on one dedicated thread, so every statement runs there in order and the event loop
never blocks on disk. WAL mode lets a reader (`GET /jobs/{id}`) proceed while a progress update commits.
A gateway restarted on the same file finds its unfinished jobs with `unfinished()` and picks them up.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import msgspec

from shared_contracts.errors import StorageError
from shared_contracts.media import Job

from .job_registry import FINAL, JobRegistry, JobTicket

__all__ = ["SqliteJobRegistry"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    job         BLOB NOT NULL,   -- the public Job snapshot, JSON
    ticket      BLOB,            -- what a restarted gateway needs to resume it, JSON; NULL once final
    upstream_id TEXT,            -- the upstream's own id for the work (ComfyUI's prompt_id)
    updated_at  REAL NOT NULL    -- wall clock, for retention
);
CREATE INDEX IF NOT EXISTS jobs_status_updated ON jobs (status, updated_at);
"""
# Columns added after the first release, made on files that predate them.
_ADDED = (
    ("instance", "TEXT"),                           # the upstream instance the work went to (a pool)
    ("accepted", "INTEGER NOT NULL DEFAULT 1"),     # 0: upstream_id chosen, submission not yet confirmed
)
_FINAL_SQL = "(" + ", ".join(f"'{status}'" for status in sorted(FINAL)) + ")"
# Pruning scans the index, so it runs every so many saves rather than on each one.
_PRUNE_EVERY = 64

_encode = msgspec.json.Encoder().encode
_decode_job = msgspec.json.Decoder(Job)
_decode_ticket = msgspec.json.Decoder(JobTicket)


class SqliteJobRegistry(JobRegistry):
    """Jobs in `path` (created with its folder); finished ones expire after `retention_s` or beyond `max_jobs`."""

    durable = True

    def __init__(
        self, path: Path, *, max_jobs: int, retention_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._max, self._retention, self._clock = max_jobs, retention_s, clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-jobs-sqlite")
        self._db: sqlite3.Connection | None = None
        self._saves = 0

    async def open(self) -> None:
        """Create or open the file (WAL mode) on the database thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def close(self) -> None:
        """Close the connection and stop the database thread."""
        if self._db is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def save(self, job: Job) -> None:
        self._saves += 1
        prune = self._saves % _PRUNE_EVERY == 0
        await self._run(lambda db: self._save(db, job, prune))

    async def get(self, job_id: str) -> Job | None:
        row = await self._run(lambda db: db.execute("SELECT job FROM jobs WHERE id = ?", (job_id,)).fetchone())
        return _decode_job.decode(row[0]) if row else None

    async def track(self, job_id: str, ticket: JobTicket) -> None:
        data = _encode(ticket)
        await self._run(lambda db: db.execute("UPDATE jobs SET ticket = ? WHERE id = ?", (data, job_id)))

    async def set_upstream(self, job_id: str, upstream_id: str) -> None:
        await self._run(lambda db: db.execute(
            "UPDATE jobs SET upstream_id = ?, accepted = 1 WHERE id = ?", (upstream_id, job_id)
        ))

    async def bind(self, job_id: str, *, instance: str | None, upstream_id: str) -> None:
        await self._run(lambda db: db.execute(
            "UPDATE jobs SET instance = ?, upstream_id = ?, accepted = 0 WHERE id = ?", (instance, upstream_id, job_id)
        ))

    async def unfinished(self) -> list[tuple[Job, JobTicket | None]]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT job, ticket, upstream_id, instance, accepted FROM jobs WHERE status NOT IN {_FINAL_SQL} "
                "ORDER BY rowid"
            ).fetchall()
        )
        found: list[tuple[Job, JobTicket | None]] = []
        for job_raw, ticket_raw, upstream_id, instance, accepted in rows:
            ticket = _decode_ticket.decode(ticket_raw) if ticket_raw else None
            if ticket is not None and upstream_id:
                ticket = msgspec.structs.replace(
                    ticket, upstream_id=upstream_id, instance=instance, accepted=bool(accepted)
                )
            found.append((_decode_job.decode(job_raw), ticket))
        return found

    def __repr__(self) -> str:
        return f"SqliteJobRegistry({str(self.path)!r})"

    # ---- on the database thread
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise RuntimeError("the job registry is not open")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                # "database or disk is full", "attempt to write a readonly database": SQLite's texts name no path.
                raise StorageError(f"the job store could not save: {exc}", details={"store": "jobs"}) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    @staticmethod
    def check_file(path: Path) -> None:
        """Open (or create) the file and its table as the gateway will, then close it; raises sqlite3.Error."""
        SqliteJobRegistry._connect(path).close()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit (isolation_level=None): each statement is its own transaction, nothing left open.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash; only a power cut may lose the last commits.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED:
                if name not in columns:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            # A read-only file opens and reads fine; this write fails on it now rather than on the first job.
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> None:
        self._db = self._connect(self.path)

    def _close(self, db: sqlite3.Connection) -> None:
        db.close()
        self._db = None

    def _save(self, db: sqlite3.Connection, job: Job, prune: bool) -> None:
        now = self._clock()
        final = job.status in FINAL
        db.execute(
            "INSERT INTO jobs (id, status, job, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, job = excluded.job, "
            "updated_at = excluded.updated_at" + (", ticket = NULL" if final else ""),
            (job.id, job.status, _encode(job), now),
        )
        if prune:
            self._prune(db, now)

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(f"DELETE FROM jobs WHERE status IN {_FINAL_SQL} AND updated_at < ?", (now - self._retention,))
        db.execute(
            f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status IN {_FINAL_SQL} "
            "ORDER BY updated_at DESC LIMIT -1 OFFSET ?)",
            (self._max,),
        )
