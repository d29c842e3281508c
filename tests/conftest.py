"""Fixtures every test folder may use; keep this generic (service-specific ones live in each folder)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioresponses import aioresponses

from tests.fakes.aioresponses_compat import patched_aioresponses

# Real upstreams (llama.cpp's server, PostgreSQL, an S3-compatible server, Chromium), built or installed by
# `make test-deps`; every test folder may use their fixtures.
pytest_plugins = ["tests.upstreams.fixtures", "tests.upstreams.fixtures_engines"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole test: bound, never listening.

    Holding it bound means no other process can start listening there between choosing and using it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses (patched for aiohttp 3.14) intercepting every aiohttp request of the test."""
    with patched_aioresponses(monkeypatch) as mocked:
        yield mocked
