"""LangChain's `ChatOpenAI` against the gateway's /v1: invoke, stream, structured output in its three methods,
and a `bind_tools` round trip; in mock mode and in front of each provider."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from .conftest import ALIAS, Gateway

PROMPT = [SystemMessage("You write product copy."), HumanMessage("Write a headline for the Aurora kettle.")]


class Headline(pydantic.BaseModel):
    """A product headline."""

    headline: str
    bullets: list[str]


@tool
def get_stock(sku: str) -> str:
    """Units in stock for a product."""
    return f"12 units of {sku}"


def chat(gateway: Gateway, **more: Any) -> ChatOpenAI:
    return ChatOpenAI(model=ALIAS, base_url=gateway.v1, api_key="not-needed", max_retries=0, timeout=20, **more)


async def test_invoke(gateway: Gateway) -> None:
    answer = await chat(gateway).ainvoke(PROMPT)
    assert isinstance(answer, AIMessage) and answer.content
    assert answer.response_metadata["model_name"] == ALIAS


async def test_stream(gateway: Gateway) -> None:
    pieces = [chunk async for chunk in chat(gateway, stream_usage=True).astream(PROMPT)]
    assert "".join(str(p.content) for p in pieces)
    assert any(p.usage_metadata for p in pieces)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_output_into_a_pydantic_model(gateway: Gateway, method: str) -> None:
    structured = chat(gateway).with_structured_output(Headline, method=method)  # type: ignore[arg-type]
    result = await structured.ainvoke(PROMPT)
    assert isinstance(result, Headline)


async def test_structured_output_in_json_mode(gateway: Gateway) -> None:
    # json_mode asks for any JSON object (response_format json_object) and parses it.
    schema = {"title": "Anything", "type": "object", "properties": {}}
    structured = chat(gateway).with_structured_output(schema, method="json_mode")
    result = await structured.ainvoke([*PROMPT, HumanMessage("Answer in JSON.")])
    assert isinstance(result, dict)


async def test_bind_tools_round_trip(gateway: Gateway) -> None:
    model = chat(gateway).bind_tools([get_stock])
    first = await model.ainvoke([HumanMessage("How many get_stock units of SKU-1 are there?")])
    assert isinstance(first, AIMessage) and first.tool_calls
    call = first.tool_calls[0]
    assert call["name"] == "get_stock" and isinstance(call["args"].get("sku"), str)
    result = await get_stock.ainvoke(call["args"])
    second = await model.ainvoke([HumanMessage("How many get_stock units of SKU-1 are there?"), first,
                                  ToolMessage(str(result), tool_call_id=call["id"])])
    assert isinstance(second, AIMessage) and second.content and not second.tool_calls
