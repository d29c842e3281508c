"""Tool calling on Ollama's `/api/chat`: `tools`, `message.tool_calls` (arguments as objects), `tool` turns.

Ollama has no `tool_choice`. `none` sends no tools; `auto` sends them. A forced choice (a named tool, or
`required`) is honoured through structured output instead: `format` is the tool's parameters schema (with
several tools, `{"name", "arguments"}` whose name is one of theirs), so the grammar makes the arguments, and
the answer becomes the call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from shared_contracts.errors import InvalidOutput
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, Tool, ToolCall

from .base import ProviderCall

__all__ = ["Forced", "forced_call", "ollama_message", "ollama_tools", "parse_calls"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder(order="deterministic").encode


@dataclass(frozen=True, slots=True)
class Forced:
    """A forced tool choice sent as `format`: the schema, and the tool when there is only one."""

    schema: dict[str, Any]
    tool: str | None


def ollama_tools(call: ProviderCall) -> tuple[list[dict[str, Any]] | None, Forced | None]:
    """What to send for the call's tools: the `tools` list, or a `format` that forces a call."""
    tools = call.tools or []
    choice = call.tool_choice
    if not tools or choice == "none":
        return None, None
    if isinstance(choice, NamedToolChoice):
        tool = next(t for t in tools if t.name == choice.name)
        return None, Forced(tool.parameters, tool.name)
    if choice == "required":
        if len(tools) == 1:
            return None, Forced(tools[0].parameters, tools[0].name)
        either = {"type": "object", "properties": {"name": {"enum": [t.name for t in tools]},
                                                   "arguments": {"type": "object"}},
                  "required": ["name", "arguments"]}
        return None, Forced(either, None)
    return [_tool(t) for t in tools], None


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def ollama_message(message: Message, names: dict[str, str]) -> dict[str, Any]:
    """One message as Ollama takes it; `names` maps the calls made so far (id → tool name) for `tool` turns."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls]
        names.update((c.id, c.name) for c in message.tool_calls)
    if message.role == "tool":
        name = message.name or names.get(message.tool_call_id or "")
        if name:
            out["tool_name"] = name
    return out


def _call_id(name: str, arguments: Any, index: int) -> str:
    return "call_" + hashlib.blake2b(_encode([name, arguments, index]), digest_size=12).hexdigest()


def parse_calls(raw: Sequence[Any], provider: str) -> list[ToolCall]:
    """`message.tool_calls` from Ollama (ids are made when it sends none)."""
    calls: list[ToolCall] = []
    for index, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            try:
                arguments = _decode(arguments)
            except msgspec.DecodeError:
                arguments = None
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise InvalidOutput(f"{provider}: a tool call without a name or JSON-object arguments",
                                details={"provider": provider, "path": f"$.tool_calls[{index}]"})
        given = item.get("id")
        calls.append(ToolCall(id=given if isinstance(given, str) and given else _call_id(name, arguments, index),
                              name=name, arguments=arguments))
    return calls


def forced_call(text: str, forced: Forced, provider: str) -> list[ToolCall]:
    """The call a forced answer (JSON in `format`) stands for."""
    try:
        value = _decode(text.strip() or "null")
    except msgspec.DecodeError:
        value = None
    if forced.tool is not None and isinstance(value, dict):
        return [ToolCall(id=_call_id(forced.tool, value, 0), name=forced.tool, arguments=value)]
    if forced.tool is None and isinstance(value, dict) and isinstance(value.get("arguments"), dict):
        name = str(value.get("name"))
        return [ToolCall(id=_call_id(name, value["arguments"], 0), name=name, arguments=value["arguments"])]
    raise InvalidOutput(f"{provider}: the forced tool call's arguments are not a JSON object",
                        details={"provider": provider, "path": "$.tool_calls[0].arguments"})
