"""Headless Chromium for tests: Debian's /usr/bin/chromium, driven by Playwright for Python.

Playwright's own browser download cannot work here (no network but the package registries), so
`playwright install` is never run: Playwright always gets `executable_path` (Debian's chromium, installed
by `.ci/system_deps.sh`). Flags, as this machine needs them (root, no GPU, a closed network):

    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync

and a fresh, empty user-data dir per browser (Playwright's launch() makes and removes one itself).

Two ways to get a browser:

* `launch_browser(playwright)` / `launch_browser_sync(playwright)`: Playwright launches Chromium
  (its pipe transport), one Chromium per call (~0.8 s).
* `ChromiumProcess`: one Chromium started here with a DevTools port on 127.0.0.1, which any number of
  Playwright clients join with `connect_browser(playwright, process)` (`connect_over_cdp`). This lets a
  test session keep one Chromium while each asyncio test, in its own event loop, has its own Playwright.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright
    from playwright.sync_api import Browser as SyncBrowser
    from playwright.sync_api import Playwright as SyncPlaywright

__all__ = [
    "CHROMIUM_ARGS",
    "ChromiumProcess",
    "connect_browser",
    "find_chromium",
    "launch_browser",
    "launch_browser_sync",
    "launch_options",
]

#: Flags for Debian's Chromium on this machine; `--headless` is added by Playwright's launch(headless=True).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",  # root: Chromium's sandbox refuses to run as root
    "--disable-gpu",  # no GPU; software rendering
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium tries Google's hosts at every start, and the closed network refuses them.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def find_chromium() -> str:
    """The Chromium executable: `$PDP_CHROMIUM`, else /usr/bin/chromium.

    Raises FileNotFoundError when it is missing (run `.ci/system_deps.sh`).
    """
    path = os.environ.get("PDP_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"no Chromium at {path}; run .ci/system_deps.sh (Debian package chromium)")
    return path


def launch_options(*, extra_args: Sequence[str] = (), **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for Playwright's `chromium.launch()` (sync or async) on this machine."""
    options: dict[str, Any] = {
        "executable_path": find_chromium(),
        "headless": True,
        "chromium_sandbox": False,
        "args": [*CHROMIUM_ARGS, *extra_args],
    }
    options.update(overrides)
    return options


async def launch_browser(playwright: Playwright, **overrides: Any) -> Browser:
    """Launch Debian's Chromium with the async API (a fresh temp profile, removed on close())."""
    return await playwright.chromium.launch(**launch_options(**overrides))


def launch_browser_sync(playwright: SyncPlaywright, **overrides: Any) -> SyncBrowser:
    """Launch Debian's Chromium with the sync API (for sync tests; not inside a running event loop)."""
    return playwright.chromium.launch(**launch_options(**overrides))


async def connect_browser(playwright: Playwright, process: ChromiumProcess, *, timeout_ms: float = 30_000) -> Browser:
    """Join a running ChromiumProcess over CDP. Use `browser.new_context()` per test for isolation;
    `browser.close()` then closes those contexts and disconnects, leaving Chromium running."""
    return await playwright.chromium.connect_over_cdp(process.cdp_url, timeout=timeout_ms)


class ChromiumProcess:
    """Headless Chromium as a child process with a DevTools (CDP) endpoint on 127.0.0.1 and a random port.

    Each instance has its own fresh user-data dir (removed by stop()); Chromium's output goes to a log file
    inside it. The port comes from Chromium itself (`--remote-debugging-port=0`, read back from the
    DevToolsActivePort file), so no port race.
    """

    def __init__(
        self,
        *,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.executable = executable or find_chromium()
        self.extra_args = tuple(extra_args)
        self.env = dict(env) if env is not None else None
        self.start_timeout = start_timeout
        self.user_data_dir: Path | None = None
        self.port: int = 0
        self.browser_ws_path: str = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def cdp_url(self) -> str:
        """The HTTP DevTools endpoint, for Playwright's `connect_over_cdp`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The browser's DevTools WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}{self.browser_ws_path}"

    @property
    def alive(self) -> bool:
        """Whether the Chromium process still runs."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_file(self) -> Path | None:
        """Chromium's stdout and stderr."""
        return self.user_data_dir / "chromium.log" if self.user_data_dir else None

    def start(self) -> None:
        """Start Chromium and wait until its DevTools endpoint is up."""
        if self.alive:
            return
        self.stop()
        self.user_data_dir = Path(tempfile.mkdtemp(prefix="pdp-chromium-"))
        args = [
            self.executable,
            "--headless",
            *CHROMIUM_ARGS,
            *self.extra_args,
            f"--user-data-dir={self.user_data_dir}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        # Chromium puts its singleton socket in $TMPDIR/org.chromium.Chromium.* and leaves it behind when
        # stopped by a signal: keep it inside the user-data dir, which stop() removes.
        tmp_dir = self.user_data_dir / "tmp"
        tmp_dir.mkdir()
        env = {**(self.env if self.env is not None else os.environ), "TMPDIR": str(tmp_dir)}
        assert self.log_file is not None
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop() ends the renderers too
            )
        port_file = self.user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2 and lines[0].isdigit():
                    self.port, self.browser_ws_path = int(lines[0]), lines[1]
                    return
            time.sleep(0.02)
        log_text = self.log_file.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"Chromium did not open its DevTools port:\n{log_text}")

    def stop(self, timeout: float = 10.0) -> None:
        """End Chromium (its whole process group) and remove the user-data dir."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout)
            # Helper processes (zygote, renderers) may outlive the main one for a moment.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self.user_data_dir is not None:
            shutil.rmtree(self.user_data_dir, ignore_errors=True)
            self.user_data_dir = None
        self.port = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ChromiumProcess {self.cdp_url if self.alive else 'stopped'}>"
