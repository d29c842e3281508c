"""pytest fixtures for a real llama.cpp `llama-server` upstream serving a tiny random-weight model.

Register from the root conftest.py with `pytest_plugins = ["tests.upstreams.fixtures"]`, or import the
fixture names into a test module.

Fixtures:
    tiny_llama_gguf        session   Path of the tiny model (seed 0), written once per session (~0.5 s)
    llama_server           session   a started LlamaServer shared by the session; do not freeze/kill it
    llama_server_factory   function  start(**kwargs) -> LlamaServer; fresh servers for fault tests,
                                     each stopped (SIGCONT + SIGTERM, then SIGKILL) after the test

A missing binary (run `bash .ci/llama_server.sh` first) or a missing `gguf` package
(`pip install gguf==0.19.0`) makes these tests SKIP with that hint; with PDP_REQUIRE_ENGINES=1
(as for the other real engines) it fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.upstreams.llama_server import LlamaServer, LlamaServerNotBuilt, llama_server_binary, llama_vocab_gguf

__all__ = ["llama_server", "llama_server_factory", "tiny_llama_gguf"]

GGUF_HINT = "pip install gguf==0.19.0"


def _unavailable(reason: str) -> NoReturn:
    """Skip (or, under PDP_REQUIRE_ENGINES=1, fail) because llama-server or its inputs are missing."""
    if os.environ.get("PDP_REQUIRE_ENGINES", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"engine missing (PDP_REQUIRE_ENGINES=1): {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_llama_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF (seed 0) with llama.cpp's SPM vocabulary, made once per session."""
    try:
        llama_server_binary()
        vocab = llama_vocab_gguf()
    except LlamaServerNotBuilt as exc:
        _unavailable(str(exc))
    try:
        import gguf  # noqa: F401 - imported here only to turn its absence into the install hint
        import numpy  # noqa: F401
    except ImportError as exc:
        _unavailable(f"{exc}; {GGUF_HINT}")
    from tests.upstreams.tiny_model import make_tiny_llama_gguf  # needs numpy: imported only now

    return make_tiny_llama_gguf(tmp_path_factory.mktemp("llama") / "tiny-llama.gguf", vocab=vocab, seed=0)


@pytest.fixture(scope="session")
def llama_server(tiny_llama_gguf: Path) -> Iterator[LlamaServer]:
    """One llama-server for the whole session (2 slots, 1 thread); stopped at the end of the session."""
    with LlamaServer(tiny_llama_gguf) as server:
        yield server


@pytest.fixture
def llama_server_factory(tiny_llama_gguf: Path) -> Iterator[Callable[..., LlamaServer]]:
    """`start(**LlamaServer kwargs)` starts a server of the test's own (for freeze/kill tests); all stopped after."""
    started: list[LlamaServer] = []

    def start(**kwargs: Any) -> LlamaServer:
        kwargs.setdefault(
            "log_path", tiny_llama_gguf.with_name(f"server-{os.getpid()}-{len(started)}-{id(started)}.log")
        )
        server = LlamaServer(tiny_llama_gguf, **kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
