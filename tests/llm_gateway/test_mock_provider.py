"""The mock provider: fixtures first, else deterministic schema-valid or plain answers reusing the payload."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import msgspec
import pytest

from llm_gateway.config import parse_gateway_config
from llm_gateway.providers.base import Delta, ProviderResult
from llm_gateway.providers.mock import MockProvider, MockSettings
from llm_gateway.registry import build_providers
from service_common.config import ConfigError
from shared_contracts.llm import Message

from ._support import call, in_seconds

SCHEMA = {"type": "object", "properties": {"headline": {"type": "string", "maxLength": 70},
                                            "bullets": {"type": "array", "items": {"type": "string"}, "minItems": 3}},
          "required": ["headline", "bullets"]}
PAYLOAD = {"product": {"name": "Aurora Desk Lamp", "price": 49}}


def mock(tmp_path: Path) -> MockProvider:
    return MockProvider("mock", MockSettings(fixtures_dir=str(tmp_path)))


async def test_schema_answers_validate_and_reuse_the_product_name(tmp_path: Path) -> None:
    result = await mock(tmp_path).generate(call(response_schema=SCHEMA, payload=PAYLOAD, role="copywriter",
                                                task="pdp"), deadline=in_seconds(5))
    doc = msgspec.json.decode(result.text)
    jsonschema.validate(doc, SCHEMA)
    assert "Aurora Desk Lamp" in result.text
    assert result.finish_reason == "stop" and result.input_tokens > 0 and result.output_tokens > 0


async def test_same_request_same_answer_and_payload_changes_it(tmp_path: Path) -> None:
    provider = mock(tmp_path)
    first = await provider.generate(call(response_schema=SCHEMA, payload=PAYLOAD), deadline=in_seconds(5))
    again = await provider.generate(call(response_schema=SCHEMA, payload=PAYLOAD), deadline=in_seconds(5))
    other = await provider.generate(call(response_schema=SCHEMA, payload={"product_name": "Nimbus Kettle"}),
                                    deadline=in_seconds(5))
    assert first == again
    assert "Nimbus Kettle" in other.text and "Aurora" not in other.text


async def test_plain_text_is_plausible(tmp_path: Path) -> None:
    result = await mock(tmp_path).generate(call(payload=PAYLOAD, role="reviewer", task="final_review"),
                                           deadline=in_seconds(5))
    assert result.text.startswith("Final review for Aurora Desk Lamp.")
    assert "lorem" not in result.text.lower() and len(result.text.split()) > 15


async def test_fixture_wins_over_synthesis(tmp_path: Path) -> None:
    (tmp_path / "brand.profile.json").write_text('{"headline": "From the fixture", "bullets": ["a", "b", "c"]}')
    (tmp_path / "brief.summary.json").write_text('"A plain text fixture."')
    provider = mock(tmp_path)
    assert provider.fixtures == {"brand.profile", "brief.summary"}
    structured = await provider.generate(call(role="brand", task="profile", response_schema=SCHEMA),
                                         deadline=in_seconds(5))
    plain = await provider.generate(call(role="brief", task="summary"), deadline=in_seconds(5))
    assert msgspec.json.decode(structured.text)["headline"] == "From the fixture"
    assert plain.text == "A plain text fixture."


async def test_stream_pieces_join_to_the_answer(tmp_path: Path) -> None:
    provider = mock(tmp_path)
    items = [i async for i in provider.stream(call(payload=PAYLOAD), deadline=in_seconds(5))]
    *deltas, result = items
    assert len(deltas) > 1 and all(isinstance(d, Delta) for d in deltas)
    assert isinstance(result, ProviderResult)
    assert "".join(d.text for d in deltas if isinstance(d, Delta)) == result.text


async def test_longer_prompt_more_input_tokens(tmp_path: Path) -> None:
    provider = mock(tmp_path)
    short = await provider.generate(call(), deadline=in_seconds(5))
    long = await provider.generate(call(messages=[Message(role="user", content="word " * 400)]), deadline=in_seconds(5))
    assert long.input_tokens > short.input_tokens


def test_broken_fixture_fails_at_configuration(tmp_path: Path) -> None:
    (tmp_path / "brand.profile.json").write_text("{not json")
    config = parse_gateway_config({"providers": {"mock": {"class": "llm_gateway.providers.mock:MockProvider",
                                                          "fixtures_dir": str(tmp_path)}}})
    with pytest.raises(ConfigError, match=r"providers\.mock: fixture .*brand\.profile\.json"):
        build_providers(config)
