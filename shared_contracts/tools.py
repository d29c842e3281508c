"""Tool calling on the LLM Gateway, one contract for every provider: tools offered, the choice, the calls made.

A request offers `tools` (a name, what it does, its arguments' JSON Schema) and says how the model may use them
(`tool_choice`: `auto`, `none`, `required`, or one tool by name). An answer that calls tools has `tool_calls`
(an id, the tool's name, its arguments as a JSON object) and `finish_reason: "tool_calls"`. The caller runs
them and sends each result back as a `tool` message naming the call's id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ._base import Inbound, Outbound

__all__ = ["TOOL_NAME_PATTERN", "NamedToolChoice", "Tool", "ToolCall", "ToolChoice", "TokenLogprob", "TopLogprob"]

TOOL_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
"""What every provider accepts as a function name (OpenAI's rule; Anthropic's and Gemini's are wider)."""

ToolName = Annotated[str, msgspec.Meta(pattern=TOOL_NAME_PATTERN)]


class Tool(Inbound):
    """A function the model may call: `parameters` is the JSON Schema of its arguments (an object)."""

    name: ToolName
    description: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    # Ask the provider to hold the arguments to the schema exactly, where it can (OpenAI's strict mode).
    strict: bool | None = None


class NamedToolChoice(Inbound):
    """Force a call of this one tool."""

    name: ToolName


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice
"""`auto`: the model decides; `none`: no tool call; `required`: at least one call; a name: that tool."""


class ToolCall(Inbound):
    """One call the model made: the same shape in an answer and in the assistant turn sent back later."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: ToolName
    arguments: dict[str, Any]


class TopLogprob(Outbound):
    """One of the most likely tokens at a place of the answer."""

    token: str
    logprob: float


class TokenLogprob(Outbound):
    """A token of the answer, its log-probability, and the most likely alternatives (`top_logprobs` of them)."""

    token: str
    logprob: float
    top_logprobs: list[TopLogprob] = []
