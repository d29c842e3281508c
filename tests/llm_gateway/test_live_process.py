"""The real `llm-gateway` process in live mode against the fake Ollama, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.asgi import sse_events
from tests.fakes.child import Child
from tests.fakes.ollama import FakeOllama

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"},
                                                                "minItems": 2}},
    "required": ["headline", "bullets"],
}
EXE = Path(sys.executable).parent / "llm-gateway"


@pytest.fixture
async def gateway(repo_root: Path) -> AsyncIterator[tuple[Child, FakeOllama]]:
    """The `llm-gateway` console script with the repository's default YAML, live against the fake."""
    async with FakeOllama(models=["qwen2.5:7b", "qwen2.5:14b"]) as fake:
        env = {"GENERATOR_MODE": "live", "OLLAMA_BASE_URL": fake.base_url}
        async with Child("llm_gateway", None, env, command=[str(EXE)], cwd=repo_root,
                         unset=["LLM_GATEWAY_CONFIG"]) as child:
            yield child, fake


async def test_live_process_answers_from_upstream(gateway: tuple[Child, FakeOllama]) -> None:
    child, fake = gateway
    url = child.url
    fake.reply = '{"headline": "Upstream wrote this", "bullets": ["one", "two", "three"]}'
    request = {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": "four words of prompt"}],
               "response_schema": SCHEMA}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/v1/llm/generate", json=request, headers={"x-request-id": "proc-1"}) as r:
            answer = await r.json()
            assert r.status == 200, answer
            assert r.headers["x-request-id"] == "proc-1"
        async with session.post(f"{url}/api/v1/llm/generate/stream", json=request) as r:
            events = sse_events(await r.read())
        async with session.get(f"{url}/readyz") as r:
            assert r.status == 200
    assert answer["mode"] == "live" and answer["provider"] == "ollama" and answer["model"] == "qwen2.5:7b"
    assert answer["text"] == fake.reply and answer["json"]["headline"] == "Upstream wrote this"
    # The fake reports 11 + 2 per prompt word and one eval token per word it wrote.
    assert answer["usage"] == {"input_tokens": 11 + 2 * 4, "output_tokens": len(fake.reply.split())}
    assert fake.chat_requests[0].body["format"] == SCHEMA
    assert events[-1][0] == "done" and events[-1][1]["text"] == fake.reply
    assert fake.chat_requests[1].body["stream"] is True
    # Each request's log line reaches our reader through a pipe, maybe after its answer: wait for both.
    await child.logged(b'"llm_request"', count=2)
    records = [json.loads(line) for line in child.lines if line.startswith(b"{")]
    assert any(r["event"] == "llm_request" and r["request_id"] == "proc-1" and r["outcome"] == "ok" for r in records)


def test_config_error_exits_2_without_traceback(tmp_path: Path, repo_root: Path) -> None:
    import subprocess

    bad = tmp_path / "bad.yaml"
    bad.write_text("llm_routing:\n  rules:\n    - {role: brand, provider: olama, model: m}\n")
    done = subprocess.run(
        [sys.executable, "-m", "llm_gateway", "--config", str(bad)],
        cwd=repo_root, capture_output=True, text=True, timeout=60, env={**os.environ, "GENERATOR_MODE": "mock"},
    )
    assert done.returncode == 2
    assert "llm_routing.rules[0].provider: unknown provider 'olama'" in done.stderr
    assert "Traceback" not in done.stderr
