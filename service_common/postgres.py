"""PostgreSQL for state several replicas share: one asyncpg pool per store, versioned migrations at start-up.

A store names its `component` (e.g. `media_jobs`) and its migrations, numbered from 1. `open()` connects,
then applies the missing ones in order, each in its own transaction, while holding a session advisory lock
keyed by the component: replicas starting together migrate once, the others wait and find it done. The
applied versions are kept in `schema_migrations (component, version, name, applied_at)`. Migrations only
add (tables, columns with defaults, indexes), so a replica still running older code keeps working while a
newer one migrates; a database newer than the code is logged, not refused.

Every failure of the database (unreachable, refused, a timeout) is a `StorageError` (507) for the
request that needed it; `open()` raises `ConfigError` naming the URL without its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from shared_contracts.errors import StorageError

from .config import ConfigError

__all__ = ["Database", "Heartbeat", "Migration", "is_postgres_url", "redact_url", "replica_name", "storage_errors"]

_log = structlog.get_logger(component="postgres")
_SCHEMES = ("postgresql://", "postgres://")
_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `version` (1, 2, ...), a short `name`, and the SQL that takes the schema there."""

    version: int
    name: str
    sql: str


def replica_name() -> str:
    """A name for this process among the replicas sharing a database (lease owner): host, pid, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def is_postgres_url(value: str) -> bool:
    """True for `postgresql://...` and `postgres://...` URLs."""
    return value.startswith(_SCHEMES)


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _lock_key(component: str) -> int:
    # A stable signed 64-bit key per component: Python's hash() differs between processes.
    digest = hashlib.sha256(f"pdp-migrations:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def storage_errors(what: str, store: str) -> Iterator[None]:
    """Turn a database failure inside the block into `StorageError` naming `what` failed (not the URL)."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise StorageError(
            f"the {store} store could not {what}: {type(exc).__name__}", details={"store": store}
        ) from exc


class Database:
    """An asyncpg pool for one store, migrated on `open()`.

    `command_timeout_s` bounds every statement, so a database that stops answering fails the request
    (507) instead of holding it.
    """

    def __init__(
        self,
        url: str,
        *,
        component: str,
        migrations: Sequence[Migration],
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = 10.0,
        command_timeout_s: float = 10.0,
    ) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"not a PostgreSQL URL: {redact_url(url)!r}")
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"{component}: migrations must be numbered 1, 2, ... in order, got {versions}")
        self.url = url
        self.component = component
        self.migrations = tuple(migrations)
        self._sizes = (min_size, max_size)
        self._connect_timeout = connect_timeout_s
        self._command_timeout = command_timeout_s
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r}, component={self.component!r})"

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; a store used before `open()` is a programming error."""
        if self._pool is None:
            raise RuntimeError(f"{self.component}: the database is not open")
        return self._pool

    async def open(self) -> None:
        """Connect and migrate; an unreachable database or a failed migration is a ConfigError."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise ConfigError(f"{self.component}: cannot connect to {redact_url(self.url)}: {exc}") from exc
        try:
            await self._migrate()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            await self.close()
            raise ConfigError(f"{self.component}: migrating {redact_url(self.url)} failed: {exc}") from exc

    async def close(self) -> None:
        """Close the pool (waits for connections in use to be released)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def applied(self) -> list[int]:
        """The versions of this component's migrations applied to the database."""
        rows = await self.pool.fetch(
            "SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version", self.component
        )
        return [int(row["version"]) for row in rows]

    async def _migrate(self) -> None:
        key = _lock_key(self.component)
        async with self.pool.acquire() as conn:
            # Session lock, so migrations of several replicas starting together run once, one after another.
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                await conn.execute(_LEDGER)
                rows = await conn.fetch(
                    "SELECT version FROM schema_migrations WHERE component = $1", self.component
                )
                done = {int(row["version"]) for row in rows}
                for migration in self.migrations:
                    if migration.version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
                            self.component, migration.version, migration.name,
                        )
                    _log.info("schema_migrated", component=self.component, version=migration.version,
                              name=migration.name)
                newer = sorted(v for v in done if v > len(self.migrations))
                if newer:
                    _log.warning("schema_newer_than_code", component=self.component, versions=newer)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)


class Heartbeat:
    """Calls `beat()` every `every_s` seconds in the background (lease renewal and adoption of a shared store).

    A `StorageError` (the database does not answer) is logged once per distinct message and tried again
    on the next beat; the work in progress goes on meanwhile.
    """

    def __init__(self, beat: Callable[[], Awaitable[None]], *, every_s: float, name: str) -> None:
        self._beat, self._every, self._name = beat, every_s, name
        self._task: asyncio.Task[None] | None = None
        self._failing: str | None = None

    def start(self) -> None:
        """Begin (in a fresh context: the loop must not log the ids of the request that started it)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name, context=contextvars.Context())

    async def close(self) -> None:
        """Stop beating."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._beat()
            except StorageError as exc:
                if self._failing != exc.message:
                    _log.error("heartbeat_failed", loop=self._name, error=exc.message)
                self._failing = exc.message
            else:
                if self._failing is not None:
                    _log.info("heartbeat_recovered", loop=self._name)
                self._failing = None
