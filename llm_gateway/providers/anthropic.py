"""Anthropic Messages API, `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`.

Structured output goes through a forced tool call whose `input_schema` is the response schema (the
tool's input is the answer), or, with `structured_output: instructions`, through a system instruction;
the gateway validates the result either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Literal

import msgspec

from service_common.providers import KeyedProvider, KeyedSettings
from service_common.providers.bodies import merge_extra
from service_common.providers.cloud_errors import anthropic_error
from shared_contracts.errors import UpstreamError, UpstreamRejected

from .base import Delta, Provider, ProviderCall, ProviderResult

__all__ = ["AnthropicProvider", "AnthropicSettings"]

_TOOL = "respond"


class AnthropicSettings(KeyedSettings, kw_only=True, frozen=True):
    """YAML section of an Anthropic provider."""

    base_url: str = "https://api.anthropic.com"
    api_key_env: str = "ANTHROPIC_API_KEY"
    version: str = "2023-06-01"
    # The API requires max_tokens; a request's options.max_tokens wins over this.
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] = 4096
    structured_output: Literal["tool", "instructions"] = "tool"


class _Block(msgspec.Struct):
    type: str
    text: str = ""
    input: Any = None


class _Usage(msgspec.Struct):
    # Absent counts stay unknown (None), never 0.
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(msgspec.Struct):
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _StreamDelta(msgspec.Struct):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class _StreamEvent(msgspec.Struct):
    type: str
    message: _Message | None = None
    delta: _StreamDelta | None = None
    usage: _Usage | None = None


_decode_message = msgspec.json.Decoder(_Message)
_decode_event = msgspec.json.Decoder(_StreamEvent)
_encode = msgspec.json.Encoder()
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length"}


class AnthropicProvider(KeyedProvider, Provider):
    """Claude through the Messages API, streamed as Server-Sent Events."""

    Settings = AnthropicSettings
    settings: AnthropicSettings
    error_mapper = staticmethod(anthropic_error)

    def auth_headers(self, key: str) -> Mapping[str, str]:
        return {"x-api-key": key, "anthropic-version": self.settings.version}

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        raw = await self.client.post_json(self._url, self._body(call, stream=False), deadline=deadline)
        try:
            reply = _decode_message.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        parts = [_encode.encode(b.input).decode() if b.type == "tool_use" else b.text for b in reply.content]
        return self._result("".join(parts), reply.stop_reason, reply.usage.input_tokens, reply.usage.output_tokens)

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        pieces: list[str] = []
        stop_reason: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        finished = False
        async for event in self.client.post_sse(self._url, self._body(call, stream=True), deadline=deadline):
            if event.event == "error":
                raise self.client.error(500, event.data.encode())
            parsed = self._event(event.data)
            if parsed.type == "message_start" and parsed.message is not None:
                input_tokens = parsed.message.usage.input_tokens
                output_tokens = parsed.message.usage.output_tokens
            elif parsed.type == "content_block_delta" and parsed.delta is not None:
                # text_delta for text, input_json_delta for the forced tool's JSON: both are answer text.
                piece = parsed.delta.text or parsed.delta.partial_json
                if piece:
                    pieces.append(piece)
                    yield Delta(piece)
            elif parsed.type == "message_delta":
                if parsed.delta is not None:
                    stop_reason = parsed.delta.stop_reason or stop_reason
                if parsed.usage is not None and parsed.usage.output_tokens is not None:
                    output_tokens = parsed.usage.output_tokens  # cumulative
            elif parsed.type == "message_stop":
                finished = True
                break
            # ping, content_block_start/stop and event types added later carry nothing we need.
        if not finished:
            raise UpstreamError(f"{self.name}: the stream ended early", details={"provider": self.name})
        yield self._result("".join(pieces), stop_reason, input_tokens, output_tokens)

    async def health(self, *, deadline: float) -> None:
        await self.client.call("GET", f"{self.base_url}/v1/models?limit=1", deadline=deadline)

    @property
    def _url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _body(self, call: ProviderCall, *, stream: bool) -> dict[str, Any]:
        opts = call.options
        system = [m.content for m in call.messages if m.role == "system"]
        body: dict[str, Any] = {
            "model": call.model,
            "max_tokens": opts.max_tokens or self.settings.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in call.messages if m.role != "system"],
        }
        sampling = {"temperature": opts.temperature, "top_p": opts.top_p, "stop_sequences": opts.stop}
        body.update({k: v for k, v in sampling.items() if v is not None})
        schema = call.response_schema
        if schema is not None:
            # A tool's input_schema must describe an object; anything else falls back to instructions.
            if self.settings.structured_output == "tool" and schema.get("type") == "object":
                body["tools"] = [
                    {"name": _TOOL, "description": "Give the answer as this tool's input.", "input_schema": schema}
                ]
                body["tool_choice"] = {"type": "tool", "name": _TOOL}
            else:
                system.append(
                    "Answer with one JSON document that validates against this JSON Schema, and nothing else:\n"
                    + _encode.encode(schema).decode()
                )
        if system:
            body["system"] = "\n\n".join(system)
        if stream:
            body["stream"] = True
        return merge_extra(body, call.extra)

    def _event(self, data: str) -> _StreamEvent:
        try:
            return _decode_event.decode(data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable stream event", details={"provider": self.name}) from exc

    def _result(
        self, text: str, stop_reason: str | None, input_tokens: int | None, output_tokens: int | None
    ) -> ProviderResult:
        if stop_reason == "refusal":
            raise UpstreamRejected(
                f"{self.name}: the model refused the request", details={"provider": self.name, "reason": "refusal"}
            )
        return ProviderResult(
            text=text,
            finish_reason=_FINISH.get(stop_reason or "end_turn", "stop"),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
