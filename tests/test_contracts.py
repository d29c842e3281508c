"""shared_contracts: every public name is exported, and the wire shapes are exactly what the issue fixes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import msgspec
import pytest

import shared_contracts
from shared_contracts import errors, llm
from shared_contracts.llm import Attempt, GenerateRequest, GenerateResponse, Usage

MODULES = [
    importlib.import_module(f"shared_contracts.{m.name}") for m in pkgutil.iter_modules(shared_contracts.__path__)
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    defined = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__  # type: ignore[attr-defined]
    }
    assert defined <= exported, f"public but not exported: {sorted(defined - exported)}"
    assert all(hasattr(module, name) for name in exported)


def test_package_exports_resolve() -> None:
    assert all(hasattr(shared_contracts, name) for name in shared_contracts.__all__)
    assert len(shared_contracts.__all__) == len(set(shared_contracts.__all__))


def fields(cls: type[msgspec.Struct]) -> set[str]:
    return set(cls.__struct_fields__)


def test_generate_request_fields() -> None:
    assert fields(GenerateRequest) == {"role", "task", "messages", "payload", "response_schema", "options", "quality",
                                       "metadata", "tools", "tool_choice", "parallel_tool_calls"}
    assert fields(llm.GenerateOptions) == {"temperature", "max_tokens", "top_p", "seed", "stop", "logprobs",
                                           "top_logprobs", "logit_bias"}
    assert fields(llm.Message) == {"role", "content", "tool_calls", "tool_call_id", "name"}


def test_generate_response_fields_are_always_present() -> None:
    assert fields(GenerateResponse) == {"id", "role", "task", "mode", "provider", "model", "text", "json",
                                        "finish_reason", "usage", "latency_ms", "attempts", "tool_calls", "logprobs"}
    assert fields(Usage) == {"input_tokens", "output_tokens"}
    assert fields(Attempt) == {"provider", "model", "outcome", "latency_ms", "error_code"}
    response = GenerateResponse(
        id="1",
        role="r",
        task="t",
        mode="mock",
        provider="mock",
        model="m",
        text="x",
        json=None,
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=1),
        latency_ms=1.0,
        attempts=[Attempt(provider="mock", model="m", outcome="ok", latency_ms=1.0)],
    )
    decoded = msgspec.json.decode(msgspec.json.encode(response))
    assert decoded["json"] is None and decoded["attempts"][0]["error_code"] is None
    assert decoded["tool_calls"] == [] and decoded["logprobs"] is None


def test_requests_reject_unknown_fields_by_name() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `tempreature`"):
        msgspec.json.decode(b'{"role":"r","task":"t","messages":[{"role":"user","content":"x"}],"tempreature":1}',
                            type=GenerateRequest)


@pytest.mark.parametrize(
    ("code", "status"),
    [("invalid_request", 400), ("unauthorized", 401), ("no_route", 404), ("payload_too_large", 413),
     ("invalid_output", 422), ("rate_limited", 429), ("upstream_error", 502), ("provider_unavailable", 503),
     ("upstream_timeout", 504)],
)
def test_error_codes_and_statuses(code: str, status: int) -> None:
    assert errors.ERROR_CODES[code].status == status


def test_envelope_round_trip_rebuilds_the_typed_error() -> None:
    err = errors.UpstreamTimeout("slow", details={"timeout_s": 5})
    raw = msgspec.json.encode(errors.ErrorEnvelope(error=err.to_body("rid")))
    assert msgspec.json.decode(raw) == {"error": {"code": "upstream_timeout", "message": "slow",
                                                  "details": {"timeout_s": 5}, "request_id": "rid"}}
    envelope = errors.decode_envelope(raw)
    assert envelope is not None
    again = errors.error_from_body(envelope.error)
    assert type(again) is errors.UpstreamTimeout and again.details == {"timeout_s": 5}


def test_routes_listing_types_are_exported() -> None:
    for name in ("RouteInfo", "RouteTarget", "RouteTimeouts", "RoutingTable"):
        assert name in llm.__all__
