"""llama.cpp's `llama-server` as a real OpenAI-compatible upstream for tests.

The binary is built once per machine by `.ci/llama_server.sh` (from the llama.cpp sources vendored in
the llama-cpp-python sdist; ~7 minutes on 2 cores) into
`${PDP_CACHE_DIR:-<repo>/.cache}/llama-server/<version>/`. `llama_server_binary()` only looks it up and
raises `LlamaServerNotBuilt` with that command when it is missing: building inside a test session would
turn the first test into a silent 7-minute wait, so the build is an explicit CI/setup step.

`LlamaServer` runs it on 127.0.0.1 with the tiny model from `tiny_model.py`: `--port 0` by default, the
real port read from its `listening on http://127.0.0.1:<port>` log line (no race with other processes
for a port chosen beforehand), then `GET /health` polled until 200. `freeze()`/`thaw()`/`kill()` send
SIGSTOP/SIGCONT/SIGKILL for fault tests; `restart()` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "LlamaServer",
    "LlamaServerError",
    "LlamaServerNotBuilt",
    "cache_dir",
    "llama_server_binary",
    "llama_vocab_gguf",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "llama_server.sh"
_VERSION_LINE = re.compile(r'^LLAMA_CPP_PYTHON_VERSION="([^"]+)"', re.MULTILINE)
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def _pinned_version() -> str:
    """The llama-cpp-python version pinned in `.ci/llama_server.sh` (the one source of truth)."""
    match = _VERSION_LINE.search(BUILD_SCRIPT.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"no LLAMA_CPP_PYTHON_VERSION=... line in {BUILD_SCRIPT}")
    return match.group(1)


LLAMA_CPP_PYTHON_VERSION = _pinned_version()


class LlamaServerError(RuntimeError):
    """llama-server did not start, or did not stop, as expected."""


class LlamaServerNotBuilt(FileNotFoundError):
    """The llama-server binary (or its vocab file) is not in the cache: run `.ci/llama_server.sh`."""


def cache_dir() -> Path:
    """`${PDP_CACHE_DIR:-<repo>/.cache}/llama-server/<pinned version>`, as `.ci/llama_server.sh` fills it."""
    root = Path(os.environ.get("PDP_CACHE_DIR") or REPO_ROOT / ".cache")
    return root / "llama-server" / LLAMA_CPP_PYTHON_VERSION


def _not_built(what: Path) -> LlamaServerNotBuilt:
    return LlamaServerNotBuilt(
        f"{what} not found: build llama-server first with `bash .ci/llama_server.sh` "
        f"(llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist, ~7 min on 2 cores; same PDP_CACHE_DIR), "
        "or point PDP_LLAMA_SERVER_BIN at a llama-server binary"
    )


def llama_server_binary() -> Path:
    """The llama-server binary: `$PDP_LLAMA_SERVER_BIN` if set, else the one cached by `.ci/llama_server.sh`.

    Raises `LlamaServerNotBuilt` (with the command to run) when it is missing; it never builds.
    """
    override = os.environ.get("PDP_LLAMA_SERVER_BIN")
    path = Path(override) if override else cache_dir() / "bin" / "llama-server"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise _not_built(path)
    return path


def llama_vocab_gguf() -> Path:
    """`ggml-vocab-llama-spm.gguf` from the same sdist (tokenizer for `tiny_model.make_tiny_llama_gguf`)."""
    path = cache_dir() / "ggml-vocab-llama-spm.gguf"
    if not path.is_file():
        raise _not_built(path)
    return path


class LlamaServer:
    """One llama-server process on 127.0.0.1 serving `model`; a context manager (start on enter, stop on exit).

    Defaults suit a 2-core machine: `--threads 1` (one core for generation, the other for the test),
    `--parallel 2` slots sharing `--ctx-size 2048` (1024 tokens each), no web UI, no warm-up run.
    `extra_args` are appended to the command line (a repeated flag overrides an earlier one).
    """

    def __init__(
        self,
        model: Path,
        *,
        binary: Path | None = None,
        port: int = 0,
        ctx_size: int = 2048,
        parallel: int = 2,
        threads: int = 1,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.model = Path(model)
        self.binary = binary if binary is not None else llama_server_binary()
        self.ctx_size = ctx_size
        self.parallel = parallel
        self.threads = threads
        self.extra_args = tuple(extra_args)
        self.log_path = log_path if log_path is not None else self.model.with_suffix(".server.log")
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port it listens on (known once started)."""
        if self._port is None:
            raise LlamaServerError("llama-server has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` (append `/v1/chat/completions`, `/health`, ...)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        if self._proc is None:
            raise LlamaServerError("llama-server has not been started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the process exists (also when frozen)."""
        return self._proc is not None and self._proc.poll() is None

    def command(self, port: int) -> list[str]:
        """The command line for `port` (0: let the OS pick)."""
        return [
            str(self.binary),
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(self.ctx_size),
            "--parallel", str(self.parallel),
            "--threads", str(self.threads),
            "--threads-http", "4",
            "--no-ui",
            "--no-warmup",
            "--log-colors", "off",
            *self.extra_args,
        ]  # fmt: skip

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's log (stdout and stderr)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the process and return once `GET /health` answers 200 (else `LlamaServerError` with the log tail)."""
        if self.running:
            raise LlamaServerError(f"llama-server already running (pid {self.pid})")
        self._close_log()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        offset = self._log.tell()
        port = self._port if self._port is not None else self._requested_port
        self._proc = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to the server
        )
        try:
            self._port = port or self._wait_for_port(offset)
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def _fail(self, why: str) -> LlamaServerError:
        return LlamaServerError(
            f"llama-server {why}\ncommand: {' '.join(self.command(self._requested_port))}\n"
            f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"
        )

    def _deadline_left(self, deadline: float, what: str) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise self._fail(f"exited with code {code} while {what}")
        if time.monotonic() > deadline:
            raise self._fail(f"not ready after {self.startup_timeout:.0f} s ({what})")

    def _wait_for_port(self, offset: int) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                match = _LISTENING.search(f.read().decode("utf-8", errors="replace"))
            if match:
                return int(match.group(1))
            self._deadline_left(deadline, "waiting for its 'listening on' log line")
            time.sleep(0.02)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            status = self.health_status(timeout=1.0)
            if status == 200:
                return
            self._deadline_left(deadline, f"polling GET /health (last status: {status})")
            time.sleep(0.05)

    def health_status(self, timeout: float = 1.0) -> int | None:
        """The status code of `GET /health`, or None when the connection fails or times out."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def stop(self, timeout: float = 3.0) -> int | None:
        """Graceful stop; returns the exit code (0 when it shut down cleanly).

        SIGTERM (plus SIGCONT, in case it is frozen) and `timeout` s to exit. llama-server's graceful
        shutdown hangs while a request is in flight ("cleaning up before exit..." and nothing more),
        so then a second SIGTERM (its "terminate immediately": exit code 1), and SIGKILL 2 s later.
        """
        proc = self._proc
        if proc is None:
            return None
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGTERM, 2.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
                proc.send_signal(signal.SIGCONT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait_s)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_log()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL now (a crash: no graceful shutdown) and reap it; clients then get connection refused."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._close_log()
        return proc.returncode

    def freeze(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, nothing answers (clients hang until their timeout)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: undo `freeze()`; requests queued in the kernel meanwhile are then served."""
        self._signal(signal.SIGCONT)

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port, so `base_url` stays valid."""
        self.stop()
        return self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise LlamaServerError(f"cannot send {sig.name}: llama-server is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.base_url} pid {self.pid}" if self.running else "stopped"
        return f"LlamaServer({self.model.name}, {where})"
