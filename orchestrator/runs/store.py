"""Run documents kept as JSON files, one per run, under a configurable folder."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import msgspec

from service_common.config import ConfigError
from service_common.files import write_atomically
from shared_contracts.errors import NotFound
from shared_contracts.flows import RunDocument, RunStatus, RunSummary

__all__ = ["FileRunStore", "RunStore", "is_run_id", "new_run_id", "summary_of"]

# Time-sortable and safe as a file name and as an X-Request-ID: 20250101T120000Z-1a2b3c4d.
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RunDocument)


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: UTC time to the second, then 32 random bits."""
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_run_id(value: str) -> bool:
    """Whether `value` has the run id shape (so it can never name a path outside the store)."""
    return bool(_RUN_ID.match(value))


def summary_of(doc: RunDocument) -> RunSummary:
    """The list view of a run."""
    return RunSummary(
        run_id=doc.run_id,
        flow=doc.flow,
        status=doc.status,
        mode=doc.mode,
        product_name=doc.product.name,
        started_at=doc.started_at,
        duration_ms=doc.duration_ms,
    )


class RunStore(ABC):
    """Where run documents live: a folder for one process (`FileRunStore`), or PostgreSQL shared by replicas.

    A `shared` store leases each running run to the replica driving it (`adopt`, `heartbeat`, `release`).
    """

    # True when several replicas use the store at once: running runs are leased, a dead replica's adopted.
    shared: ClassVar[bool] = False

    async def open(self) -> None:
        """Get ready to serve one orchestrator process (the service calls it at start-up); default: nothing."""

    async def close(self) -> None:
        """Release what `open` took; default: nothing."""

    @abstractmethod
    async def save(self, doc: RunDocument) -> None:
        """Create or replace the run's document."""

    @abstractmethod
    async def get(self, run_id: str) -> RunDocument:
        """A fresh copy of the run's document (the caller may keep it); NotFound when there is none."""

    @abstractmethod
    async def recent(self, limit: int, *, status: RunStatus | None = None) -> list[RunDocument]:
        """Up to `limit` runs, newest first; only runs with `status` when given."""

    @abstractmethod
    async def unfinished(self) -> list[RunDocument]:
        """Every run still `running`; at start-up these are runs a previous process left behind."""

    async def adopt(self) -> list[RunDocument]:
        """Running runs nobody drives, now owned here: at start-up every one (one process per folder); a
        shared store hands out those whose owner's lease ran out."""
        return await self.unfinished()

    async def heartbeat(self) -> frozenset[str]:
        """Renew this replica's leases; the ids of the running runs it still owns (shared stores only)."""
        return frozenset()

    async def release(self, run_ids: Collection[str]) -> None:
        """Give up the leases of runs this replica stops driving, so another adopts them at once."""


class FileRunStore(RunStore):
    """`<dir>/<run_id>.json`, written atomically (temp file, then rename), pretty-printed for people.

    `open()` takes an exclusive lock on `<dir>/.lock` for the service's lifetime: one orchestrator process
    per folder, so the runs a start-up finds `running` were left by a process that is gone (the kernel
    drops the lock of a killed process), never taken from a live one.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock_fd: int | None = None

    async def open(self) -> None:
        if self._lock_fd is None:
            self._lock_fd = await asyncio.to_thread(self._lock)

    async def close(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def _lock(self) -> int:
        path = self.directory / ".lock"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"runs.dir: cannot use {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"runs.dir: {self.directory} is in use by another orchestrator process (pid {holder}); "
                "give each process its own folder (ORCHESTRATOR_RUNS_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        return fd

    def path_of(self, run_id: str) -> Path:
        """The file of `run_id`; a malformed id is NotFound, so no id can reach outside the folder."""
        if not is_run_id(run_id):
            raise NotFound(f"no run {run_id!r}", details={"run_id": run_id})
        return self.directory / f"{run_id}.json"

    async def save(self, doc: RunDocument) -> None:
        data = msgspec.json.format(_encode(doc), indent=2)
        await asyncio.to_thread(write_atomically, self.path_of(doc.run_id), data)

    async def get(self, run_id: str) -> RunDocument:
        path = self.path_of(run_id)
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"no run {run_id!r}", details={"run_id": run_id}) from exc
        return _decode.decode(raw)

    async def recent(self, limit: int, *, status: RunStatus | None = None) -> list[RunDocument]:
        names = await asyncio.to_thread(self._names_newest_first)
        docs: list[RunDocument] = []
        for name in names:
            if len(docs) == limit:
                break
            doc = await self._readable(name)
            if doc is not None and (status is None or doc.status == status):
                docs.append(doc)
        return docs

    async def unfinished(self) -> list[RunDocument]:
        # One pass over the folder: the file store has no index by status (a database backend would).
        names = await asyncio.to_thread(self._names_newest_first)
        docs = [await self._readable(name) for name in reversed(names)]
        return [doc for doc in docs if doc is not None and doc.status == "running"]

    async def _readable(self, run_id: str) -> RunDocument | None:
        try:
            return await self.get(run_id)
        except (NotFound, msgspec.DecodeError):
            return None  # removed meanwhile, or not a run document: skip it, keep the list whole

    def _names_newest_first(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        # Run ids start with their UTC start time, so name order is start order.
        return sorted((p.stem for p in self.directory.glob("*.json") if is_run_id(p.stem)), reverse=True)
