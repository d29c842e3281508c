"""What a generate request needs of its provider (tools, log-probabilities, a logit bias), checked before any call.

A route's targets that cannot honour what the request asks are left out of its try order (a fallback that
cannot call tools is not tried for a request with tools); when none can, the request is refused with a 400
naming the field, since answering without it would change the answer. In mock mode the live route's providers
decide, so mock refuses exactly what live would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import GenerateRequest
from shared_contracts.tools import NamedToolChoice

from .providers.base import Feature, Provider

__all__ = ["check_tool_use", "may_need_features", "needed_features", "targets_able"]

T = TypeVar("T")


def check_tool_use(request: GenerateRequest) -> None:
    """400 for tools used inconsistently: duplicate names, a forced tool not offered, a tool turn without its id."""
    names = [tool.name for tool in request.tools or []]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InvalidRequest(
                f"tools[{index}]: the name {name!r} is used twice", details={"path": f"$.tools[{index}].name"}
            )
    for index, tool in enumerate(request.tools or []):
        kind = tool.parameters.get("type")
        if kind is not None and kind != "object":
            raise InvalidRequest(
                f"tools[{index}].parameters must describe a JSON object",
                details={"path": f"$.tools[{index}].parameters"},
            )
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice) and choice.name not in names:
        raise InvalidRequest(
            f"tool_choice names {choice.name!r}, which is not among the tools", details={"path": "$.tool_choice.name"}
        )
    if choice == "required" and not names:
        raise InvalidRequest("tool_choice 'required' needs at least one tool", details={"path": "$.tool_choice"})
    for index, message in enumerate(request.messages):
        if message.role == "tool" and message.tool_call_id is None:
            raise InvalidRequest(
                f"messages[{index}]: a tool message needs the tool_call_id it answers",
                details={"path": f"$.messages[{index}].tool_call_id"},
            )


def needed_features(request: GenerateRequest) -> dict[Feature, str]:
    """The features `request` needs, each with the request path that asks for it."""
    needs: dict[Feature, str] = {}
    if request.tools and request.tool_choice != "none":
        needs["tools"] = "$.tools"
    elif any(m.role == "tool" or m.tool_calls for m in request.messages):
        needs["tools"] = "$.messages"  # a conversation with tool turns needs a provider that can send them
    options = request.options
    if options is not None and (options.logprobs or options.top_logprobs):
        needs["logprobs"] = "$.options.logprobs" if options.logprobs else "$.options.top_logprobs"
    if options is not None and options.logit_bias:
        needs["logit_bias"] = "$.options.logit_bias"
    return needs


def targets_able(
    targets: Sequence[tuple[T, Provider]],
    needs: Mapping[Feature, str],
    *,
    judge: Sequence[Provider],
    route: str,
) -> tuple[tuple[T, Provider], ...]:
    """The targets whose provider (`judge[i]` for `targets[i]`) has every needed feature; a 400 when none has."""
    kept = tuple(target for target, able in zip(targets, judge, strict=True) if needs.keys() <= able.features)
    if kept:
        return kept
    feature, path = next((f, p) for f, p in needs.items() if f not in judge[0].features)
    names = sorted({p.name for p in judge})
    raise InvalidRequest(
        f"{path.removeprefix('$.')}: route {route!r} has no provider that supports {feature} "
        f"({', '.join(names)}); answering without it would change the answer",
        details={"path": path, "feature": feature, "route": route, "providers": names},
    )


def may_need_features(request: GenerateRequest) -> bool:
    """Whether the request may need a provider feature (tools, log-probabilities, a logit bias) or use tools
    inconsistently; most requests do not, and are spared the checks."""
    options = request.options
    if request.tools or request.tool_choice is not None or request.parallel_tool_calls is not None:
        return True
    if options is not None and (options.logprobs or options.top_logprobs or options.logit_bias):
        return True
    return any(m.role == "tool" or m.tool_calls for m in request.messages)
