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
from shared_contracts.errors import InvalidOutput, UpstreamError, UpstreamRejected
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, ToolCall

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
    id: str = ""
    name: str = ""


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
    index: int = 0
    content_block: _Block | None = None


_decode_message = msgspec.json.Decoder(_Message)
_decode_event = msgspec.json.Decoder(_StreamEvent)
_encode = msgspec.json.Encoder()
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length"}


class AnthropicProvider(KeyedProvider, Provider):
    """Claude through the Messages API, streamed as Server-Sent Events."""

    Settings = AnthropicSettings
    settings: AnthropicSettings
    error_mapper = staticmethod(anthropic_error)
    features = frozenset({"tools"})
    bounds_itself = True  # one HttpClient call per try

    def auth_headers(self, key: str) -> Mapping[str, str]:
        return {"x-api-key": key, "anthropic-version": self.settings.version}

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        raw = await self.client.post_json(self._url, self._body(call, stream=False), deadline=deadline)
        try:
            reply = _decode_message.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        answer = [b for b in reply.content if b.type != "tool_use" or b.name == _TOOL]
        parts = [_encode.encode(b.input).decode() if b.type == "tool_use" else b.text for b in answer]
        calls = [_call(b.id, b.name, b.input, self.name) for b in reply.content if b.type == "tool_use"
                 and b.name != _TOOL]
        result = self._result("".join(parts), reply.stop_reason, reply.usage.input_tokens, reply.usage.output_tokens)
        return _with_calls(result, calls)

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        pieces: list[str] = []
        stop_reason: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        finished = False
        # Blocks by index: a user tool's call gathers its input JSON; text and the structured answer stream.
        calls: dict[int, tuple[str, str, list[str]]] = {}
        async for event in self.client.post_sse(self._url, self._body(call, stream=True), deadline=deadline):
            if event.event == "error":
                raise self.client.error(500, event.data.encode())
            parsed = self._event(event.data)
            if parsed.type == "message_start" and parsed.message is not None:
                input_tokens = parsed.message.usage.input_tokens
                output_tokens = parsed.message.usage.output_tokens
            elif parsed.type == "content_block_start" and parsed.content_block is not None:
                block = parsed.content_block
                if block.type == "tool_use" and block.name != _TOOL:
                    calls[parsed.index] = (block.id, block.name, [])
            elif parsed.type == "content_block_delta" and parsed.delta is not None and parsed.index in calls:
                calls[parsed.index][2].append(parsed.delta.partial_json)
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
        made = [_call(i, n, _json("".join(parts), n, self.name), self.name) for i, n, parts in
                (calls[k] for k in sorted(calls))]
        yield _with_calls(self._result("".join(pieces), stop_reason, input_tokens, output_tokens), made)

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
            "messages": _messages(call.messages),
        }
        sampling = {"temperature": opts.temperature, "top_p": opts.top_p, "stop_sequences": opts.stop}
        body.update({k: v for k, v in sampling.items() if v is not None})
        schema = call.response_schema
        if schema is not None:
            # A tool's input_schema must describe an object; anything else falls back to instructions.
            # With the caller's own tools the answer is text after them: the schema goes in the instructions.
            if self.settings.structured_output == "tool" and schema.get("type") == "object" and not call.tools:
                body["tools"] = [
                    {"name": _TOOL, "description": "Give the answer as this tool's input.", "input_schema": schema}
                ]
                body["tool_choice"] = {"type": "tool", "name": _TOOL}
            else:
                system.append(
                    "Answer with one JSON document that validates against this JSON Schema, and nothing else:\n"
                    + _encode.encode(schema).decode()
                )
        if call.tools:
            body["tools"] = [
                {"name": t.name, "input_schema": t.parameters, **({"description": t.description} if t.description
                                                                   else {})}
                for t in call.tools
            ]
            body["tool_choice"] = _choice(call)
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


def _choice(call: ProviderCall) -> dict[str, Any]:
    choice = call.tool_choice
    if isinstance(choice, NamedToolChoice):
        out: dict[str, Any] = {"type": "tool", "name": choice.name}
    else:
        out = {"type": {"required": "any", "none": "none"}.get(str(choice), "auto")}
    if call.parallel_tool_calls is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Anthropic's turns: assistant calls as `tool_use` blocks, results as `tool_result` blocks of one user turn."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _json(text: str, name: str, provider: str) -> Any:
    try:
        return msgspec.json.decode(text or "{}")
    except msgspec.DecodeError:
        raise InvalidOutput(f"{provider}: tool call {name!r} has input that is not JSON",
                            details={"provider": provider}) from None


def _call(call_id: str, name: str, arguments: Any, provider: str) -> ToolCall:
    if not isinstance(arguments, dict):
        raise InvalidOutput(f"{provider}: tool call {name!r} has input that is not a JSON object",
                            details={"provider": provider})
    return ToolCall(id=call_id, name=name, arguments=arguments)


def _with_calls(result: ProviderResult, calls: list[ToolCall]) -> ProviderResult:
    if calls:
        result.tool_calls, result.finish_reason = calls, "tool_calls"
    return result
