"""The mock's tool calls, made as a live model makes them, and deterministic like the rest of the mock.

`tool_choice` naming a tool, or `required`, always gets a call; `auto` (or none given) gets a call while the
conversation does not end with a tool's result, and a text answer once it does, so a client's round trip
(question, call, result, answer) runs as against a live model. The tool is the one the last user message
names, else the first. Its arguments are synthesised from the tool's `parameters` schema and checked against
it, like any mock document.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import msgspec

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, Tool, ToolCall

from ..base import ProviderCall
from .check import DocumentCheck
from .prose import Prose
from .synth import synthesize

__all__ = ["mock_tool_calls"]

_encode = msgspec.json.Encoder(order="deterministic").encode


def _named(tools: Sequence[Tool], messages: Sequence[Message]) -> Tool:
    asked = next((m.content.lower() for m in reversed(messages) if m.role == "user"), "")
    for tool in tools:
        if tool.name.lower() in asked or tool.name.replace("_", " ").lower() in asked:
            return tool
    return tools[0]


def mock_tool_calls(call: ProviderCall, *, prose: Prose, rng: random.Random, check: DocumentCheck) -> list[ToolCall]:
    """The calls the mock makes for `call` (empty: it answers in text)."""
    tools = call.tools or []
    choice = call.tool_choice
    if not tools or choice == "none":
        return []
    if isinstance(choice, NamedToolChoice):
        tool = next(t for t in tools if t.name == choice.name)
    elif choice != "required" and call.messages and call.messages[-1].role == "tool":
        return []
    else:
        tool = _named(tools, call.messages)
    where = f"tools[{next(i for i, t in enumerate(tools) if t is tool)}].parameters"
    try:
        arguments = synthesize(tool.parameters, prose=prose, rng=rng)
        check.check(tool.parameters, arguments)
    except InvalidRequest as refusal:
        # The same refusal, about this tool's schema rather than a response_schema.
        raise InvalidRequest(
            refusal.message.replace("response_schema", where, 1), details={**refusal.details, "path": f"$.{where}"}
        ) from refusal
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"{where} must describe a JSON object", details={"path": f"$.{where}"})
    digest = hashlib.blake2b(_encode([tool.name, arguments, len(call.messages)]), digest_size=12).hexdigest()
    return [ToolCall(id=f"call_{digest}", name=tool.name, arguments=arguments)]
