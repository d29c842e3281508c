"""Every agent's schema is enforceable by a real constrained decoder: each of the six roles, with its real
request (built by the orchestrator's agents from a sample product and realistic earlier outputs), answers
schema-valid on llama-server on the first try, for several seeds and products.

Before the copywriter fix its schema had `prefixItems` (one `const` section id per planned section) next to
the generic `items`; llama.cpp's grammar lets `items` win, so the ids came out unconstrained and the copy
failed with `invalid_output` at `$.sections[i].section_id` (the repair, under the same grammar, too).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import msgspec
import pytest

from orchestrator.agents import Agent, AgentInputs
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig, GatewayClientConfig
from orchestrator.flow import P0ProductDetailFlow
from shared_contracts.flows import Product
from shared_contracts.llm import GenerateOptions
from tests.orchestrator.answers import output_of
from tests.upstreams.llama_server import LlamaServer

from ._support import REPO_ROOT, ROLES, SAMPLES, live_config, llama_section, serve_gateway

pytestmark = pytest.mark.real_upstream

# Three (seed, sample product) pairs per role.
CASES = [(seed, SAMPLES[seed % len(SAMPLES)]) for seed in (1, 2, 3)]


def product(sample: str) -> Product:
    return msgspec.json.decode((REPO_ROOT / "orchestrator" / "samples" / f"{sample}.json").read_bytes(), type=Product)


@pytest.fixture
async def agents(llama: LlamaServer) -> AsyncIterator[dict[str, Agent[Any]]]:
    """The flow's six agents, their LLM client on a live gateway in front of llama-server."""
    async with serve_gateway(live_config({"llama": llama_section(llama.base_url)})) as url:
        config = GatewayClientConfig(base_url=url, timeout_s=60, max_retries=0)
        async with LLMGatewayClient.from_config(config) as llm:
            # The media client is never called here: only the vision agent's LLM step runs.
            media = MediaGatewayClient.from_config(GatewayClientConfig(base_url="http://127.0.0.1:9"))
            flow = P0ProductDetailFlow.build(llm, media, FlowConfig())
            yield {agent.role: agent for stage in flow.stages for agent in stage}


@pytest.mark.parametrize("role", ROLES)
async def test_each_roles_schema_is_enforced_by_the_grammar(agents: dict[str, Agent[Any]], role: str) -> None:
    agent = agents[role]
    for seed, sample in CASES:
        # Earlier outputs as a mock run recorded them (tests/fixtures/orchestrator/llm_<role>.json).
        earlier = {r: msgspec.convert(output_of(r), agents[r].output_type) for r in agent.needs}
        request = agent.request(AgentInputs(product=product(sample), outputs=earlier))
        request = msgspec.structs.replace(request, options=GenerateOptions(seed=seed))
        generated = await agent.llm.send(request, output=agent.output_type)
        answer = generated.response
        assert [a.outcome for a in answer.attempts] == ["ok"], (sample, seed, answer.attempts)
        assert request.response_schema is not None
        jsonschema.Draft202012Validator(request.response_schema).validate(json.loads(answer.text))
        assert isinstance(generated.output, agent.output_type)
