"""X-Mock-Scenario on the LLM Gateway: every scenario on every surface (native, native stream, /v1, /v1 stream),
refused outside mock mode, and each one shaped like the live fault it imitates (status, code, attempts,
Retry-After, breaker, metrics)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from llm_gateway.app import create_app
from shared_contracts.scenarios import LLM_SCENARIOS
from tests.fakes.asgi import AsgiClient, AsgiResponse, sse_events
from tests.fakes.ollama import FakeOllama, Fault

from ._support import make_config

MESSAGES = [{"role": "user", "content": "Write the headline for the Aurora desk lamp."}]
SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["headline", "bullets"],
}
# The copywriter's route has a fallback (qwen2.5:14b, then qwen2.5:7b); the brand's has none.
NATIVE = {"role": "copywriter", "task": "headline", "messages": MESSAGES}
CHAT = {"model": "role:copywriter/task:headline", "messages": MESSAGES}
SURFACES = ("native", "native-stream", "openai", "openai-stream")
PRIMARY, FALLBACK = "qwen2.5:14b", "qwen2.5:7b"


@dataclass
class Outcome:
    """What one request got, whatever the surface: HTTP status, error code, text pieces, attempts."""

    status: int
    headers: dict[str, str]
    code: str | None = None
    error: dict[str, Any] = field(default_factory=dict)
    pieces: list[str] = field(default_factory=list)
    text: str = ""
    attempts: list[dict[str, Any]] | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[tuple[str, str]]:
        assert self.attempts is not None
        return [(a["model"], a["outcome"]) for a in self.attempts]


def request_of(surface: str, *, schema: bool = False, body: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The path and body of one request on `surface`."""
    if surface.startswith("native"):
        native = {**NATIVE, **(body or {}), **({"response_schema": SCHEMA} if schema else {})}
        return ("/api/v1/llm/generate/stream" if surface == "native-stream" else "/api/v1/llm/generate"), native
    chat: dict[str, Any] = {**CHAT, **(body or {})}
    if schema:
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "headline", "schema": SCHEMA}}
    if surface == "openai-stream":
        chat["stream"] = True
    return "/v1/chat/completions", chat


def read(surface: str, reply: AsgiResponse) -> Outcome:
    """The outcome of `reply`: an envelope, an SSE stream (native) or a chunk stream (/v1)."""
    out = Outcome(status=reply.status, headers=reply.headers)
    streamed = reply.headers.get("content-type", "").startswith("text/event-stream")
    if not streamed:
        doc = reply.json()
        out.body = doc
        if "error" in doc:
            out.error, out.code = doc["error"], doc["error"].get("code")
            out.attempts = doc["error"].get("details", {}).get("attempts")
        elif surface.startswith("native"):
            out.text, out.attempts = doc["text"], doc["attempts"]
        else:
            out.text = doc["choices"][0]["message"]["content"]
        return out
    if surface == "native-stream":
        for name, data in sse_events(reply.body):
            if name == "delta":
                out.pieces.append(data["text"])
            elif name == "done":
                out.body, out.attempts, out.text = data, data["attempts"], data["text"]
            elif name == "error":
                out.error, out.code = data["error"], data["error"]["code"]
                out.attempts = data["error"].get("details", {}).get("attempts")
        return out
    for line in reply.body.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        data = msgspec.json.decode(line[len("data: ") :])
        if "error" in data:
            out.error, out.code = data["error"], data["error"].get("code")
            continue
        out.body = data
        for choice in data.get("choices", []):
            if choice["delta"].get("content"):
                out.pieces.append(choice["delta"]["content"])
    out.text = "".join(out.pieces)
    return out


async def ask(
    app: AsgiClient, surface: str, scenario: str | None = None, *, schema: bool = False,
    timeout: str | None = None, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None,
) -> Outcome:
    path, payload = request_of(surface, schema=schema, body=body)
    sent = dict(headers or {})
    if scenario is not None:
        sent["x-mock-scenario"] = scenario
    if timeout is not None:
        sent["x-request-timeout"] = timeout
    return read(surface, await app.post(path, json=payload, headers=sent))


@pytest.fixture
async def app() -> AsyncIterator[AsgiClient]:
    async with AsgiClient(create_app(make_config(mode="mock"))) as client:
        yield client


# scenario -> (HTTP status and native error code of a complete answer, attempts as (model, outcome) natively).
# /v1 answers the same status with its own error shape (its codes are compared with live's further down).
FAILURES: dict[str, tuple[int, str, list[tuple[str, str]]]] = {
    "timeout": (504, "upstream_timeout", [(PRIMARY, "upstream_timeout"), (FALLBACK, "upstream_timeout")]),
    "unavailable": (
        503, "provider_unavailable", [(PRIMARY, "provider_unavailable"), (FALLBACK, "provider_unavailable")]
    ),
    "rate_limited": (429, "rate_limited", [(PRIMARY, "rate_limited"), (FALLBACK, "rate_limited")]),
    "upstream_error": (502, "upstream_error", [(PRIMARY, "upstream_error"), (FALLBACK, "upstream_error")]),
    "rejected": (502, "upstream_rejected", [(PRIMARY, "upstream_rejected")]),
    "invalid_output": (422, "invalid_output", [(PRIMARY, "invalid_output"), (PRIMARY, "invalid_output")]),
    "midstream_error": (502, "upstream_error", [(PRIMARY, "upstream_error"), (FALLBACK, "upstream_error")]),
}


def test_every_scenario_of_the_contract_is_tested() -> None:
    assert set(LLM_SCENARIOS) == {*FAILURES, "fallback", "slow"}


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("scenario", sorted(FAILURES))
async def test_each_failure_on_each_surface(app: AsgiClient, surface: str, scenario: str) -> None:
    status, code, attempts = FAILURES[scenario]
    timeout = "0.4" if scenario == "timeout" else None
    got = await ask(app, surface, scenario, schema=scenario == "invalid_output", timeout=timeout)
    assert got.headers["x-generator-mode"] == "mock"
    assert got.error["message"], got
    if surface.startswith("native"):
        assert got.code == code, got
    if scenario not in ("timeout", "invalid_output"):
        # The provider's own error names the scenario; the gateway's (its deadline, its schema check) cannot tell.
        assert "X-Mock-Scenario" in got.error["message"]
    if surface in ("native", "openai"):
        assert got.status == status
        if scenario == "rate_limited":
            assert got.headers["retry-after"] == "1"
    else:
        # A stream's status line may already be out when the fault comes (then the error is an event).
        assert got.status in (200, status)
    if surface.startswith("native") and not (surface == "native-stream" and scenario == "midstream_error"):
        assert got.outcomes == attempts
    if scenario == "midstream_error" and surface.endswith("stream"):
        # Some of the answer went out before it broke off, and no retry could follow.
        assert got.pieces
        if surface == "native-stream":
            assert got.outcomes == [(PRIMARY, "upstream_error")]
    if scenario == "timeout" and surface.startswith("native"):
        assert got.error["details"]["timeout_s"] == 0.4


@pytest.mark.parametrize("surface", SURFACES)
async def test_fallback_the_primary_is_refused_and_the_fallback_answers(app: AsgiClient, surface: str) -> None:
    plain = await ask(app, surface)
    got = await ask(app, surface, "fallback")
    assert got.status == 200 and got.code is None
    assert got.text == plain.text  # the mock answers the fallback's try as it answers any
    assert got.headers["x-generator-mode"] == "mock"
    if surface.startswith("native"):
        assert got.outcomes == [(PRIMARY, "provider_unavailable"), (FALLBACK, "ok")]
        assert got.attempts is not None and got.attempts[0]["error_code"] == "provider_unavailable"
        assert got.body["model"] == FALLBACK and got.body["provider"] == "mock"
    else:
        assert got.body["model"] in (FALLBACK, CHAT["model"])


@pytest.mark.parametrize("surface", SURFACES)
async def test_slow_answers_the_same_text_after_the_wait(app: AsgiClient, surface: str) -> None:
    plain = await ask(app, surface)
    got = await ask(app, surface, "slow=250")
    assert got.status == 200 and got.text == plain.text
    if surface.startswith("native"):
        assert got.outcomes == [(PRIMARY, "ok")]
        assert got.attempts is not None and got.attempts[0]["latency_ms"] >= 200
    if surface.endswith("stream"):
        assert len(got.pieces) == len(plain.pieces) > 1


@pytest.mark.parametrize("surface", SURFACES)
async def test_slow_past_the_deadline_times_out(app: AsgiClient, surface: str) -> None:
    got = await ask(app, surface, "slow=5000", timeout="0.3")
    assert got.error["message"]
    if surface.startswith("native"):
        assert got.code == "upstream_timeout"
    if surface in ("native", "openai"):
        assert got.status == 504


@pytest.mark.parametrize("surface", SURFACES)
async def test_rate_limited_takes_its_retry_after_and_retries_as_live(surface: str) -> None:
    config = make_config(mode="mock", retry={"attempts": 2, "backoff_s": 0.01, "retry_after_max_s": 30})
    async with AsgiClient(create_app(config)) as app:
        quick = await ask(app, surface, "rate_limited=0.01")
        later = await ask(app, surface, "rate_limited=120")
    assert quick.error and later.error
    if surface.startswith("native"):
        assert quick.code == later.code == "rate_limited"
        # Within retry_after_max_s each target is tried again after the wait; beyond it the fallback comes at once.
        assert [o for _, o in quick.outcomes] == ["rate_limited"] * 4
        assert [o for _, o in later.outcomes] == ["rate_limited"] * 2
    if surface in ("native", "openai"):
        assert later.headers["retry-after"] == "120"
        assert quick.headers["retry-after"] == "1"  # whole seconds, rounded up


@pytest.mark.parametrize("surface", ["native-stream", "openai-stream"])
async def test_midstream_error_sends_part_of_the_answer_first(app: AsgiClient, surface: str) -> None:
    plain = await ask(app, surface)
    got = await ask(app, surface, "midstream_error")
    assert 0 < len(got.pieces) < len(plain.pieces)
    assert plain.text.startswith("".join(got.pieces))
    assert got.error["message"].endswith("(X-Mock-Scenario: midstream_error)")


async def test_invalid_output_shows_the_first_answer_and_the_repair(app: AsgiClient) -> None:
    got = await ask(app, "native", "invalid_output", schema=True)
    assert got.status == 422 and got.code == "invalid_output"
    assert got.outcomes == [(PRIMARY, "invalid_output"), (PRIMARY, "invalid_output")]
    assert got.error["details"]["path"] == "$"


@pytest.mark.parametrize("surface", SURFACES)
async def test_scenarios_that_cannot_apply_are_refused(app: AsgiClient, surface: str) -> None:
    no_fallback = await ask(app, surface, "fallback", body={"role": "brand"} if surface.startswith("native") else {
        "model": "role:brand/task:headline"})
    no_schema = await ask(app, surface, "invalid_output")
    for got in (no_fallback, no_schema):
        assert got.status == 400 and got.headers["x-generator-mode"] == "mock"
        assert "X-Mock-Scenario" in got.error["message"]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("value", ["bogus", "slow", "slow=fast", "slow=-5", "rate_limited=99999", "timeout=3", ""])
async def test_a_malformed_scenario_is_a_400_naming_the_header(app: AsgiClient, surface: str, value: str) -> None:
    got = await ask(app, surface, value)
    assert got.status == 400
    assert "X-Mock-Scenario" in got.error["message"]
    if surface.startswith("native"):
        assert got.error["details"]["header"] == "x-mock-scenario"
        assert got.error["details"]["known"] == sorted(LLM_SCENARIOS)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server


@pytest.mark.parametrize("surface", SURFACES)
async def test_live_mode_refuses_the_header_before_any_upstream_call(fake: FakeOllama, surface: str) -> None:
    async with AsgiClient(create_app(make_config(fake.base_url, mode="live"))) as app:
        got = await ask(app, surface, "timeout")
        fine = await ask(app, surface)
    assert got.status == 400 and got.headers["x-generator-mode"] == "live"
    assert "only in mock mode" in got.error["message"]
    assert fine.status == 200
    assert len(fake.chat_requests) == 1  # only the request without a scenario reached the model


async def test_a_request_switched_to_live_by_its_header_refuses_it_too(fake: FakeOllama) -> None:
    config = make_config(fake.base_url, mode="mock", allow_mode_header=True)
    async with AsgiClient(create_app(config)) as app:
        got = await ask(app, "native", "unavailable", headers={"x-generator-mode": "live"})
        mocked = await ask(app, "native", "unavailable", headers={"x-generator-mode": "mock"})
    assert got.status == 400 and got.headers["x-generator-mode"] == "live"
    assert mocked.status == 503 and mocked.headers["x-generator-mode"] == "mock"
    assert fake.chat_requests == []


# Each scenario next to the live fault it imitates, produced by the fake Ollama (or a closed port).
LIVE_FAULTS: dict[str, Fault | None] = {
    "upstream_error": Fault(status=500, error="llama runner process has terminated"),
    "rate_limited": Fault(status=429, error="too many requests", retry_after="1"),
    "rejected": Fault(status=400, error="invalid options"),
    "timeout": Fault(delay=5.0),
    "unavailable": None,
}


@pytest.mark.parametrize("surface", ["native", "openai"])
@pytest.mark.parametrize("scenario", sorted(LIVE_FAULTS))
async def test_each_scenario_answers_as_its_live_fault(fake: FakeOllama, surface: str, scenario: str) -> None:
    fault = LIVE_FAULTS[scenario]
    fake.fault = fault
    base = fake.base_url if fault is not None else "http://127.0.0.1:9"  # nothing listens on port 9
    timeout = "0.4" if scenario == "timeout" else None
    async with AsgiClient(create_app(make_config(base, mode="live"))) as app:
        live = await ask(app, surface, timeout=timeout)
    async with AsgiClient(create_app(make_config(mode="mock"))) as app:
        mock = await ask(app, surface, scenario, timeout=timeout)
    assert (mock.status, mock.code) == (live.status, live.code)
    assert mock.headers.get("retry-after") == live.headers.get("retry-after")
    if surface == "native":
        assert mock.outcomes == live.outcomes
        # The mock's details are the live error's (a provider may add its own, e.g. Ollama's upstream_error).
        assert set(mock.error["details"]) <= set(live.error["details"])


def _breaker_config(**extra: Any) -> Any:
    breaker = {"breaker": {"failure_threshold": 2, "open_seconds": 60}}
    return make_config(mode="mock", resilience={"providers": {"mock": breaker}}, **extra)


async def test_failures_live_would_count_open_a_breaker_on_the_mock() -> None:
    async with AsgiClient(create_app(_breaker_config())) as app:
        await ask(app, "native", "unavailable")  # two tries (primary, fallback) fail: the threshold
        skipped = await ask(app, "native")
        ready = (await app.get("/readyz")).json()
    assert skipped.status == 503 and skipped.code == "provider_unavailable"
    assert skipped.outcomes == [(PRIMARY, "circuit_open"), (FALLBACK, "circuit_open")]
    assert ready["providers"]["mock"]["breaker"]["state"] == "open"


@pytest.mark.parametrize("scenario", ["rejected", "rate_limited=120", "invalid_output", "fallback"])
async def test_failures_live_would_not_count_leave_the_breaker_closed(scenario: str) -> None:
    async with AsgiClient(create_app(_breaker_config())) as app:
        for _ in range(3):
            await ask(app, "native", scenario, schema=scenario == "invalid_output")
        after = await ask(app, "native")
    assert after.status == 200
    if scenario == "fallback":
        # Each request: the primary fails once, the fallback succeeds, so the count starts again.
        assert after.outcomes == [(PRIMARY, "ok")]


async def test_scenarios_never_touch_a_live_providers_breaker(fake: FakeOllama) -> None:
    config = make_config(fake.base_url, mode="mock", allow_mode_header=True,
                         resilience={"default": {"breaker": {"failure_threshold": 1, "open_seconds": 60}}})
    async with AsgiClient(create_app(config)) as app:
        for _ in range(3):
            await ask(app, "native", "unavailable")
        live = await ask(app, "native", headers={"x-generator-mode": "live"})
    assert live.status == 200 and live.outcomes == [(PRIMARY, "ok")]


async def test_scenario_attempts_are_counted_in_the_metrics(app: AsgiClient) -> None:
    await ask(app, "native", "fallback")
    metrics = (await app.get("/metrics")).body.decode()
    assert f'model="{PRIMARY}",outcome="provider_unavailable",upstream="mock"' in metrics
    assert f'model="{FALLBACK}",outcome="ok",upstream="mock"' in metrics
    assert 'outcome="ok"' in metrics


@pytest.mark.parametrize("surface", SURFACES)
async def test_every_answer_says_its_mode(app: AsgiClient, surface: str) -> None:
    ok = await ask(app, surface)
    refused = await ask(app, surface, body={"role": ""} if surface.startswith("native") else {"model": ""})
    assert ok.headers["x-generator-mode"] == refused.headers["x-generator-mode"] == "mock"
    if surface == "openai":
        assert ok.body["system_fingerprint"] == "fp_mock"
    if surface == "openai-stream":
        assert ok.body["system_fingerprint"] == "fp_mock"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/llm/routes", "/v1/models", "/metrics", "/nope"])
async def test_other_endpoints_say_the_mode_too(fake: FakeOllama, path: str) -> None:
    async with AsgiClient(create_app(make_config(fake.base_url, mode="live"))) as live:
        reply = await live.get(path)
    assert reply.headers["x-generator-mode"] == "live"


async def test_a_refused_key_says_the_mode() -> None:
    config = make_config(mode="mock", auth={"api_keys": "sk-test-0123456789"})
    async with AsgiClient(create_app(config)) as app:
        refused = await app.post("/api/v1/llm/generate", json=NATIVE)
    assert refused.status == 401 and refused.headers["x-generator-mode"] == "mock"
