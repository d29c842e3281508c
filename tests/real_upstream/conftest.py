"""Fixtures of the real-upstream suite: one llama-server for the session, with room for the agents' prompts.

The session's shared `llama_server` (tests/upstreams/fixtures.py) serves a model trained for 2,048 tokens,
which the reviewer's prompt alone exceeds; this suite's server serves the same tiny model built for 16,384.
Fault tests start servers of their own with `llama_server_factory` (and never touch this one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.upstreams.llama_server import LlamaServer, llama_vocab_gguf

CONTEXT = 16_384


@pytest.fixture(scope="session")
def long_context_gguf(tiny_llama_gguf: Path) -> Path:
    """The tiny model (seed 0) with a 16,384-token context; `tiny_llama_gguf` first, for its skip-or-fail checks."""
    from tests.upstreams.tiny_model import TinyLlamaShape, make_tiny_llama_gguf  # needs numpy: imported only now

    path = tiny_llama_gguf.with_name("tiny-llama-16k.gguf")
    return make_tiny_llama_gguf(path, vocab=llama_vocab_gguf(), seed=0, shape=TinyLlamaShape(n_ctx=CONTEXT))


@pytest.fixture(scope="session")
def llama(long_context_gguf: Path) -> Iterator[LlamaServer]:
    """One llama-server for the suite: 2 slots of 16,384 tokens (copywriter and vision run at once)."""
    with LlamaServer(long_context_gguf, ctx_size=2 * CONTEXT, parallel=2) as server:
        yield server
