"""Failure scenarios QA asks a gateway for, one request at a time, in mock mode: `X-Mock-Scenario: <name>[=<value>]`.

The names are part of the contract: both gateways parse the header with `parse_scenario`, and the
orchestrator checks a run's `scenarios` against the same tables before it calls either gateway.

    parse_scenario("rate_limited=3", LLM_SCENARIOS)  →  Scenario(name="rate_limited", value=3.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidRequest

__all__ = [
    "LLM_SCENARIOS",
    "MEDIA_SCENARIOS",
    "SCENARIO_HEADER",
    "Scenario",
    "ScenarioRule",
    "parse_scenario",
]

SCENARIO_HEADER = "x-mock-scenario"
_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ScenarioRule:
    """What a scenario's value may be: none (`value` None), optional with a default, or required; its bounds."""

    value: str | None = None  # the unit, e.g. "ms" or "s"; None = the scenario takes no value
    default: float | None = None  # None with a unit = the value is required
    low: float = 0.0
    high: float = 0.0
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One parsed scenario: its name and its value (in the rule's unit), when it has one."""

    name: str
    value: float | None = None

    @property
    def header(self) -> str:
        """The header value that asks for this scenario again: `slow=1500`."""
        if self.value is None:
            return self.name
        shown = int(self.value) if self.value.is_integer() else self.value
        return f"{self.name}={shown}"


LLM_SCENARIOS: Mapping[str, ScenarioRule] = {
    "timeout": ScenarioRule(summary="every try hangs; 504 upstream_timeout at the call's deadline"),
    "slow": ScenarioRule(
        value="ms", high=600_000, summary="every answer takes <ms> milliseconds (a stream spreads them)"
    ),
    "unavailable": ScenarioRule(summary="every try is refused; 503 provider_unavailable after retries and fallbacks"),
    "rate_limited": ScenarioRule(
        value="s", default=1, high=3_600, summary="every try answers 429 with Retry-After <s> (default 1)"
    ),
    "upstream_error": ScenarioRule(summary="every try answers HTTP 500; 502 upstream_error"),
    "rejected": ScenarioRule(summary="the provider refuses the request; 502 upstream_rejected, no retry"),
    "invalid_output": ScenarioRule(summary="answers that are not valid JSON, twice; 422 after the repair"),
    "fallback": ScenarioRule(summary="the route's primary is refused; its first fallback answers"),
    "midstream_error": ScenarioRule(summary="the answer breaks off: a stream sends some deltas, then the error"),
}
"""The LLM Gateway's scenarios (native, native stream, `/v1/chat/completions`)."""

MEDIA_SCENARIOS: Mapping[str, ScenarioRule] = {
    "slow": ScenarioRule(
        value="ms", high=600_000, summary="the job runs <ms> milliseconds, reporting progress as it goes"
    ),
    "exec_error": ScenarioRule(summary="the job fails like a ComfyUI execution error; 502 upstream_error"),
    "unavailable": ScenarioRule(summary="the image backend cannot be reached; 503 provider_unavailable"),
    "timeout": ScenarioRule(summary="the job never finishes; 504 upstream_timeout at the job's deadline"),
}
"""The Media Gateway's scenarios (`image/generate`)."""


def _invalid(text: str, why: str, known: Mapping[str, ScenarioRule]) -> InvalidRequest:
    shown = text if len(text) <= _MAX_LENGTH else text[:_MAX_LENGTH] + "..."
    return InvalidRequest(
        f"X-Mock-Scenario {shown!r}: {why}",
        details={"header": SCENARIO_HEADER, "value": shown, "known": sorted(known)},
    )


def parse_scenario(text: str, known: Mapping[str, ScenarioRule]) -> Scenario:
    """`<name>[=<value>]` checked against `known`; anything else is an InvalidRequest naming the known names."""
    name, sep, raw = text.strip().partition("=")
    name = name.strip().lower()
    rule = known.get(name)
    if rule is None:
        raise _invalid(text, f"unknown scenario; known: {', '.join(sorted(known))}", known)
    if not sep:
        if rule.value is not None and rule.default is None:
            raise _invalid(text, f"needs a value: {name}=<{rule.value}>", known)
        return Scenario(name, None if rule.default is None else float(rule.default))
    if rule.value is None:
        raise _invalid(text, f"{name} takes no value", known)
    raw = raw.strip()
    digits = raw.replace(".", "", 1)
    if not raw or len(raw) > 16 or not digits.isascii() or not digits.isdigit():
        raise _invalid(text, f"the value must be a number of {rule.value}", known)
    value = float(raw)
    if not math.isfinite(value) or not rule.low <= value <= rule.high:
        raise _invalid(text, f"the value must be from {rule.low:g} to {rule.high:g} {rule.value}", known)
    return Scenario(name, value)
