"""pytest fixtures for the real engines: PostgreSQL, moto's S3 server, headless Chromium, Node tools.

Use them from a test module or conftest.py with

    pytest_plugins = ["tests.upstreams.fixtures_engines"]

(a root conftest.py may list it; pytest forbids pytest_plugins in non-root conftest files).

An engine that is not installed (no server binaries, no Python package) makes its tests SKIP with the
install hint, so a machine without them still runs the rest; set PDP_REQUIRE_ENGINES=1 (CI, after
`.ci/system_deps.sh` and `.ci/node_deps.sh`) to make that a failure instead.

Fixtures:
    postgres_server  session   PostgresServer on 127.0.0.1 (one cluster for the session, fsync off)
    postgres_dsn     function  DSN of a fresh database, dropped after the test
    s3_server        session   S3Server (moto in server mode) on 127.0.0.1
    s3_bucket        function  name of a fresh, empty bucket on s3_server
    chromium         session   ChromiumProcess: one headless Chromium with a CDP port on 127.0.0.1
    browser          function  async Playwright Browser joined to `chromium` in the test's own event loop
    page             function  a Page in a fresh BrowserContext of `browser`
    node_tools       session   NodeTools: paths of newman and the `openai` npm package (.ci/node_deps.sh)

Why `browser` is function-scoped and async: the project runs pytest-asyncio with function-scoped event
loops, and Playwright's async objects belong to the loop that made them (a session-scoped async Browser
used from a test's loop fails with "attached to a different loop"; it works only if every such test and
fixture is marked `loop_scope="session"`). So the session keeps one Chromium process (`chromium`), and
each test joins it over CDP with its own Playwright (~0.6 s, against ~0.9 s for a launch per test), which
composes with the project's in-loop aiohttp fakes. Playwright's sync API cannot run inside a running event
loop at all, so it would rule out async tests; `browser.launch_browser_sync` is there for sync code.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

import pytest
import pytest_asyncio

from tests.upstreams.browser import ChromiumProcess
from tests.upstreams.postgres import PostgresServer
from tests.upstreams.s3 import S3Server

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = [
    "NodeTools",
    "browser",
    "chromium",
    "engine_unavailable",
    "node_tools",
    "page",
    "postgres_dsn",
    "postgres_server",
    "require_module",
    "s3_bucket",
    "s3_server",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def engines_required() -> bool:
    """True when a missing engine must fail the test rather than skip it (PDP_REQUIRE_ENGINES=1)."""
    return os.environ.get("PDP_REQUIRE_ENGINES", "").strip().lower() in {"1", "true", "yes"}


def engine_unavailable(reason: str) -> NoReturn:
    """Skip the test (or fail it under PDP_REQUIRE_ENGINES=1) because an engine is missing."""
    if engines_required():
        pytest.fail(f"engine missing (PDP_REQUIRE_ENGINES=1): {reason}", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, install_hint: str | None = None) -> ModuleType:
    """Import a module a test needs, or skip/fail via engine_unavailable()."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        engine_unavailable(f"Python package for {name!r} missing ({exc}); pip install {install_hint or name}")


# -- PostgreSQL -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (trust auth, fsync off), stopped and removed at the end."""
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        engine_unavailable(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """DSN of a database made for this test alone; dropped (connections and all) afterwards."""
    if not postgres_server.running:  # a test killed the server: bring it back (crash recovery)
        postgres_server.start()
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)


# -- S3 (moto) --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the session; its client settings are in `s3_server.client_env()`."""
    try:
        server = S3Server()
    except ImportError as exc:
        engine_unavailable(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket for this test (left behind in moto's memory, gone with the server)."""
    if s3_server.pid is None:  # a test killed the server
        s3_server.start()
    return s3_server.create_bucket(f"t-{uuid.uuid4().hex[:20]}")


# -- Chromium (Playwright) --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[ChromiumProcess]:
    """One headless Debian Chromium for the session, with a CDP endpoint on 127.0.0.1."""
    try:
        process = ChromiumProcess()
    except FileNotFoundError as exc:
        engine_unavailable(str(exc))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest_asyncio.fixture
async def browser(chromium: ChromiumProcess) -> AsyncIterator[Browser]:
    """An async Playwright Browser joined to the session's Chromium, in this test's event loop.

    Make pages in a context of your own (`await browser.new_context()`) or use the `page` fixture;
    everything the test made is closed afterwards, and Chromium keeps running.
    """
    require_module("playwright.async_api", "playwright")
    from playwright.async_api import async_playwright

    from tests.upstreams.browser import connect_browser

    if not chromium.alive:  # crashed or killed by a test: start a new one
        chromium.start()
    async with async_playwright() as playwright:
        connected = await connect_browser(playwright, chromium)
        try:
            yield connected
        finally:
            await connected.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser context (own cookies and storage), 1280x800."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield await context.new_page()
    finally:
        await context.close()


# -- Node tools (npm) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTools:
    """Where .ci/node_deps.sh put the npm packages."""

    prefix: Path

    @property
    def node_modules(self) -> Path:
        """The folder to put on NODE_PATH for `require('openai')`."""
        return self.prefix / "node_modules"

    @property
    def newman(self) -> Path:
        """The newman executable."""
        return self.node_modules / ".bin" / "newman"

    def env(self) -> dict[str, str]:
        """os.environ plus NODE_PATH for scripts that require() the installed packages."""
        return {**os.environ, "NODE_PATH": str(self.node_modules)}


@pytest.fixture(scope="session")
def node_tools() -> NodeTools:
    """newman and the `openai` npm package from `${PDP_CACHE_DIR:-<repo>/.cache}/node` (.ci/node_deps.sh)."""
    prefix = Path(os.environ.get("PDP_CACHE_DIR") or REPO_ROOT / ".cache") / "node"
    tools = NodeTools(prefix)
    if not os.access(tools.newman, os.X_OK):
        engine_unavailable(f"newman not installed under {prefix}; run .ci/node_deps.sh")
    try:
        subprocess.run(["node", "--version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        engine_unavailable(f"node does not run ({exc}); run .ci/system_deps.sh")
    return tools
