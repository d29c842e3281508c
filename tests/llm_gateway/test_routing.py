"""The router: ordered rules, first match wins, lists or strings, quality, default, no route."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.config import ModeTimeouts, parse_gateway_config
from llm_gateway.routing import Router
from shared_contracts.errors import NoRoute


def router(rules: list[dict[str, Any]], default: dict[str, Any] | None = None) -> Router:
    routing: dict[str, Any] = {"rules": rules}
    if default is not None:
        routing["default"] = default
    config = parse_gateway_config({"providers": {"p": {"class": "x:Y"}, "q": {"class": "x:Y"}}, "llm_routing": routing})
    return Router(config.llm_routing, config.timeouts)


def test_first_matching_rule_wins() -> None:
    r = router([
        {"role": "copywriter", "task": "headline", "provider": "p", "model": "small"},
        {"role": ["copywriter", "strategist"], "provider": "p", "model": "big"},
        {"provider": "q", "model": "catch-all"},
    ])
    assert r.resolve("copywriter", "headline").targets[0].model == "small"
    assert r.resolve("copywriter", "body").targets[0].model == "big"
    assert r.resolve("strategist", "plan").targets[0].model == "big"
    assert r.resolve("brand", "x").targets[0].provider == "q"


def test_task_lists_and_quality() -> None:
    r = router([
        {"task": ["a", "b"], "quality": "final", "provider": "p", "model": "final-model"},
        {"task": ["a", "b"], "provider": "p", "model": "draft-model"},
    ])
    assert r.resolve("any", "a", "final").targets[0].model == "final-model"
    assert r.resolve("any", "b", "draft").targets[0].model == "draft-model"
    assert r.resolve("any", "b").targets[0].model == "draft-model"


def test_default_route_and_no_route() -> None:
    with_default = router([{"role": "x", "provider": "p", "model": "m"}], default={"provider": "q", "model": "d"})
    assert with_default.resolve("other", "t").name == "default"
    without = router([{"role": "x", "provider": "p", "model": "m"}])
    with pytest.raises(NoRoute) as caught:
        without.resolve("other", "t")
    assert caught.value.status == 404 and caught.value.details["role"] == "other"


def test_fallbacks_follow_the_primary_in_order() -> None:
    r = router([{"provider": "p", "model": "a", "extra": {"keep_alive": "1m"}, "options": {"temperature": 0.3},
                 "fallbacks": [{"provider": "q", "model": "b"}, {"provider": "p", "model": "c"}]}])
    route = r.resolve("x", "y")
    assert [(t.provider, t.model) for t in route.targets] == [("p", "a"), ("q", "b"), ("p", "c")]
    assert route.targets[0].extra == {"keep_alive": "1m"}
    assert route.targets[0].options is not None and route.targets[0].options.temperature == 0.3


def test_timeouts_default_per_mode_and_rule_overrides() -> None:
    r = router([
        {"role": "slow", "provider": "p", "model": "m", "timeout": 300},
        {"role": "both", "provider": "p", "model": "m", "timeout": {"mock": 1, "live": 20}},
        {"provider": "p", "model": "m"},
    ])
    assert (r.resolve("slow", "t").timeout("live"), r.resolve("slow", "t").timeout("mock")) == (300, 5)
    assert (r.resolve("both", "t").timeout("live"), r.resolve("both", "t").timeout("mock")) == (20, 1)
    assert r.resolve("x", "t").timeouts == ModeTimeouts(mock=5, live=180)


def test_describe_lists_rules_in_order_without_secrets() -> None:
    r = router([{"name": "plan", "role": ["strategist", "copywriter"], "provider": "p", "model": "m",
                 "fallbacks": [{"provider": "q", "model": "n"}]}], default={"provider": "q", "model": "d"})
    rules, default = r.describe()
    assert rules[0].name == "plan" and rules[0].role == ["strategist", "copywriter"] and rules[0].task is None
    assert [(f.provider, f.model) for f in rules[0].fallbacks] == [("q", "n")]
    assert default is not None and default.model == "d"
    assert r.provider_names() == {"p", "q"}
