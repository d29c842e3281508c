"""Each agent: what it sends (role, task, schema, payload, rendered prompts) and what it returns, against
recorded gateway answers and against the real gateway apps in mock mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import msgspec
import pytest
from aioresponses import aioresponses
from yarl import URL

from orchestrator.agents import (
    Agent,
    AgentInputs,
    AgentOutput,
    BrandAgent,
    BriefAgent,
    CopywriterAgent,
    PagePlan,
    PromptLibrary,
    ReviewerAgent,
    StrategistAgent,
    VisionGeneratorAgent,
    VisionOutput,
)
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient, response_schema
from orchestrator.config import FlowConfig
from orchestrator.flow import P0ProductDetailFlow
from shared_contracts.flows import Product
from tests.orchestrator.answers import LLM_URL, MEDIA_URL, PRODUCT, llm_answer, media_job, output_of
from tests.orchestrator.conftest import client_config

GENERATE = f"{LLM_URL}/api/v1/llm/generate"
IMAGE = f"{MEDIA_URL}/api/v1/media/image/generate"
ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]


def build_agents(llm: LLMGatewayClient, media: MediaGatewayClient) -> dict[str, Agent[Any]]:
    return P0ProductDetailFlow.build(llm, media, FlowConfig()).agents


def inputs_for(agent: Agent[Any], agents: dict[str, Agent[Any]]) -> AgentInputs:
    earlier = {role: msgspec.convert(output_of(role), agents[role].output_type) for role in agent.needs}
    return AgentInputs(product=msgspec.convert(PRODUCT, Product), outputs=earlier, run_id="20250101T000000Z-00000000")


def test_agents_have_their_roles_and_inputs() -> None:
    classes: list[type[Agent[Any]]] = [
        BrandAgent, BriefAgent, StrategistAgent, CopywriterAgent, VisionGeneratorAgent, ReviewerAgent
    ]
    assert [cls.role for cls in classes] == ROLES
    assert len({cls.task for cls in classes}) == 6
    assert ReviewerAgent.needs == ("brand", "brief", "strategist", "copywriter")
    assert "vision" not in CopywriterAgent.needs and "copywriter" not in VisionGeneratorAgent.needs


@pytest.mark.parametrize("role", ROLES)
async def test_agent_against_recorded_answers(
    role: str, llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    agents = build_agents(llm, media)
    agent = agents[role]
    upstream.post(GENERATE, payload=llm_answer(role))
    upstream.post(IMAGE, payload=media_job())
    inputs = inputs_for(agent, agents)
    result = await agent.run(inputs, request_id="req-7")

    [call] = upstream.requests[("POST", URL(GENERATE))]
    sent = msgspec.json.decode(call.kwargs["data"])
    assert (sent["role"], sent["task"]) == (agent.role, agent.task)
    assert sent["response_schema"] == agent.schema(inputs)
    if role not in ("copywriter", "reviewer"):
        assert sent["response_schema"] == response_schema(agent.output_type)
    assert set(sent["payload"]) == {"product", "language", *agent.needs}
    assert sent["payload"]["product"]["name"] == PRODUCT["name"]
    for need in agent.needs:
        assert sent["payload"][need] == output_of(need)
    system, user = sent["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert PRODUCT["name"] in user["content"] and "$" not in user["content"] + system["content"]
    assert sent["metadata"] == {"run_id": "20250101T000000Z-00000000"}
    assert call.kwargs["headers"]["x-request-id"] == "req-7"

    if role == "vision":
        assert isinstance(result.output, VisionOutput)
        [image_call] = upstream.requests[("POST", URL(IMAGE))]
        image_request = msgspec.json.decode(image_call.kwargs["data"])
        written = output_of("vision")
        size = FlowConfig().image_sizes[written["aspect"]]
        assert image_request["prompt"] == written["prompt"]
        assert image_request["negative_prompt"] == written["negative_prompt"]
        assert (image_request["width"], image_request["height"]) == (size.width, size.height)
        assert (image_request["role"], image_request["task"]) == ("vision", "product_image")
        assert result.output.images[0].url == media_job()["images"][0]["url"]
        assert result.job is not None and result.job.id == media_job()["id"]
    else:
        assert isinstance(result.output, agent.output_type)
        assert msgspec.to_builtins(result.output) == output_of(role)
        assert ("POST", URL(IMAGE)) not in upstream.requests
    assert result.generated.response.provider == "mock"


async def test_an_agent_without_its_earlier_outputs_refuses_to_run(
    llm: LLMGatewayClient, media: MediaGatewayClient
) -> None:
    agents = build_agents(llm, media)
    with pytest.raises(ValueError, match="reviewer agent needs the output of"):
        agents["reviewer"].request(AgentInputs(product=msgspec.convert(PRODUCT, Product)))


def test_every_template_renders_for_an_english_product(llm: LLMGatewayClient, media: MediaGatewayClient) -> None:
    root = Path(__file__).resolve().parents[2]
    english = msgspec.json.decode((root / "orchestrator/samples/en_headphones.json").read_bytes(), type=Product)
    agents = build_agents(llm, media)
    for agent in agents.values():
        earlier = {role: msgspec.convert(output_of(role), agents[role].output_type) for role in agent.needs}
        system, user = agent.messages(AgentInputs(product=english, outputs=earlier))
        assert "English (en)" in user.content
        assert english.name in user.content


def test_a_placeholder_without_a_value_fails_loudly() -> None:
    with pytest.raises(KeyError):
        PromptLibrary().render("brand.user.md", {"language": "Korean (ko)"})


def test_every_output_schema_is_bounded() -> None:
    """Arrays carry maxItems and strings maxLength, so a model cannot answer with an unbounded document."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array":
                assert "maxItems" in node, node
            if node.get("type") == "string":
                assert "maxLength" in node, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for cls in (BrandAgent, BriefAgent, StrategistAgent, CopywriterAgent, VisionGeneratorAgent, ReviewerAgent):
        schema = response_schema(cls.output_type)
        assert schema["type"] == "object" and schema["required"]
        walk(schema)


@pytest.mark.parametrize("role", ROLES)
async def test_agent_against_the_real_gateways_in_mock_mode(
    role: str, real_gateways: tuple[LLMGatewayClient, MediaGatewayClient]
) -> None:
    llm, media = real_gateways
    agents = build_agents(llm, media)
    agent = agents[role]
    result = await agent.run(inputs_for(agent, agents))
    output: AgentOutput = result.output
    assert result.generated.response.mode == "mock"
    assert result.generated.response.role == role
    # The mock reuses the payload in its strings: the answer is about this product.
    assert PRODUCT["name"] in msgspec.json.encode(output).decode("utf-8")
    if role == "vision":
        assert isinstance(output, VisionOutput)
        async with aiohttp.ClientSession() as session, session.get(output.images[0].url) as resp:
            body = await resp.read()
        assert resp.status == 200 and resp.content_type == "image/png"
        assert body.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert isinstance(output, agent.output_type)


async def test_the_copy_is_keyed_by_the_plan_and_the_review_by_the_copy(
    real_gateways: tuple[LLMGatewayClient, MediaGatewayClient]
) -> None:
    # The narrowed schemas are what keeps the steps coherent, in mock mode as with a live model.
    llm, media = real_gateways
    agents = build_agents(llm, media)
    inputs = inputs_for(agents["copywriter"], agents)
    plan = inputs.outputs["strategist"]
    assert isinstance(plan, PagePlan)
    copy = (await agents["copywriter"].run(inputs)).output
    assert [section.section_id for section in copy.sections] == [section.id for section in plan.sections]

    review_inputs = AgentInputs(product=inputs.product, outputs={**inputs.outputs, "copywriter": copy})
    review = (await agents["reviewer"].run(review_inputs)).output
    copied = {section.section_id for section in copy.sections}
    assert review.issues and {issue.section_id for issue in review.issues} <= copied


def test_a_copy_naming_an_unplanned_section_does_not_match_the_schema() -> None:
    agents = build_agents(LLMGatewayClient.from_config(client_config(LLM_URL)),
                          MediaGatewayClient.from_config(client_config(MEDIA_URL)))
    copywriter = agents["copywriter"]
    inputs = inputs_for(copywriter, agents)
    plan = inputs.outputs["strategist"]
    assert isinstance(plan, PagePlan)
    section = {"title": "t", "body": "b", "bullets": []}
    good = {"headline": "h", "subheadline": "s", "cta": {"label": "l", "supporting_text": "x"},
            "sections": [{"section_id": planned.id, **section} for planned in plan.sections]}
    jsonschema.validate(good, copywriter.schema(inputs))
    for wrong in (good["sections"][:-1], [*good["sections"][:-1], {"section_id": "invented", **section}],
                  list(reversed(good["sections"]))):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, "sections": wrong}, copywriter.schema(inputs))
