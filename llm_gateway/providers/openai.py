"""OpenAI Chat Completions, `POST {base_url}/v1/chat/completions`; also any OpenAI-compatible server.

vLLM, the llama.cpp server, LM Studio and Ollama's `/v1` speak the same protocol: point `base_url` at them
(the server's root or its `/v1` URL, as SDK users write it: both work) and set `key_required: false` when they
take no key. Readiness is `GET /v1/models`; a 404 there says the base URL is wrong, in so many words.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import msgspec

from service_common.providers import KeyedProvider, KeyedSettings
from service_common.providers.bodies import merge_extra
from service_common.providers.cloud_errors import openai_error
from shared_contracts.errors import InvalidOutput, UpstreamError, UpstreamRejected
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, TokenLogprob, ToolCall, TopLogprob

from .base import Delta, EmbedCall, EmbedResult, Provider, ProviderCall, ProviderResult, ProviderSettings

__all__ = ["OpenAIProvider", "OpenAISettings", "strict_compatible"]


class OpenAISettings(KeyedSettings, kw_only=True, frozen=True):
    """YAML section of an OpenAI (or OpenAI-compatible) provider."""

    base_url: str = "https://api.openai.com"
    api_key_env: str = "OPENAI_API_KEY"
    # Reasoning models take `max_completion_tokens` and reject `max_tokens`.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # How `response_schema` is sent: OpenAI's `json_schema`; `json_object` (any JSON, for servers without
    # JSON Schema support); or `json_object_schema`, `{"type": "json_object", "schema": ...}`, for servers that
    # take the schema only that way (llama-cpp-python's own server). The gateway validates the answer in each case.
    structured_output: Literal["json_schema", "json_object", "json_object_schema"] = "json_schema"
    # Strict mode rejects schemas outside its subset with a 400; `auto` asks for it only when the schema fits.
    strict_schema: bool | Literal["auto"] = "auto"
    # Extra request headers, e.g. `OpenAI-Organization`/`OpenAI-Project` or a proxy's routing header.
    headers: dict[str, str] = {}


class _Usage(msgspec.Struct):
    # Absent counts stay unknown (None), never 0.
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function = msgspec.field(default_factory=_Function)


class _Top(msgspec.Struct):
    token: str
    logprob: float


class _Token(msgspec.Struct):
    token: str
    logprob: float
    top_logprobs: list[_Top] = []


class _Logprobs(msgspec.Struct):
    content: list[_Token] | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    usage: _Usage | None = None


class _ChunkDelta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChunkChoice(msgspec.Struct):
    delta: _ChunkDelta = msgspec.field(default_factory=_ChunkDelta)
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] = []
    usage: _Usage | None = None
    error: dict[str, Any] | None = None


class _Embedding(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _Embeddings(msgspec.Struct):
    data: list[_Embedding]
    usage: _Usage | None = None


_decode_completion = msgspec.json.Decoder(_Completion)
_decode_embeddings = msgspec.json.Decoder(_Embeddings)
_decode_chunk = msgspec.json.Decoder(_Chunk)
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")
# The JSON Schema keywords OpenAI's strict mode accepts; anything else (default, minLength, allOf…) is a 400.
_STRICT_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const",
    "$ref", "$defs", "definitions", "title", "description",
    "pattern", "format", "multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems",
})  # fmt: skip
_SHAPED = frozenset({"type", "$ref", "anyOf"})
# OpenAI's finish reasons onto ours.
_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls",
           "function_call": "tool_calls"}
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


class OpenAIProvider(KeyedProvider, Provider):
    """Chat Completions with JSON Schema structured output and SSE streaming with usage."""

    Settings = OpenAISettings
    settings: OpenAISettings
    error_mapper = staticmethod(openai_error)
    features = frozenset({"tools", "logprobs", "logit_bias", "embeddings"})
    bounds_itself = True  # one HttpClient call per try

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        # `http://host:8080` and `...:8080/v1` name the same server; SDKs and local servers' docs write the latter.
        self.api_url = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"

    def auth_headers(self, key: str) -> Mapping[str, str]:
        auth = {"authorization": f"Bearer {key}"} if key else {}
        return {**self.settings.headers, **auth}

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        raw = await self.client.post_json(self._url, self._body(call, stream=False), deadline=deadline)
        try:
            reply = _decode_completion.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        if not reply.choices:
            raise UpstreamError(f"{self.name}: answer without choices", details={"provider": self.name})
        choice = reply.choices[0]
        if choice.message.refusal:
            raise self._refused(choice.message.refusal)
        usage = reply.usage or _Usage()
        calls = _calls(choice.message.tool_calls or [], self.name)
        return ProviderResult(
            text=choice.message.content or "",
            finish_reason="tool_calls" if calls else _FINISH.get(choice.finish_reason or "stop", "stop"),
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            tool_calls=calls,
            logprobs=_logprobs(choice.logprobs.content if choice.logprobs else None),
        )

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        pieces: list[str] = []
        refusal: list[str] = []
        finish: str | None = None
        usage = _Usage()
        done = False
        calls: dict[int, _ToolCall] = {}
        tokens: list[_Token] | None = None
        async for event in self.client.post_sse(self._url, self._body(call, stream=True), deadline=deadline):
            if event.data == "[DONE]":
                done = True
                break
            chunk = self._chunk(event.data)
            if chunk.usage is not None:
                # With include_usage the last chunk before [DONE] has `choices: []` and the totals.
                usage = chunk.usage
            for choice in chunk.choices[:1]:
                if choice.delta.refusal:
                    refusal.append(choice.delta.refusal)
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                    yield Delta(choice.delta.content)
                for piece in choice.delta.tool_calls or []:
                    _merge_call(calls, piece)
                if choice.logprobs is not None and choice.logprobs.content is not None:
                    tokens = (tokens or []) + choice.logprobs.content
                finish = choice.finish_reason or finish
        if refusal:
            raise self._refused("".join(refusal))
        if not done and finish is None:
            raise UpstreamError(f"{self.name}: the stream ended early", details={"provider": self.name})
        made = _calls([calls[i] for i in sorted(calls)], self.name)
        yield ProviderResult(
            text="".join(pieces),
            finish_reason="tool_calls" if made else _FINISH.get(finish or "stop", "stop"),
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            tool_calls=made,
            logprobs=_logprobs(tokens),
        )

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        """`POST /v1/embeddings` with float vectors, in the order of the texts."""
        body: dict[str, Any] = {"model": call.model, "input": call.texts, "encoding_format": "float"}
        if call.dimensions is not None:
            body["dimensions"] = call.dimensions
        raw = await self.client.post_json(f"{self.api_url}/embeddings", merge_extra(body, call.extra),
                                          deadline=deadline)
        try:
            reply = _decode_embeddings.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable embeddings", details={"provider": self.name}) from exc
        vectors = [item.embedding for item in sorted(reply.data, key=lambda item: item.index)]
        return EmbedResult(vectors=vectors, input_tokens=reply.usage.prompt_tokens if reply.usage else None)

    async def health(self, *, deadline: float) -> None:
        url = f"{self.api_url}/models"
        reply = await self.client.request("GET", url, deadline=deadline)
        if reply.status == 404:
            raise UpstreamRejected(
                f"{self.name}: GET {url} answered 404, so no OpenAI-compatible API is there; "
                "base_url should be the server's root or its /v1 URL (e.g. http://127.0.0.1:8080 or .../v1)",
                details={"provider": self.name, "status": 404, "url": url, "reason": "wrong_base_url"},
            )
        if not reply.ok:
            raise self.client.error(reply.status, reply.body, reply.headers)

    @property
    def _url(self) -> str:
        return f"{self.api_url}/chat/completions"

    def _body(self, call: ProviderCall, *, stream: bool) -> dict[str, Any]:
        opts = call.options
        body: dict[str, Any] = {"model": call.model, "messages": [_message(m) for m in call.messages]}
        sampling = {
            self.settings.max_tokens_field: opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "seed": opts.seed,
            "stop": opts.stop,
            "logprobs": opts.logprobs,
            "top_logprobs": opts.top_logprobs,
            "logit_bias": opts.logit_bias,
            "parallel_tool_calls": call.parallel_tool_calls if call.tools else None,
        }
        body.update({k: v for k, v in sampling.items() if v is not None})
        if call.response_schema is not None:
            body["response_format"] = self._response_format(call.response_schema)
        if call.tools:
            body["tools"] = [_tool(t) for t in call.tools]
            choice = call.tool_choice
            if choice is not None:
                body["tool_choice"] = (
                    {"type": "function", "function": {"name": choice.name}}
                    if isinstance(choice, NamedToolChoice) else choice
                )
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return merge_extra(body, call.extra)

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.settings.structured_output == "json_object":
            return {"type": "json_object"}
        if self.settings.structured_output == "json_object_schema":
            return {"type": "json_object", "schema": schema}
        # The name must match ^[a-zA-Z0-9_-]{1,64}$; a schema's title is the natural one.
        name = _SCHEMA_NAME.sub("_", str(schema.get("title") or "response"))[:64]
        strict = self.settings.strict_schema
        if strict == "auto":
            strict = strict_compatible(schema)
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}

    def _chunk(self, data: str) -> _Chunk:
        try:
            chunk = _decode_chunk.decode(data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable stream chunk", details={"provider": self.name}) from exc
        if chunk.error is not None:
            # An error after the 200 header arrives as a data frame; it is an upstream failure.
            raise self.client.error(500, msgspec.json.encode({"error": chunk.error}))
        return chunk

    def _refused(self, refusal: str) -> UpstreamRejected:
        return UpstreamRejected(
            f"{self.name}: the model refused the request",
            details={"provider": self.name, "reason": "refusal", "refusal": refusal[:300]},
        )


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _encode(c.arguments).decode()}}
            for c in message.tool_calls
        ]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
    return out


def _tool(tool: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _merge_call(calls: dict[int, _ToolCall], piece: _ToolCall) -> None:
    """A streamed tool call comes in pieces by index: id and name first, then the arguments in fragments."""
    known = calls.get(piece.index)
    if known is None:
        calls[piece.index] = _ToolCall(piece.index, piece.id, _Function(piece.function.name,
                                                                        piece.function.arguments or ""))
        return
    known.id = known.id or piece.id
    known.function.name = known.function.name or piece.function.name
    known.function.arguments = (known.function.arguments or "") + (piece.function.arguments or "")


def _calls(calls: list[_ToolCall], provider: str) -> list[ToolCall]:
    out: list[ToolCall] = []
    for index, call in enumerate(calls):
        try:
            arguments = _decode_any(call.function.arguments or "{}")
        except msgspec.DecodeError:
            arguments = None
        if not isinstance(arguments, dict) or not call.function.name:
            raise InvalidOutput(
                f"{provider}: tool call {call.function.name!r} has arguments that are not a JSON object",
                details={"provider": provider, "path": f"$.tool_calls[{index}].arguments"},
            )
        out.append(ToolCall(id=call.id or f"call_{index}", name=call.function.name, arguments=arguments))
    return out


def _logprobs(tokens: list[_Token] | None) -> list[TokenLogprob] | None:
    if tokens is None:
        return None
    return [
        TokenLogprob(token=t.token, logprob=t.logprob,
                     top_logprobs=[TopLogprob(token=a.token, logprob=a.logprob) for a in t.top_logprobs])
        for t in tokens
    ]


def strict_compatible(schema: Mapping[str, Any]) -> bool:
    """Whether OpenAI's strict structured output accepts `schema` as it is.

    The root must be an object; every object needs `additionalProperties: false` and all its
    properties in `required`; only the supported keywords may appear and `$ref`s stay local.
    `{"type": "object", "properties": {"a": {"type": "string"}}}` → False (no additionalProperties).
    """
    return schema.get("type") == "object" and _strict_node(schema)


def _strict_node(node: Any) -> bool:
    # Strict mode wants every subschema typed: `{}` or a bare `enum` is refused, so they count as unfit.
    if not isinstance(node, Mapping) or not _STRICT_KEYWORDS.issuperset(node) or _SHAPED.isdisjoint(node):
        return False
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
        return False
    kind = node.get("type")
    properties = node.get("properties", {})
    if "properties" in node or kind == "object" or (isinstance(kind, list) and "object" in kind):
        required = node.get("required", [])
        if node.get("additionalProperties") is not False or not isinstance(properties, Mapping):
            return False
        if not isinstance(required, list) or sorted(map(str, required)) != sorted(properties):
            return False
    children: list[Any] = list(properties.values())
    any_of = node.get("anyOf", [])
    children += any_of if isinstance(any_of, list) else [None]
    if "items" in node:
        children.append(node["items"])
    for key in ("$defs", "definitions"):
        defs = node.get(key, {})
        children += defs.values() if isinstance(defs, Mapping) else [None]
    return all(_strict_node(child) for child in children)
