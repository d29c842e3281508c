"""A real, throw-away PostgreSQL server for tests: Debian's server binaries, a temp cluster, loopback only.

`.ci/system_deps.sh` installs the binaries (Debian package `postgresql`: initdb, pg_ctl and postgres under
/usr/lib/postgresql/<major>/bin). The cluster lives in a fresh temp folder: data, the unix socket and
the server log all inside it, trust authentication, UTF8, listening on 127.0.0.1 and a free port.

Running as root: initdb and postgres refuse to run as root. Then every server command runs as the
`postgres` OS user (made by the Debian package) through subprocess's own `user=`/`group=` arguments
(setuid/setgid in the child, like `setpriv`; no `runuser`/`su` needed) and the temp folder is chowned to
that user. The folder is made directly in the system temp dir (not under pytest's 0700 `tmp_path`),
because the `postgres` user must be able to reach it.

    server = PostgresServer()
    server.start()
    dsn = server.create_database("orders")   # postgresql://postgres@127.0.0.1:<port>/orders
    ...
    server.kill()    # SIGKILL the postmaster (crash test); server.start() runs crash recovery
    server.stop()    # also removes the temp folder
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PostgresServer", "find_pg_bindir"]

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def find_pg_bindir() -> Path:
    """The folder with initdb, pg_ctl and postgres: `$PDP_PG_BINDIR`, else the newest Debian major, else PATH.

    Raises FileNotFoundError when no PostgreSQL server is installed (run `.ci/system_deps.sh`).
    """
    wanted = ("initdb", "pg_ctl", "postgres")
    candidates: list[Path] = []
    if env_dir := os.environ.get("PDP_PG_BINDIR"):
        candidates.append(Path(env_dir))

    def major(path: str) -> tuple[int, ...]:
        version = Path(path).parent.name
        return tuple(int(part) for part in version.split(".") if part.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)]
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in wanted):
            return folder
    raise FileNotFoundError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin or on PATH; "
        "run .ci/system_deps.sh or set PDP_PG_BINDIR"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (exited, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state is the first field after the parenthesised command name.
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))


def _children_of(pid: int) -> list[int]:
    children: list[int] = []
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            stat = Path(stat_path).read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(stat_path.split("/")[2]))
    return children


class PostgresServer:
    """One throw-away PostgreSQL cluster on 127.0.0.1, made by initdb and run by pg_ctl.

    Args:
        host: the address to listen on (loopback only).
        port: a fixed port, or None for a free one chosen at start.
        fast: turn off fsync and full_page_writes (commits still reach the OS's page cache, so a SIGKILL
            of the server loses nothing committed; only an OS crash would).
        settings: extra `-c name=value` server settings.
        base_dir: where to make the temp folder (must be reachable by the `postgres` user when root).
        start_timeout: seconds pg_ctl waits for the server to accept connections.
    """

    superuser = "postgres"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        fast: bool = True,
        settings: Mapping[str, str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.bindir = find_pg_bindir()
        self.host = host
        self._fixed_port = port
        self.port: int = port or 0
        self.start_timeout = start_timeout
        self._settings: dict[str, str] = {}
        if fast:
            # Not synchronous_commit=off: that loses the last commits on a SIGKILL of the server too.
            self._settings |= {"fsync": "off", "full_page_writes": "off"}
        self._settings |= dict(settings or {})
        self._base_dir = os.fspath(base_dir) if base_dir is not None else None
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse root
            try:
                self._run_as = pwd.getpwnam(os.environ.get("PDP_PG_OS_USER", "postgres"))
            except KeyError:
                raise FileNotFoundError(
                    "running as root but there is no 'postgres' OS user to run the server as "
                    "(Debian's postgresql package makes it; or set PDP_PG_OS_USER)"
                ) from None
        self.root: Path | None = None
        self._running = False

    # -- paths ----------------------------------------------------------------------------------------------

    def _require_root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the cluster was not initialised: call start() first")
        return self.root

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self._require_root() / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's unix socket."""
        return self._require_root() / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log (pg_ctl -l)."""
        return self._require_root() / "server.log"

    @property
    def running(self) -> bool:
        """Whether start() succeeded and neither stop() nor kill() was called since."""
        return self._running

    # -- connection strings ---------------------------------------------------------------------------------

    def dsn_for(self, database: str) -> str:
        """A libpq/asyncpg URL for `database` as the superuser, over TCP (trust auth: no password)."""
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    @property
    def dsn(self) -> str:
        """The URL of the `postgres` maintenance database."""
        return self.dsn_for("postgres")

    # -- running commands -----------------------------------------------------------------------------------

    def _run(
        self, args: Sequence[str], *, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the `postgres` user when we are root."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        run_as = self._run_as
        if run_as is not None:
            env |= {"HOME": run_as.pw_dir, "USER": run_as.pw_name, "LOGNAME": run_as.pw_name}
        result = subprocess.run(
            list(args),
            cwd=self._require_root(),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # setgid/setgroups/setuid in the child (Python >= 3.9), like `setpriv`: no runuser/su needed.
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""
        return "server log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ------------------------------------------------------------------------------------------

    def initdb(self) -> None:
        """Make the temp folder and a new cluster in it (trust auth, UTF8, C.UTF-8 locale)."""
        if self.root is not None:
            return
        self.root = Path(tempfile.mkdtemp(prefix="pdp-pg-", dir=self._base_dir))
        self.root.chmod(0o700)
        self.socket_dir.mkdir(mode=0o700)
        if self._run_as is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        """initdb if needed, then start the server with pg_ctl and wait until it accepts connections.

        A free port is chosen per attempt (unless one was given); a port stolen between choosing and
        binding makes that attempt fail, and the next one picks another port.
        """
        if self._running:
            return
        self.initdb()
        self._remove_stale_pid_file()
        # After a first start the port stays (a restart after kill() must come back where clients expect it).
        keep_port = bool(self._fixed_port) or self.port != 0
        attempts = 1 if keep_port else 3
        for _attempt in range(attempts):
            if not keep_port:
                self.port = _free_port(self.host)
            options = [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                f"-c listen_addresses={self.host}",
                *(f"-c {name}={value}" for name, value in self._settings.items()),
            ]
            result = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--options",
                    " ".join(options),
                    "--wait",
                    "--timeout",
                    str(int(self.start_timeout)),
                    "start",
                ],
                timeout=self.start_timeout + 30,
                check=False,
            )
            if result.returncode == 0:
                self._running = True
                return
        raise RuntimeError(
            f"pg_ctl start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{self._log_tail()}"
        )

    def _remove_stale_pid_file(self) -> None:
        """Remove postmaster.pid when its process is dead or a zombie.

        pg_ctl daemonises the postmaster, so after it dies its zombie waits for PID 1 to reap it, and this
        machine's PID 1 does so only after a while: until then the zombie answers kill(pid, 0), and a new
        postmaster refuses to start ("lock file ... already exists"). A zombie holds no shared memory.
        """
        pid = self.postmaster_pid
        if pid is not None and _process_gone(pid):
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):  # the same check for the socket's lock file
            try:
                owner = int(lock.read_text().splitlines()[0])
            except (OSError, IndexError, ValueError):
                continue
            if _process_gone(owner):
                lock.unlink(missing_ok=True)

    @property
    def postmaster_pid(self) -> int | None:
        """The postmaster's PID from postmaster.pid, or None when there is no such file."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError, RuntimeError):
            return None
        return int(first)

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (pg_ctl stop -m fast; SIGKILL if that fails) and remove the temp folder."""
        if self.root is None:
            return
        if self._running:
            result = self._run(
                [str(self.bindir / "pg_ctl"), "--pgdata", str(self.data_dir), "--mode", "fast", "--wait", "stop"],
                timeout=60,
                check=False,
            )
            if result.returncode != 0 and self.postmaster_pid is not None:
                self.kill()
            self._running = False
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster (a crash), then wait until it and its backends are gone.

        The data folder stays; start() afterwards runs PostgreSQL's crash recovery on the same port.
        """
        pid = self.postmaster_pid
        if pid is None or _process_gone(pid):
            self._running = False
            return
        children = _children_of(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        # Backends notice the postmaster's death and exit on their own; wait for that, then force it.
        while time.monotonic() < deadline and not all(_process_gone(p) for p in [pid, *children]):
            time.sleep(0.02)
        for child in children:
            if not _process_gone(child):
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._remove_stale_pid_file()
        self._running = False

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with the psql next to the server binaries (over TCP); returns its output."""
        psql = self.bindir / "psql"
        if not os.access(psql, os.X_OK):
            psql = Path(shutil.which("psql") or "psql")
        result = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.dsn_for(database), "-c", sql],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "LC_ALL": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (letters, digits, underscores) and return its DSN."""
        if not _DB_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE `name`, ending its open connections (PostgreSQL 13+)."""
        if not _DB_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {state} root={self.root}>"
