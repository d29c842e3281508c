"""The Gateway's retries, request caps and deadline header with scripted providers; waits are recorded, not slept."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llm_gateway.config import parse_gateway_config
from llm_gateway.gateway import Gateway
from llm_gateway.guards import build_guards
from llm_gateway.limits import RequestLimits
from llm_gateway.providers.mock import MockProvider, MockSettings
from llm_gateway.routing import Router
from shared_contracts.errors import PayloadTooLarge, ProviderUnavailable, RateLimited, UpstreamError, UpstreamRejected
from shared_contracts.llm import GenerateRequest, GenerateResponse, Message, StreamDelta

from ._support import ScriptedProvider, result


class Sleeps:
    """Records each wait the gateway asks for, and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def build(
    primary: ScriptedProvider,
    backup: ScriptedProvider | None = None,
    *,
    retry: dict[str, Any] | None = None,
    rule_retry: dict[str, Any] | None = None,
    limits: RequestLimits | None = None,
    sleeps: Sleeps | None = None,
) -> Gateway:
    rule: dict[str, Any] = {"provider": primary.name, "model": "big"}
    if rule_retry is not None:
        rule["retry"] = rule_retry
    providers: dict[str, Any] = {primary.name: primary}
    if backup is not None:
        rule["fallbacks"] = [{"provider": backup.name, "model": "small"}]
        providers[backup.name] = backup
    config = parse_gateway_config({
        "mode": "live", "timeouts": {"live": 30},
        "providers": {name: {"class": "tests:Scripted"} for name in providers},
        "retry": retry or {"attempts": 1},
        "llm_routing": {"rules": [rule]},
    })
    providers["mock"] = MockProvider("mock", MockSettings(fixtures_dir="/nonexistent"))
    return Gateway(
        router=Router(config.llm_routing, config.timeouts), providers=providers, mode="live",
        retry=config.retry, limits=limits, guards=build_guards(config.resilience, providers),
        rng=random.Random(7), sleep=sleeps or Sleeps(),
    )


def request(**overrides: Any) -> GenerateRequest:
    fields: dict[str, Any] = {"role": "copywriter", "task": "headline",
                              "messages": [Message(role="user", content="Write a headline.")]}
    fields.update(overrides)
    return GenerateRequest(**fields)


def tried(attempts: Any) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in attempts]


async def test_retries_the_same_target_with_backoff_before_the_fallback() -> None:
    sleeps = Sleeps()
    primary = ScriptedProvider("a", [UpstreamError("boom"), UpstreamError("boom"), UpstreamError("boom")])
    backup = ScriptedProvider("b", [result("fine")])
    retry = {"attempts": 3, "backoff_s": 1, "backoff_max_s": 10}
    response = await build(primary, backup, retry=retry, sleeps=sleeps).generate(request())
    assert tried(response.attempts) == [("a", "upstream_error")] * 3 + [("b", "ok")]
    assert len(sleeps.waits) == 2 and 0 <= sleeps.waits[0] <= 1 and 0 <= sleeps.waits[1] <= 2


async def test_retry_after_sets_the_wait() -> None:
    sleeps = Sleeps()
    primary = ScriptedProvider("a", [RateLimited("slow", retry_after=2.5), result("ok now")])
    response = await build(primary, retry={"attempts": 2, "backoff_s": 0}, sleeps=sleeps).generate(request())
    assert response.text == "ok now"
    assert sleeps.waits == [2.5]


async def test_a_rules_own_retry_wins_over_the_default() -> None:
    primary = ScriptedProvider("a", [UpstreamError("boom"), result("second")])
    gateway = build(primary, retry={"attempts": 1}, rule_retry={"attempts": 2, "backoff_s": 0})
    assert (await gateway.generate(request())).text == "second"


async def test_request_errors_and_open_breakers_are_not_retried() -> None:
    primary = ScriptedProvider("a", [UpstreamRejected("no such model")])
    with pytest.raises(UpstreamRejected) as caught:
        await build(primary, retry={"attempts": 3, "backoff_s": 0}).generate(request())
    assert len(primary.calls) == 1
    assert tried(caught.value.details["attempts"]) == [("a", "upstream_rejected")]


async def test_a_retry_that_cannot_fit_the_deadline_is_not_waited_for() -> None:
    sleeps = Sleeps()
    primary = ScriptedProvider("a", [RateLimited("slow", retry_after=20)])
    gateway = build(primary, retry={"attempts": 3, "backoff_s": 0}, sleeps=sleeps)
    with pytest.raises(RateLimited):
        await gateway.generate(request(), timeout=5)
    assert sleeps.waits == [] and len(primary.calls) == 1


async def test_the_callers_timeout_shortens_the_plan_never_lengthens_it() -> None:
    gateway = build(ScriptedProvider("a", [result("x")]))
    assert gateway.plan(request(), timeout=2).timeout == 2
    assert gateway.plan(request(), timeout=999).timeout == 30


async def test_stream_retries_only_before_any_text() -> None:
    sleeps = Sleeps()
    primary = ScriptedProvider("a", [[UpstreamError("early")], ["Hel", "lo"]])
    gateway = build(primary, retry={"attempts": 2, "backoff_s": 0.1}, sleeps=sleeps)
    items = [item async for item in gateway.stream(request())]
    assert [i.text for i in items if isinstance(i, StreamDelta)] == ["Hel", "lo"]
    final = items[-1]
    assert isinstance(final, GenerateResponse)
    assert tried(final.attempts) == [("a", "upstream_error"), ("a", "ok")]
    assert len(sleeps.waits) == 1


async def test_breaker_counts_stream_failures_and_skips_the_provider() -> None:
    primary = ScriptedProvider("a", [ProviderUnavailable("down")])
    backup = ScriptedProvider("b", [result("backup")])
    gateway = build(primary, backup)
    for _ in range(5):
        await gateway.generate(request())
    assert gateway.guard_status()["a"].breaker is not None
    assert gateway.guard_status()["a"].breaker.state == "open"  # type: ignore[union-attr]
    items = [item async for item in gateway.stream(request())]
    final = items[-1]
    assert isinstance(final, GenerateResponse)
    assert [(a.outcome, a.error_code) for a in final.attempts] == [
        ("circuit_open", "provider_unavailable"),
        ("ok", None),
    ]
    assert len(primary.calls) == 5


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([Message(role="user", content="x")] * 4, "messages"),
        ([Message(role="user", content="x" * 11)], "messages[].content"),
    ],
)
async def test_message_count_and_character_caps_are_413(messages: list[Message], field: str) -> None:
    gateway = build(ScriptedProvider("a", [result("x")]), limits=RequestLimits(max_messages=3, max_chars=10))
    with pytest.raises(PayloadTooLarge) as caught:
        await gateway.generate(request(messages=messages))
    assert caught.value.details["field"] == field
