"""The Gateway's request path with scripted providers: fallbacks, deadline, repair, attempts, streaming, mock mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_gateway.config import parse_gateway_config
from llm_gateway.gateway import Gateway
from llm_gateway.providers.base import Delta, ProviderResult
from llm_gateway.providers.mock import MockProvider, MockSettings
from llm_gateway.routing import Router
from shared_contracts.errors import (
    InvalidOutput,
    InvalidRequest,
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from shared_contracts.llm import GenerateOptions, GenerateRequest, GenerateResponse, Message, StreamDelta
from shared_contracts.tools import Tool

from ._support import BoundedProvider, Hang, ScriptedProvider, result

SCHEMA = {"type": "object", "properties": {"headline": {"type": "string"}}, "required": ["headline"],
          "additionalProperties": False}


def gateway(primary: ScriptedProvider, backup: ScriptedProvider | None = None, *, mode: str = "live",
            live_timeout: float = 30, route_extra: dict[str, Any] | None = None) -> Gateway:
    rule: dict[str, Any] = {"provider": primary.name, "model": "big", **(route_extra or {})}
    providers: dict[str, Any] = {primary.name: primary}
    if backup is not None:
        rule["fallbacks"] = [{"provider": backup.name, "model": "small"}]
        providers[backup.name] = backup
    config = parse_gateway_config({
        "mode": mode, "timeouts": {"live": live_timeout},
        "providers": {name: {"class": "tests:Scripted"} for name in providers},
        "llm_routing": {"rules": [rule]},
    })
    providers["mock"] = MockProvider("mock", MockSettings(fixtures_dir="/nonexistent"))
    return Gateway(router=Router(config.llm_routing, config.timeouts), providers=providers, mode=config.mode)


def request(**overrides: Any) -> GenerateRequest:
    fields: dict[str, Any] = {"role": "copywriter", "task": "headline",
                              "messages": [Message(role="user", content="Write a headline.")]}
    fields.update(overrides)
    return GenerateRequest(**fields)


def outcomes(attempts: Any) -> list[tuple[str, str, str]]:
    return [(a.provider, a.model, a.outcome) for a in attempts]


async def test_primary_answers() -> None:
    primary = ScriptedProvider("a", [result("Hello", tokens=(12, 3))])
    response = await gateway(primary).generate(request())
    assert (response.provider, response.model, response.text, response.json) == ("a", "big", "Hello", None)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.mode == "live" and outcomes(response.attempts) == [("a", "big", "ok")]
    assert response.attempts[0].error_code is None


@pytest.mark.parametrize("error", [UpstreamTimeout("slow"), ProviderUnavailable("down"), UpstreamError("500"),
                                   RateLimited("429")])
async def test_retryable_errors_fall_back_in_order(error: Exception) -> None:
    primary = ScriptedProvider("a", [error])  # type: ignore[list-item]
    backup = ScriptedProvider("b", [result("from backup")])
    response = await gateway(primary, backup).generate(request())
    assert response.provider == "b" and response.model == "small" and response.text == "from backup"
    code = error.code  # type: ignore[attr-defined]
    assert outcomes(response.attempts) == [("a", "big", code), ("b", "small", "ok")]
    assert response.attempts[0].error_code == code


async def test_request_errors_do_not_fall_back() -> None:
    primary = ScriptedProvider("a", [UpstreamRejected("model not found")])
    backup = ScriptedProvider("b", [result("never")])
    with pytest.raises(UpstreamRejected) as caught:
        await gateway(primary, backup).generate(request())
    assert backup.calls == []
    assert outcomes(caught.value.details["attempts"]) == [("a", "big", "upstream_rejected")]


async def test_all_targets_failing_raises_the_last_error_with_every_attempt() -> None:
    primary = ScriptedProvider("a", [ProviderUnavailable("down")])
    backup = ScriptedProvider("b", [UpstreamError("broken")])
    with pytest.raises(UpstreamError) as caught:
        await gateway(primary, backup).generate(request())
    assert caught.value.message == "broken"
    assert outcomes(caught.value.details["attempts"]) == [("a", "big", "provider_unavailable"),
                                                           ("b", "small", "upstream_error")]


async def test_a_hanging_primary_leaves_the_fallback_its_share_of_the_deadline() -> None:
    primary = ScriptedProvider("a", [Hang()])
    backup = ScriptedProvider("b", [result("in time")])
    # Two targets: the primary's try gets half of the deadline, so the fallback answers inside it (not a 504).
    response = await gateway(primary, backup, live_timeout=0.4).generate(request())
    assert response.provider == "b" and response.text == "in time"
    assert outcomes(response.attempts) == [("a", "big", "upstream_timeout"), ("b", "small", "ok")]
    assert 0 < response.attempts[0].latency_ms <= response.latency_ms


async def test_deadline_covers_the_whole_call_fallbacks_included() -> None:
    primary = ScriptedProvider("a", [Hang()])
    backup = ScriptedProvider("b", [Hang()])
    with pytest.raises(UpstreamTimeout) as caught:
        await gateway(primary, backup, live_timeout=0.2).generate(request())
    assert outcomes(caught.value.details["attempts"]) == [("a", "big", "upstream_timeout"),
                                                           ("b", "small", "upstream_timeout")]
    assert caught.value.details["timeout_s"] == 0.2
    # Each cut-off try reports how long it ran (about half the deadline each), not a placeholder.
    assert all(a.latency_ms >= 50 for a in caught.value.details["attempts"])


async def test_a_provider_that_bounds_itself_is_cut_at_the_deadline_with_the_gateways_answer() -> None:
    # No timer of the gateway's own runs over it: its own bound ends the try, and the caller sees what the
    # gateway's timer would have said about a provider that does not bound itself.
    with pytest.raises(UpstreamTimeout) as ours:
        await gateway(ScriptedProvider("a", [Hang()]), live_timeout=0.2).generate(request())
    with pytest.raises(UpstreamTimeout) as own:
        await gateway(BoundedProvider("a", [Hang()]), live_timeout=0.2).generate(request())
    assert own.value.message == ours.value.message
    assert own.value.details["timeout_s"] == ours.value.details["timeout_s"] == 0.2
    assert outcomes(own.value.details["attempts"]) == outcomes(ours.value.details["attempts"])
    assert outcomes(own.value.details["attempts"]) == [("a", "big", "upstream_timeout")]


async def test_a_bounded_providers_early_timeout_is_its_own_error_and_the_fallback_still_runs() -> None:
    # A timeout well before the deadline (a connect timeout, say) is the provider's, not the call's deadline.
    early = UpstreamTimeout("a: connect timed out", details={"provider": "a", "timeout_s": 0.01})
    response = await gateway(BoundedProvider("a", [early]), BoundedProvider("b", [result("in time")]),
                             live_timeout=5).generate(request())
    assert response.provider == "b"
    assert outcomes(response.attempts) == [("a", "big", "upstream_timeout"), ("b", "small", "ok")]
    with pytest.raises(UpstreamTimeout) as caught:
        await gateway(BoundedProvider("a", [early]), live_timeout=5).generate(request())
    assert caught.value.message == "a: connect timed out"


async def test_a_bounded_hanging_primary_still_leaves_the_fallback_its_share() -> None:
    # The primary's budget (half the deadline) is shorter than its deadline: that try gets the gateway's timer.
    primary = BoundedProvider("a", [Hang()])
    response = await gateway(primary, BoundedProvider("b", [result("in time")]), live_timeout=0.4).generate(request())
    assert response.provider == "b"
    assert outcomes(response.attempts) == [("a", "big", "upstream_timeout"), ("b", "small", "ok")]


async def test_the_deadline_covers_the_repair_on_a_bounded_provider() -> None:
    primary = BoundedProvider("a", [result('{"title": "wrong key"}'), Hang()])
    with pytest.raises(UpstreamTimeout) as caught:
        async with asyncio.timeout(10):
            await gateway(primary, live_timeout=0.2).generate(request(response_schema=SCHEMA))
    assert len(primary.calls) == 2
    assert caught.value.message == "no answer within 0.2s (live mode)"  # the call's deadline, as the timer says it
    expected = [("a", "big", "invalid_output"), ("a", "big", "upstream_timeout")]
    assert outcomes(caught.value.details["attempts"]) == expected


async def test_requests_narrowed_to_able_targets_are_not_kept_per_request() -> None:
    # A request with tools is routed over the targets that can call tools: a route made for that request
    # alone. Bound afresh each time, it must not pile up in the gateway as requests go by.
    class ToolProvider(ScriptedProvider):
        features = frozenset({"tools"})

    gw = gateway(ToolProvider("a", [result("done")]), ScriptedProvider("b", [result("x")]))
    tools = [Tool(name="lookup")]
    for _ in range(20):
        answer = await gw.generate(request(tools=tools))
        assert answer.provider == "a"
        assert outcomes(answer.attempts) == [("a", "big", "ok")]
    assert len(gw._targets) <= 1  # at most the router's own routes; none of the 20 narrowed ones


async def test_a_rules_attempt_timeout_bounds_each_try() -> None:
    primary = ScriptedProvider("a", [Hang()])
    backup = ScriptedProvider("b", [result("in time")])
    gw = gateway(primary, backup, live_timeout=30, route_extra={"attempt_timeout": 0.1})
    response = await gw.generate(request())
    assert outcomes(response.attempts) == [("a", "big", "upstream_timeout"), ("b", "small", "ok")]
    assert gw.plan(request()).attempt_timeout == 0.1
    assert gw.plan(request(), mode="mock").attempt_timeout is None  # a bare number is the live budget


async def test_structured_output_is_parsed_and_validated() -> None:
    primary = ScriptedProvider("a", [result('```json\n{"headline": "Aurora"}\n```')])
    response = await gateway(primary).generate(request(response_schema=SCHEMA))
    assert response.json == {"headline": "Aurora"}


async def test_invalid_output_gets_one_repair_with_the_validation_error() -> None:
    primary = ScriptedProvider("a", [result('{"title": "wrong key"}', tokens=(10, 4)),
                                     result('{"headline": "fixed"}', tokens=(30, 5))])
    response = await gateway(primary).generate(request(response_schema=SCHEMA))
    assert response.json == {"headline": "fixed"} and response.text == '{"headline": "fixed"}'
    assert outcomes(response.attempts) == [("a", "big", "invalid_output"), ("a", "big", "ok")]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 9)
    repair = primary.calls[1].messages
    assert repair[-2].role == "assistant" and repair[-2].content == '{"title": "wrong key"}'
    assert repair[-1].role == "user" and "headline" in repair[-1].content and "required" in repair[-1].content


async def test_still_invalid_after_repair_is_422_with_the_error() -> None:
    primary = ScriptedProvider("a", [result("not json at all")])
    with pytest.raises(InvalidOutput) as caught:
        await gateway(primary).generate(request(response_schema=SCHEMA))
    err = caught.value
    assert err.status == 422 and "not valid JSON" in err.message and err.details["path"] == "$"
    assert outcomes(err.details["attempts"]) == [("a", "big", "invalid_output")] * 2
    assert len(primary.calls) == 2


@pytest.mark.parametrize("schema", [{"type": "array"}, {"type": "object", "properties": {"a": {"type": "nope"}}}])
async def test_unusable_schema_is_a_400_before_any_call(schema: dict[str, Any]) -> None:
    primary = ScriptedProvider("a", [result("{}")])
    with pytest.raises(InvalidRequest):
        await gateway(primary).generate(request(response_schema=schema))
    assert primary.calls == []


async def test_route_options_are_defaults_the_client_overrides() -> None:
    primary = ScriptedProvider("a", [result("ok")])
    gw = gateway(
        primary, route_extra={"options": {"temperature": 0.1, "max_tokens": 100}, "extra": {"keep_alive": "1m"}}
    )
    await gw.generate(request(options=GenerateOptions(max_tokens=7)))
    sent = primary.calls[0]
    assert (sent.options.temperature, sent.options.max_tokens) == (0.1, 7)
    assert sent.extra == {"keep_alive": "1m"} and sent.role == "copywriter" and sent.task == "headline"


async def test_mock_mode_answers_from_the_mock_with_the_live_routes_model() -> None:
    primary = ScriptedProvider("a", [result("live")])
    gw = gateway(primary, mode="mock")
    response = await gw.generate(request(response_schema=SCHEMA, payload={"product_name": "Aurora"}))
    assert (response.mode, response.provider, response.model) == ("mock", "mock", "big")
    assert response.json is not None and "Aurora" in response.json["headline"]
    assert primary.calls == []
    live = await gw.generate(request(), mode="live")
    assert (live.mode, live.provider) == ("live", "a")


async def collect(gw: Gateway, req: GenerateRequest) -> tuple[list[str], GenerateResponse]:
    pieces: list[str] = []
    final = None
    async for item in gw.stream(req):
        if isinstance(item, StreamDelta):
            pieces.append(item.text)
        else:
            final = item
    assert final is not None
    return pieces, final


async def test_stream_pieces_then_one_response() -> None:
    primary = ScriptedProvider("a", [["Hel", "lo"]])
    pieces, final = await collect(gateway(primary), request())
    assert pieces == ["Hel", "lo"] and final.text == "Hello" and outcomes(final.attempts) == [("a", "big", "ok")]


async def test_stream_falls_back_while_nothing_was_sent() -> None:
    primary = ScriptedProvider("a", [[ProviderUnavailable("down")]])
    backup = ScriptedProvider("b", [["from ", "backup"]])
    pieces, final = await collect(gateway(primary, backup), request())
    assert pieces == ["from ", "backup"] and final.provider == "b"
    assert outcomes(final.attempts) == [("a", "big", "provider_unavailable"), ("b", "small", "ok")]


async def test_stream_does_not_fall_back_after_text_was_sent() -> None:
    primary = ScriptedProvider("a", [["partial", UpstreamError("line error")]])
    backup = ScriptedProvider("b", [["never"]])
    with pytest.raises(UpstreamError) as caught:
        await collect(gateway(primary, backup), request())
    assert backup.calls == [] and outcomes(caught.value.details["attempts"]) == [("a", "big", "upstream_error")]


async def test_stream_deadline() -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(gateway(ScriptedProvider("a", [Hang()]), live_timeout=0.2), request())
    assert caught.value.details["attempts"][0].latency_ms >= 100


async def test_stream_structured_output_is_validated_at_the_end() -> None:
    primary = ScriptedProvider("a", [['{"head', 'line": "A"}']])
    pieces, final = await collect(gateway(primary), request(response_schema=SCHEMA))
    assert final.json == {"headline": "A"}


async def test_route_errors_raise_before_streaming() -> None:
    gw = gateway(ScriptedProvider("a", [result("x")]))
    with pytest.raises(InvalidRequest):
        gw.stream(request(response_schema={"type": "string"}))


async def test_readiness_checks_the_providers_the_mode_uses() -> None:
    class Down(ScriptedProvider):
        async def health(self, *, deadline: float) -> None:
            raise ProviderUnavailable("refused")

    gw = gateway(Down("a", [result("x")]))
    assert await gw.check_ready(timeout=1) == {"a": "provider_unavailable: refused"}
    assert await gw.check_ready(timeout=1, mode="mock") == {}


async def test_deadline_covers_the_repair() -> None:
    primary = ScriptedProvider("a", [result('{"title": "wrong key"}'), Hang()])
    # The outer bound turns a regression (a repair outside the deadline hangs) into a failure, not a hung run.
    with pytest.raises(UpstreamTimeout) as caught:
        async with asyncio.timeout(10):
            await gateway(primary, live_timeout=0.2).generate(request(response_schema=SCHEMA))
    assert len(primary.calls) == 2  # the repair was sent, and the deadline cut it
    expected = [("a", "big", "invalid_output"), ("a", "big", "upstream_timeout")]
    assert outcomes(caught.value.details["attempts"]) == expected


async def test_stream_deadline_covers_the_repair() -> None:
    primary = ScriptedProvider("a", [['{"title": ', '"wrong key"}'], Hang()])
    with pytest.raises(UpstreamTimeout) as caught:
        async with asyncio.timeout(10):
            await collect(gateway(primary, live_timeout=0.2), request(response_schema=SCHEMA))
    assert len(primary.calls) == 2
    expected = [("a", "big", "invalid_output"), ("a", "big", "upstream_timeout")]
    assert outcomes(caught.value.details["attempts"]) == expected


async def test_a_stream_cut_by_its_deadline_times_its_attempt_once() -> None:
    # Regression: the cut-off try was ended twice (by the deadline, then as a failure), so its latency was
    # perf_counter() minus an already computed duration: 1,467,306 ms. It ran only until the deadline.
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(gateway(ScriptedProvider("a", [Hang()]), live_timeout=0.2), request())
    ran_ms = (loop.time() - started) * 1000
    [attempt] = caught.value.details["attempts"]
    assert (attempt.outcome, attempt.error_code) == ("upstream_timeout", "upstream_timeout")
    assert 0 < attempt.latency_ms <= ran_ms


async def test_a_stream_cut_after_its_first_piece_times_its_attempt_once() -> None:
    class Stalls(ScriptedProvider):
        async def stream(self, call: Any, *, deadline: float) -> Any:
            yield Delta("first ")
            await asyncio.Event().wait()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(gateway(Stalls("a", [result("x")]), live_timeout=0.2), request())
    [attempt] = caught.value.details["attempts"]
    assert attempt.outcome == "upstream_timeout"
    assert 0 < attempt.latency_ms <= (loop.time() - started) * 1000


async def test_a_stream_whose_primary_sends_nothing_falls_back_within_the_deadline() -> None:
    primary = ScriptedProvider("a", [Hang()])
    backup = ScriptedProvider("b", [["from ", "backup"]])
    pieces, final = await collect(gateway(primary, backup, live_timeout=0.4), request())
    assert pieces == ["from ", "backup"] and final.provider == "b"
    assert outcomes(final.attempts) == [("a", "big", "upstream_timeout"), ("b", "small", "ok")]


async def test_a_streams_budget_bounds_only_its_first_piece() -> None:
    # Once text flows the try may use the whole deadline: a fallback could not follow sent text anyway.
    class Slow(ScriptedProvider):
        async def stream(self, call: Any, *, deadline: float) -> Any:
            yield Delta("a")
            await asyncio.sleep(0.15)
            yield Delta("b")
            yield result("ab")

    backup = ScriptedProvider("b", [["never"]])
    gw = gateway(Slow("a", [result("x")]), backup, live_timeout=5, route_extra={"attempt_timeout": 0.05})
    pieces, final = await collect(gw, request())
    assert pieces == ["a", "b"] and final.provider == "a" and backup.calls == []


async def test_unknown_usage_stays_unknown_and_a_repair_does_not_make_it_zero() -> None:
    unknown = ProviderResult(text='{"title": "wrong"}', finish_reason="stop", input_tokens=None, output_tokens=None)
    primary = ScriptedProvider("a", [unknown, result('{"headline": "fixed"}', tokens=(30, 5))])
    response = await gateway(primary).generate(request(response_schema=SCHEMA))
    assert (response.usage.input_tokens, response.usage.output_tokens) == (None, None)
    partly = ProviderResult(text="hi", finish_reason="stop", input_tokens=12, output_tokens=None)
    response = await gateway(ScriptedProvider("a", [partly])).generate(request())
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, None)


async def test_the_repair_prompt_names_the_path_and_the_allowed_values() -> None:
    schema = {"type": "object", "properties": {"kind": {"enum": ["hero", "faq"]}, "n": {"type": "integer",
              "multipleOf": 7}}, "required": ["kind", "n"]}
    primary = ScriptedProvider("a", [result('{"kind": "intro", "n": 5}'), result('{"kind": "faq", "n": 14}')])
    response = await gateway(primary).generate(request(response_schema=schema))
    assert response.json == {"kind": "faq", "n": 14}
    prompt = primary.calls[1].messages[-1].content
    assert '$.kind: must be one of "hero", "faq" (got "intro")' in prompt
    assert "$.n: must be a multiple of 7 (got 5)" in prompt
