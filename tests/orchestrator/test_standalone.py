"""The P0 script's helpers: running gateways from the environment, and one trace per standalone run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from aioresponses import CallbackResult, aioresponses

from orchestrator.config import OrchestratorConfig
from orchestrator.tools.standalone import open_gateways, run_flow
from shared_contracts.flows import Product
from tests.orchestrator.answers import LLM_URL, MEDIA_URL, PRODUCT, llm_answer, media_job
from tests.orchestrator.conftest import client_config


async def test_gateway_urls_from_the_environment_are_used_and_nothing_is_started(tmp_path: Path) -> None:
    environ = {"LLM_GATEWAY_URL": "http://llm.example:8100", "MEDIA_GATEWAY_URL": " http://media.example:8200 "}
    async with open_gateways(environ, log_dir=tmp_path / "logs") as urls:
        assert (urls.llm, urls.media, urls.started) == ("http://llm.example:8100", "http://media.example:8200", False)
    # No child was started, so no child wrote a log.
    assert not (tmp_path / "logs").exists()


async def test_a_standalone_run_is_one_trace_with_the_run_id_as_request_id(upstream: aioresponses) -> None:
    sent: list[dict[str, str]] = []

    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        sent.append({key.lower(): value for key, value in kwargs["headers"].items()})
        if str(url).startswith(MEDIA_URL):
            return CallbackResult(payload=media_job())
        return CallbackResult(payload=llm_answer(msgspec.json.decode(kwargs["data"])["role"]))

    upstream.post(f"{LLM_URL}/api/v1/llm/generate", callback=answer, repeat=True)
    upstream.post(f"{MEDIA_URL}/api/v1/media/image/generate", callback=answer, repeat=True)
    config = OrchestratorConfig(llm_gateway=client_config(LLM_URL), media_gateway=client_config(MEDIA_URL))

    doc = await run_flow(msgspec.convert(PRODUCT, Product), config)

    assert doc.status == "succeeded"
    assert len(sent) == 7  # six LLM calls and the vision step's image
    assert {headers["x-request-id"] for headers in sent} == {doc.run_id}
    traces = {headers["traceparent"] for headers in sent}
    assert len(traces) == 1 and traces.pop().startswith("00-")
