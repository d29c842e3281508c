"""The real `llm-gateway` process: SIGTERM lets an in-flight request finish and exits 0;
keys and prompts stay out of logs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.child import Child
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


async def test_sigterm_finishes_the_in_flight_request_refuses_new_ones_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    async with FakeOpenAI(models=["local-model"], gate=asyncio.Event()) as fake:
        env = {"FAKE_URL": fake.base_url, "TEST_GATEWAY_KEYS": KEY}
        async with Child("llm_gateway", config, env, command=[str(EXE)], unset=["GENERATOR_MODE"]) as child:
            request = {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": PROMPT}]}
            async with aiohttp.ClientSession() as session:
                in_flight = asyncio.create_task(session.post(
                    f"{child.url}/api/v1/llm/generate", json=request, headers={"authorization": f"Bearer {KEY}"}))
                async with asyncio.timeout(10):
                    await fake.received.wait()
                assert child.proc is not None
                child.proc.send_signal(signal.SIGTERM)
                await child.logged(b"Shutting down")

                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector) as fresh:
                    with pytest.raises(aiohttp.ClientConnectionError):
                        async with asyncio.timeout(10):
                            await fresh.get(f"{child.url}/healthz")

                assert fake.gate is not None
                fake.gate.set()
                async with asyncio.timeout(10):
                    response = await in_flight
                    answer = await response.json()
                assert response.status == 200, answer
                assert answer["text"] == fake.reply
            # SIGTERM was sent already; a second one would cut the graceful shutdown short.
            assert await child.exit_code(None) == 0, child.log()
    logs = child.log()
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(r["event"] == "llm_request" and r["outcome"] == "ok" for r in records)
    assert KEY not in logs and "SECRET-PROMPT-4242" not in logs
