"""The real `llm-gateway` process in live mode against the fake Ollama, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.asgi import sse_events
from tests.fakes.ollama import FakeOllama

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"},
                                                                "minItems": 2}},
    "required": ["headline", "bullets"],
}
EXE = Path(sys.executable).parent / "llm-gateway"


async def _drain(stream: asyncio.StreamReader, lines: list[bytes]) -> None:
    async for line in stream:
        lines.append(line)


@pytest.fixture
async def gateway_url(repo_root: Path, free_port: int) -> AsyncIterator[tuple[str, FakeOllama, list[bytes]]]:
    async with FakeOllama(models=["qwen2.5:7b", "qwen2.5:14b"]) as fake:
        env = {**os.environ, "GENERATOR_MODE": "live", "OLLAMA_BASE_URL": fake.base_url, "LOG_LEVEL": "info"}
        env.pop("LLM_GATEWAY_CONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            str(EXE), "--port", str(free_port), cwd=repo_root, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        lines: list[bytes] = []
        try:
            async with asyncio.timeout(30):  # uvicorn logs this line once the socket listens
                async for line in proc.stderr:
                    lines.append(line)
                    if b"Uvicorn running on" in line:
                        break
            assert b"Uvicorn running on" in b"".join(lines), b"".join(lines).decode()
            drain = asyncio.create_task(_drain(proc.stderr, lines))
            yield f"http://127.0.0.1:{free_port}", fake, lines
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
        await drain


async def test_live_process_answers_from_upstream(gateway_url: tuple[str, FakeOllama, list[bytes]]) -> None:
    url, fake, logs = gateway_url
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
    assert any(b'"request_id": "proc-1"' in line and b'"outcome": "ok"' in line for line in logs)


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
