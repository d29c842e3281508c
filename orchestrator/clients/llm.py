"""Client of the LLM Gateway: `generate` with a typed structured output."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import jsonschema
import msgspec

from orchestrator.clients._transport import Sleep, Transport
from orchestrator.config import GatewayClientConfig
from shared_contracts.errors import InvalidOutput, UpstreamError
from shared_contracts.llm import GenerateOptions, GenerateRequest, GenerateResponse, Message

__all__ = ["Generated", "LLMGatewayClient", "generate_request", "response_schema"]

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


def generate_request(
    *,
    role: str,
    task: str,
    messages: Sequence[Message],
    output: type[Any] | Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    options: GenerateOptions | None = None,
    quality: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> GenerateRequest:
    """The request body `generate` sends, with `output`'s JSON Schema as `response_schema`."""
    return GenerateRequest(
        role=role,
        task=task,
        messages=list(messages),
        payload=dict(payload or {}),
        response_schema=response_schema(output),
        options=options,
        quality=quality,
        metadata=dict(metadata or {}),
    )


class LLMGatewayClient:
    """Talks to `POST /api/v1/llm/generate`; the answer's `json` is validated into the requested type."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def from_config(cls, config: GatewayClientConfig, *, sleep: Sleep = asyncio.sleep) -> LLMGatewayClient:
        """A client with its own transport built from a config section."""
        return cls(Transport("llm", config, sleep=sleep))

    async def start(self) -> None:
        """Open the pooled session."""
        await self.transport.start()

    async def close(self) -> None:
        """Close the pooled session."""
        await self.transport.close()

    @overload
    async def generate(
        self,
        *,
        role: str,
        task: str,
        messages: Sequence[Message],
        output: type[T],
        payload: Mapping[str, Any] | None = ...,
        options: GenerateOptions | None = ...,
        quality: str | None = ...,
        metadata: Mapping[str, str] | None = ...,
        request_id: str | None = ...,
    ) -> Generated[T]: ...

    @overload
    async def generate(
        self,
        *,
        role: str,
        task: str,
        messages: Sequence[Message],
        output: Mapping[str, Any],
        payload: Mapping[str, Any] | None = ...,
        options: GenerateOptions | None = ...,
        quality: str | None = ...,
        metadata: Mapping[str, str] | None = ...,
        request_id: str | None = ...,
    ) -> Generated[dict[str, Any]]: ...

    async def generate(
        self,
        *,
        role: str,
        task: str,
        messages: Sequence[Message],
        output: type[Any] | Mapping[str, Any],
        payload: Mapping[str, Any] | None = None,
        options: GenerateOptions | None = None,
        quality: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Generated[Any]:
        """Ask the gateway for a structured answer of shape `output` (a msgspec type or a JSON Schema)."""
        request = generate_request(
            role=role,
            task=task,
            messages=messages,
            output=output,
            payload=payload,
            options=options,
            quality=quality,
            metadata=metadata,
        )
        return await self.send(request, output=output, request_id=request_id)

    async def send(
        self, request: GenerateRequest, *, output: type[Any] | Mapping[str, Any], request_id: str | None = None
    ) -> Generated[Any]:
        """Send a built request; the answer's `json` is validated into `output`."""
        reply = await self.transport.call("POST", _GENERATE_PATH, body=_encode(request), request_id=request_id)
        try:
            response = _decode_response.decode(reply.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(
                "llm gateway answered with an unreadable generate response",
                details={"gateway": "llm", "error": str(exc)},
            ) from exc
        value = _validated(response, output, request.response_schema or response_schema(output))
        return Generated(output=value, response=response, request=request, request_id=reply.request_id)

    async def check_ready(self) -> None:
        """Raise a typed error unless the gateway's `/readyz` answers 2xx."""
        await self.transport.get_json_ok("/readyz")


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
