"""Client of the LLM Gateway: `generate` with a typed structured output."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Required, TypedDict, TypeVar, Unpack, overload

import jsonschema
import msgspec

from orchestrator.clients._gateway import GatewayClient
from shared_contracts.errors import InvalidOutput, UpstreamError
from shared_contracts.llm import GenerateOptions, GenerateRequest, GenerateResponse, Message

__all__ = ["Generated", "LLMGatewayClient", "RequestFields", "generate_request", "response_schema"]

T = TypeVar("T")

_GENERATE_PATH = "/api/v1/llm/generate"
_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(GenerateResponse)


@dataclass(frozen=True, slots=True)
class Generated(Generic[T]):
    """A validated structured answer, with the request sent and the gateway's full response (provider, model…)."""

    output: T
    response: GenerateResponse
    request: GenerateRequest
    request_id: str | None


def response_schema(output: type[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema sent as `response_schema`: a raw schema as given, or a msgspec type's schema.

    msgspec puts a Struct behind `{"$ref": "#/$defs/Name"}`; the root is inlined so providers that want
    an object at the top (Ollama `format`, OpenAI strict mode) accept it. Nested `$defs` stay.
    """
    if isinstance(output, Mapping):
        return copy.deepcopy(dict(output))
    schema = msgspec.json.schema(output)
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return schema
    defs = dict(schema.get("$defs", {}))
    root = dict(defs[ref.removeprefix("#/$defs/")])
    # A self-referencing root type would still need its $defs entry; bounded agent outputs never are.
    if not any(_refers_to(value, ref) for value in defs.values()):
        defs.pop(ref.removeprefix("#/$defs/"))
    if defs:
        root["$defs"] = defs
    return root


def _refers_to(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_refers_to(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, ref) for v in node)
    return False


class RequestFields(TypedDict, total=False):
    """A generate request's parts besides its output type; `role`, `task` and `messages` are required."""

    role: Required[str]
    task: Required[str]
    messages: Required[Sequence[Message]]
    payload: Mapping[str, Any] | None
    options: GenerateOptions | None
    quality: str | None
    metadata: Mapping[str, str] | None


def generate_request(*, output: type[Any] | Mapping[str, Any], **fields: Unpack[RequestFields]) -> GenerateRequest:
    """The request body `generate` sends, with `output`'s JSON Schema as `response_schema`."""
    return GenerateRequest(
        role=fields["role"],
        task=fields["task"],
        messages=list(fields["messages"]),
        payload=dict(fields.get("payload") or {}),
        response_schema=response_schema(output),
        options=fields.get("options"),
        quality=fields.get("quality"),
        metadata=dict(fields.get("metadata") or {}),
    )


class LLMGatewayClient(GatewayClient):
    """Talks to `POST /api/v1/llm/generate`; the answer's `json` is validated into the requested type."""

    gateway = "llm"
    replayable = True

    @overload
    async def generate(
        self,
        *,
        output: type[T],
        request_id: str | None = ...,
        deadline: float | None = ...,
        **fields: Unpack[RequestFields],
    ) -> Generated[T]: ...

    @overload
    async def generate(
        self,
        *,
        output: Mapping[str, Any],
        request_id: str | None = ...,
        deadline: float | None = ...,
        **fields: Unpack[RequestFields],
    ) -> Generated[dict[str, Any]]: ...

    async def generate(
        self,
        *,
        output: type[Any] | Mapping[str, Any],
        request_id: str | None = None,
        deadline: float | None = None,
        **fields: Unpack[RequestFields],
    ) -> Generated[Any]:
        """Ask the gateway for a structured answer of shape `output` (a msgspec type or a JSON Schema).

        `fields` are the request's `role`, `task`, `messages` and optional `payload`, `options`, `quality`,
        `metadata`. `deadline` (a `loop.time()`) bounds the call, retries included.
        """
        request = generate_request(output=output, **fields)
        return await self.send(request, output=output, request_id=request_id, deadline=deadline)

    async def send(
        self,
        request: GenerateRequest,
        *,
        output: type[Any] | Mapping[str, Any],
        request_id: str | None = None,
        deadline: float | None = None,
        scenario: str | None = None,
    ) -> Generated[Any]:
        """Send a built request; the answer's `json` is validated into `output`. `scenario`: X-Mock-Scenario."""
        reply = await self.call(
            "POST", _GENERATE_PATH, body=_encode(request), request_id=request_id, deadline=deadline, scenario=scenario
        )
        try:
            response = _decode_response.decode(reply.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(
                "llm gateway answered with an unreadable generate response",
                details={"gateway": "llm", "error": str(exc)},
            ) from exc
        value = _validated(response, output, request.response_schema or response_schema(output))
        echoed = reply.headers.get("x-request-id") or request_id
        return Generated(output=value, response=response, request=request, request_id=echoed)


def _validated(response: GenerateResponse, output: type[Any] | Mapping[str, Any], schema: dict[str, Any]) -> Any:
    where = {"gateway": "llm", "role": response.role, "task": response.task, "provider": response.provider}
    if response.json is None:
        raise InvalidOutput("llm gateway answered without structured json", details=where)
    if isinstance(output, Mapping):
        try:
            jsonschema.validate(response.json, schema)
        except jsonschema.ValidationError as exc:
            raise InvalidOutput(f"output does not match the schema: {exc.message}", details=where) from exc
        return response.json
    try:
        return msgspec.convert(response.json, type=output)
    except msgspec.ValidationError as exc:
        raise InvalidOutput(f"output does not match {output.__name__}: {exc}", details=where) from exc
