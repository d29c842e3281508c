"""The P0 flow with all six LLM roles on a real llama-server, for each sample product (Media Gateway in mock mode).

Before the copywriter schema fix this failed 4 of 4 runs at the copywriter step (`invalid_output` at
`$.sections[2].section_id`), while brand, brief, strategist and vision succeeded.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig, GatewayClientConfig
from orchestrator.flow import P0ProductDetailFlow
from shared_contracts.flows import Product
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app
from tests.upstreams.llama_server import LlamaServer

from ._support import MODEL, REPO_ROOT, ROLES, SAMPLES, live_config, llama_section, serve_gateway

pytestmark = pytest.mark.real_upstream


@pytest.mark.parametrize("sample", SAMPLES)
async def test_the_p0_flow_succeeds_on_llama_server(llama: LlamaServer, tmp_path: Path, sample: str) -> None:
    product = msgspec.json.decode((REPO_ROOT / "orchestrator" / "samples" / f"{sample}.json").read_bytes(),
                                  type=Product)
    _, media_app = mock_gateway_apps(tmp_path / "media")
    async with (
        serve_gateway(live_config({"llama": llama_section(llama.base_url)})) as llm_url,
        serve_app(media_app) as media_url,
        LLMGatewayClient.from_config(GatewayClientConfig(base_url=llm_url, timeout_s=60, max_retries=0)) as llm,
        MediaGatewayClient.from_config(GatewayClientConfig(base_url=media_url, timeout_s=10)) as media,
    ):
        doc = await P0ProductDetailFlow.build(llm, media, FlowConfig()).run(product)
    assert doc.status == "succeeded", (doc.failed_step, doc.error)
    assert list(doc.outputs) == list(ROLES)
    assert all((step.provider, step.model) == ("llama", MODEL) for step in doc.steps.values()), doc.steps
    # The copy has exactly the strategist's sections, in order, and the review names only those.
    planned = [s["id"] for s in doc.outputs["strategist"]["sections"]]
    assert [s["section_id"] for s in doc.outputs["copywriter"]["sections"]] == planned
    assert {i["section_id"] for i in doc.outputs["reviewer"]["issues"]} <= set(planned)
    assert doc.images and doc.images[0].url.startswith(media_url)
