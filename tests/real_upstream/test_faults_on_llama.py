"""Fallbacks on a real llama-server that hangs (SIGSTOP) or is killed (SIGKILL).

Before each try got its own budget, a frozen primary ate the whole deadline: 504 after the full timeout,
the configured fallback never tried. Now the primary's try gets its share (or the rule's
`attempt_timeout`) and the fallback answers inside the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from tests.upstreams.llama_server import LlamaServer

from ._support import GENERATE, live_config, llama_section, post, serve_gateway, stream_events

pytestmark = [pytest.mark.real_upstream, pytest.mark.slow]

ASK = {"role": "brand", "task": "chat", "messages": [{"role": "user", "content": "Say hello."}],
       "options": {"max_tokens": 8, "seed": 1}}
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
          "additionalProperties": False}


def outcomes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in answer["attempts"]]


async def test_a_frozen_primary_leaves_the_fallback_time(
    llama: LlamaServer, llama_server_factory: Callable[..., LlamaServer]
) -> None:
    frozen = llama_server_factory()
    providers = {"primary": llama_section(frozen.base_url), "llama": llama_section(llama.base_url)}
    frozen.freeze()
    try:
        # Default budget: two targets, so the primary's try gets half of the 3 s deadline.
        async with serve_gateway(live_config(providers, primary="primary", fallbacks=("llama",), timeout=3)) as url:
            status, answer = await post(url, GENERATE, ASK)
            assert status == 200, answer
            assert outcomes(answer) == [("primary", "upstream_timeout"), ("llama", "ok")]
            assert answer["attempts"][0]["latency_ms"] < answer["latency_ms"]

            events = await stream_events(url, {**ASK, "options": {"seed": 1}, "response_schema": SCHEMA})
            name, done = events[-1]
            assert name == "done", done
            assert outcomes(done) == [("primary", "upstream_timeout"), ("llama", "ok")]
            jsonschema.validate(done["json"], SCHEMA)

        # A rule's own attempt_timeout: the primary's try ends after 0.5 s of a 60 s deadline.
        route = {"attempt_timeout": 0.5}
        config = live_config(providers, primary="primary", fallbacks=("llama",), timeout=60, route=route)
        async with serve_gateway(config) as url:
            status, answer = await post(url, GENERATE, ASK)
            assert status == 200 and outcomes(answer) == [("primary", "upstream_timeout"), ("llama", "ok")]
    finally:
        frozen.thaw()


async def test_a_frozen_primary_falls_back_to_the_mock(llama_server_factory: Callable[..., LlamaServer]) -> None:
    frozen = llama_server_factory()
    frozen.freeze()
    try:
        config = live_config({"primary": llama_section(frozen.base_url)}, primary="primary", fallbacks=("mock",),
                             timeout=2)
        async with serve_gateway(config) as url:
            status, answer = await post(url, GENERATE, {**ASK, "options": {"seed": 1}, "response_schema": SCHEMA})
    finally:
        frozen.thaw()
    assert status == 200, answer
    assert outcomes(answer) == [("primary", "upstream_timeout"), ("mock", "ok")]
    jsonschema.validate(answer["json"], SCHEMA)


async def test_a_killed_primary_falls_back_at_once_and_answers_again_after_a_restart(
    llama: LlamaServer, llama_server_factory: Callable[..., LlamaServer]
) -> None:
    primary = llama_server_factory()
    providers = {"primary": llama_section(primary.base_url), "llama": llama_section(llama.base_url)}
    async with serve_gateway(live_config(providers, primary="primary", fallbacks=("llama",), timeout=30)) as url:
        status, answer = await post(url, GENERATE, ASK)
        assert status == 200 and outcomes(answer) == [("primary", "ok")]
        primary.kill()
        status, answer = await post(url, GENERATE, ASK)
        assert status == 200, answer
        assert outcomes(answer) == [("primary", "provider_unavailable"), ("llama", "ok")]
        primary.start()  # the same port again
        status, answer = await post(url, GENERATE, ASK)
        assert status == 200 and outcomes(answer) == [("primary", "ok")]


async def test_a_killed_server_without_fallback_is_provider_unavailable(
    llama_server_factory: Callable[..., LlamaServer]
) -> None:
    server = llama_server_factory()
    server.kill()
    async with serve_gateway(live_config({"llama": llama_section(server.base_url)}, timeout=5)) as url:
        status, body = await post(url, GENERATE, ASK)
    assert status == 503 and body["error"]["code"] == "provider_unavailable"
    assert [a["outcome"] for a in body["error"]["details"]["attempts"]] == ["provider_unavailable"]
