"""The real `llm-gateway` process: SIGTERM lets an in-flight request finish and exits 0; keys and prompts stay out of logs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.openai_compat import FakeOpenAI

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).parent / "llm-gateway"
KEY = "proc-key-5c1d-do-not-log"
PROMPT = "SECRET-PROMPT-4242 about the lamp"
CONFIG = """
mode: live
timeouts: {mock: 5, live: 30}
providers:
  local:
    class: llm_gateway.providers.openai:OpenAIProvider
    base_url: ${FAKE_URL}
    key_required: false
llm_routing:
  default: {provider: local, model: local-model}
auth:
  api_keys: "${TEST_GATEWAY_KEYS}"
"""


async def _read_until(stream: asyncio.StreamReader, lines: list[bytes], needle: bytes) -> None:
    async with asyncio.timeout(30):
        async for line in stream:
            lines.append(line)
            if needle in line:
                return
    raise AssertionError(f"{needle!r} never logged: {b''.join(lines).decode()}")


async def test_sigterm_finishes_the_in_flight_request_refuses_new_ones_and_exits_0(
    tmp_path: Path, free_port: int
) -> None:
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    async with FakeOpenAI(models=["local-model"], gate=asyncio.Event()) as fake:
        env = {**os.environ, "FAKE_URL": fake.base_url, "TEST_GATEWAY_KEYS": KEY, "LOG_LEVEL": "info"}
        env.pop("GENERATOR_MODE", None)
        proc = await asyncio.create_subprocess_exec(
            str(EXE), "--port", str(free_port), "--config", str(config),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        lines: list[bytes] = []
        url = f"http://127.0.0.1:{free_port}"
        try:
            await _read_until(proc.stderr, lines, b"Uvicorn running on")
            request = {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": PROMPT}]}
            async with aiohttp.ClientSession() as session:
                in_flight = asyncio.create_task(session.post(
                    f"{url}/api/v1/llm/generate", json=request, headers={"authorization": f"Bearer {KEY}"}))
                async with asyncio.timeout(10):
                    await fake.received.wait()
                proc.send_signal(signal.SIGTERM)
                await _read_until(proc.stderr, lines, b"Shutting down")

                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector) as fresh:
                    with pytest.raises(aiohttp.ClientConnectionError):
                        async with asyncio.timeout(10):
                            await fresh.get(f"{url}/healthz")

                assert fake.gate is not None
                fake.gate.set()
                async with asyncio.timeout(10):
                    response = await in_flight
                    answer = await response.json()
                assert response.status == 200, answer
                assert answer["text"] == fake.reply
            async with asyncio.timeout(20):
                lines.append(await proc.stderr.read())
                assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    logs = b"".join(lines).decode()
    assert '"event": "llm_request"' in logs and '"outcome": "ok"' in logs
    assert KEY not in logs and "SECRET-PROMPT-4242" not in logs
