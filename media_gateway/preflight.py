"""Start-up checks of what the gateway writes to: the image store folder and the job database.

Run before serving, so a missing or read-only `MEDIA_STORE_DIR` (or job database) stops the process with
a configuration error that names the path and the setting (exit status 2), instead of a raw
`sqlite3.OperationalError` from the lifespan.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from service_common.config import ConfigError

from .config import MediaConfig
from .sqlite_jobs import SqliteJobRegistry

__all__ = ["check_storage"]

_STORE = "store.dir (MEDIA_STORE_DIR in the shipped YAML)"
_JOBS = "jobs.sqlite_path (MEDIA_JOBS_DB in the shipped YAML; empty: <store.dir>/jobs.sqlite3)"


def _writable_folder(path: Path, setting: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot create the folder {path}: {exc.strerror or exc}") from exc
    if not path.is_dir():
        raise ConfigError(f"{setting}: {path} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot write in {path}: {exc.strerror or exc}") from exc


def check_storage(config: MediaConfig) -> None:
    """Raise a ConfigError naming the path and setting when the store or the job database is unusable."""
    store = Path(config.store.dir)
    if config.store.bucket is None:
        _writable_folder(store, _STORE)
    if config.jobs.shared or config.jobs.registry != "sqlite":
        return
    database = config.jobs.sqlite_file(config.store)
    setting = _JOBS if config.jobs.sqlite_path else _STORE
    _writable_folder(database.parent, setting)
    try:
        SqliteJobRegistry.check_file(database)
    except sqlite3.Error as exc:
        raise ConfigError(f"{setting}: cannot use the job database {database}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot use the job database {database}: {exc.strerror or exc}") from exc
