"""Chat Completions ⇄ the native GenerateRequest/GenerateResponse: what is honoured, ignored or refused.

Honoured: messages (system, developer, user, assistant with `tool_calls` or a legacy `function_call`, `tool`,
legacy `function`), `temperature`, `top_p`, `max_tokens`/`max_completion_tokens`, `seed`, `stop`, `n`,
`response_format`, `tools`/`functions`, `tool_choice`/`function_call` (`allowed_tools` too),
`parallel_tool_calls`, `logprobs`/`top_logprobs` and `logit_bias` (where the route's provider supports them,
else a 400 naming the field), `stream`, `stream_options.include_usage`, `metadata`.
Accepted and ignored, since they change nothing in the answer here: `store`, `service_tier`, `prompt_cache_*`,
`safety_identifier`, `user`, `stream_options.include_obfuscation`, `prediction` (a latency hint),
`reasoning_effort` and `verbosity` (hints a model without them ignores), `frequency_penalty`/`presence_penalty`.
Refused with a 400 naming the field, since they would change the answer and no provider here gives them:
`audio`, `modalities` other than text, `web_search_options`, `moderation`, image/audio/file content parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import GenerateRequest, GenerateResponse
from shared_contracts.tools import TokenLogprob, ToolCall

from .openai_wire import ChatCompletionRequest, ChatMessage, WireFunction

__all__ = ["completion_message", "finish_reason", "native_request", "refuse", "wire_logprobs", "wire_tool_calls"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def refuse(param: str, message: str) -> InvalidRequest:
    """A 400 about one request field, named as OpenAI names it (`param`)."""
    return InvalidRequest(f"{param}: {message}", details={"param": param, "path": f"$.{param}"})


def _text(content: str | list[dict[str, Any]] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    pieces: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "refusal") and isinstance(part.get(kind), str):
            pieces.append(part[kind])
        else:
            raise refuse(f"{where}.content[{index}]", f"content parts of type {kind!r} are not supported; send text")
    return "".join(pieces)


def _arguments(raw: str, where: str) -> dict[str, Any]:
    try:
        value = _decode(raw or "{}")
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise refuse(where, "the arguments must be a JSON object encoded as a string")
    return value


def _messages(body: ChatCompletionRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    legacy: dict[str, str] = {}  # a legacy function call's name -> the id its `function` result answers
    for index, message in enumerate(body.messages):
        where = f"messages[{index}]"
        if message.audio is not None:
            raise refuse(f"{where}.audio", "audio is not supported")
        native: dict[str, Any] = {"role": message.role, "content": _text(message.content, where)}
        if message.role == "developer":
            native["role"] = "system"
        elif message.role == "assistant":
            calls = _calls(message, where, legacy)
            if calls:
                native["tool_calls"] = calls
        elif message.role == "tool":
            native["tool_call_id"] = message.tool_call_id
        elif message.role == "function":
            name = message.name or ""
            native.update(role="tool", tool_call_id=legacy.get(name, f"call_{name}"), name=name or None)
        out.append({k: v for k, v in native.items() if v is not None})
    return out


def _calls(message: ChatMessage, where: str, legacy: dict[str, str]) -> list[dict[str, Any]]:
    calls = [
        {"id": call.id, "name": call.function.name,
         "arguments": _arguments(call.function.arguments, f"{where}.tool_calls[{n}].function.arguments")}
        for n, call in enumerate(message.tool_calls or [])
    ]
    if message.function_call is not None:
        name = message.function_call.name
        legacy[name] = f"call_{name}_{len(legacy)}"
        arguments = _arguments(message.function_call.arguments, f"{where}.function_call.arguments")
        calls.append({"id": legacy[name], "name": name, "arguments": arguments})
    return calls


def _tool(function: WireFunction) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": function.name, "description": function.description, "strict": function.strict}
    if function.parameters is not None:
        tool["parameters"] = function.parameters
    return {k: v for k, v in tool.items() if v is not None}


def _named(choice: dict[str, Any], param: str) -> str:
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    if not isinstance(name, str):
        raise refuse(param, "expected {\"type\": \"function\", \"function\": {\"name\": ...}}")
    return name


def _tools(body: ChatCompletionRequest) -> tuple[list[dict[str, Any]] | None, Any]:
    """The native tools and tool_choice from `tools`/`tool_choice` or the legacy `functions`/`function_call`."""
    if body.tools and body.functions:
        raise refuse("functions", "send either tools or the legacy functions, not both")
    if body.functions:
        tools = [_tool(f) for f in body.functions]
        legacy = body.function_call
        if isinstance(legacy, dict):
            return tools, {"name": _named(legacy, "function_call")}
        if legacy not in (None, "auto", "none"):
            raise refuse("function_call", "expected 'auto', 'none' or {\"name\": ...}")
        return tools, legacy
    offered = [_tool(t.function) for t in body.tools] if body.tools else None
    choice = body.tool_choice
    if choice is None or choice in ("auto", "none", "required"):
        return offered, choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return offered, {"name": _named(choice, "tool_choice")}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = {_named(t, "tool_choice.allowed_tools.tools") for t in allowed.get("tools") or []}
        mode = allowed.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise refuse("tool_choice.allowed_tools.mode", "expected 'auto' or 'required'")
        return [t for t in offered or [] if t["name"] in names], mode
    raise refuse("tool_choice", "expected 'auto', 'none', 'required', a function or allowed_tools")


def _refuse_unhonoured(body: ChatCompletionRequest) -> None:
    for field in ("audio", "web_search_options", "moderation"):
        if getattr(body, field) is not None:
            raise refuse(field, "is not supported by this gateway and would change the answer")
    if body.modalities is not None and set(body.modalities) - {"text"}:
        raise refuse("modalities", "only text output is supported")
    if body.top_logprobs is not None and not body.logprobs:
        raise refuse("top_logprobs", "needs logprobs: true")


def _schema(body: ChatCompletionRequest) -> dict[str, Any] | None:
    spec = body.response_format
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return {"type": "object"}
    if spec.json_schema is None or spec.json_schema.schema is None:
        raise refuse("response_format.json_schema.schema", "is required with type json_schema")
    return spec.json_schema.schema


def native_request(body: ChatCompletionRequest, *, role: str, task: str, quality: str | None) -> GenerateRequest:
    """The native request the gateway routes for `body`; a 400 naming the field for what it cannot honour."""
    _refuse_unhonoured(body)
    tools, choice = _tools(body)
    options = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "seed": body.seed,
        "stop": [body.stop] if isinstance(body.stop, str) else body.stop,
        "logprobs": body.logprobs or None,
        "top_logprobs": body.top_logprobs if body.logprobs else None,
        "logit_bias": body.logit_bias or None,
    }
    raw: dict[str, Any] = {
        "role": role,
        "task": task,
        "quality": quality,
        "messages": _messages(body),
        "response_schema": _schema(body),
        "options": {k: v for k, v in options.items() if v is not None},
        "metadata": body.metadata or {},
        "tools": tools or None,
        "tool_choice": None if tools is None and choice in (None, "auto", "none") else choice,
        "parallel_tool_calls": body.parallel_tool_calls,
    }
    try:
        return msgspec.convert({k: v for k, v in raw.items() if v is not None}, GenerateRequest)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise InvalidRequest(f"invalid chat completion request: {message}", details={"path": path}) from exc


def wire_tool_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """OpenAI's `tool_calls`: arguments as a JSON string."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _encode(c.arguments).decode()}}
        for c in calls
    ]


def wire_logprobs(logprobs: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    """OpenAI's `choices[].logprobs` object, or None when none were asked for."""
    if logprobs is None:
        return None

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    content = [{**entry(t.token, t.logprob), "top_logprobs": [entry(a.token, a.logprob) for a in t.top_logprobs]}
               for t in logprobs]
    return {"content": content, "refusal": None}


def finish_reason(response: GenerateResponse, *, legacy: bool) -> str:
    """The choice's finish reason (`function_call` for a request in the legacy functions style)."""
    if response.tool_calls and legacy:
        return "function_call"
    return response.finish_reason


def completion_message(response: GenerateResponse, *, legacy: bool) -> dict[str, Any]:
    """The assistant message of a `chat.completion` choice."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.text if response.text or not response.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if response.tool_calls and legacy:
        call = wire_tool_calls(response.tool_calls[:1])[0]["function"]
        message["function_call"] = call
    elif response.tool_calls:
        message["tool_calls"] = wire_tool_calls(response.tool_calls)
    return message
