"""The Chat Completions and Embeddings request bodies as OpenAI's SDKs send them: every current field has a place.

What the gateway honours, ignores or refuses is decided in `openai_convert.py`; here a field is only typed and
bounded as OpenAI bounds it, so a bad value is a 400 whose `param` is the field's OpenAI name. A field OpenAI
does not have is still refused by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from shared_contracts._base import Inbound

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "EmbeddingsRequest",
    "WireFunction",
    "WireTool",
    "WireToolCall",
    "decode_chat",
    "decode_embeddings",
]

Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]


class WireFunctionCall(Inbound):
    """A call's function: its name and its arguments as a JSON string (OpenAI's encoding)."""

    name: str
    arguments: str = "{}"


class WireToolCall(Inbound):
    """An assistant turn's tool call, as sent back in the conversation."""

    id: str
    function: WireFunctionCall
    type: Literal["function"] = "function"


class ChatMessage(Inbound):
    """One message of any role; which fields a role may carry is checked when converting."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # A string, or parts (`text`; `refusal` in an assistant turn; image, audio and file parts are refused).
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None
    function_call: WireFunctionCall | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None
    # What an answer's message carries, when a client sends the message back as it got it: ignored.
    annotations: list[dict[str, Any]] | None = None


class WireFunction(Inbound):
    """A function tool: name, description, the JSON Schema of its arguments, strict mode."""

    name: Annotated[str, msgspec.Meta(pattern="^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class WireTool(Inbound):
    """`{"type": "function", "function": {...}}`; custom (free-text) tools are refused by their `type`."""

    type: Literal["function"]
    function: WireFunction


class _JsonSchema(Inbound):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class _ResponseFormat(Inbound):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class _StreamOptions(Inbound):
    include_usage: bool = False
    # Random padding against length side channels: meaningless on a gateway, accepted and ignored.
    include_obfuscation: bool | None = None


class ChatCompletionRequest(Inbound):
    """`POST /v1/chat/completions`: every field of the current Chat Completions request."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1)]
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    seed: int | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=4)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    response_format: _ResponseFormat | None = None
    tools: Annotated[list[WireTool], msgspec.Meta(max_length=128)] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[WireFunction], msgspec.Meta(max_length=128)] | None = None
    function_call: str | dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    logit_bias: dict[str, Annotated[int, msgspec.Meta(ge=-100, le=100)]] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    safety_identifier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    prediction: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None


class EmbeddingsRequest(Inbound):
    """`POST /v1/embeddings`: texts (a string or a list; token arrays are refused), and the vector format."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    input: str | list[str | int | list[int]]
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=65_536)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


decode_chat = msgspec.json.Decoder(ChatCompletionRequest)
decode_embeddings = msgspec.json.Decoder(EmbeddingsRequest)
