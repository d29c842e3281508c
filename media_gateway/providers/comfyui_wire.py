"""ComfyUI's HTTP bodies and what the frames of one prompt have told so far.

Upstream types are tolerant (unknown fields ignored): a newer ComfyUI must not break the gateway.
`POST /prompt` rejections become an `invalid_workflow` error naming the node and input, since the useful
detail is often only in `node_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from shared_contracts.errors import InvalidWorkflow

from .base import ProgressCallback
from .comfyui_socket import Frame

__all__ = [
    "HistoryEntry",
    "ImageRef",
    "PromptRun",
    "decode_accepted",
    "decode_history",
    "decode_queue",
    "rejection",
]


class _Accepted(msgspec.Struct):
    prompt_id: str


class _InputError(msgspec.Struct):
    type: str = ""
    message: str = ""
    details: Any = ""
    extra_info: dict[str, Any] = {}


class _NodeError(msgspec.Struct):
    errors: list[_InputError] = []
    class_type: str | None = None


class _Rejected(msgspec.Struct):
    error: dict[str, Any] | str | None = None
    # ComfyUI sends `[]` instead of `{}` on some paths (e.g. no prompt).
    node_errors: dict[str, _NodeError] | list[Any] = {}


class ImageRef(msgspec.Struct, frozen=True):
    """One saved image as ComfyUI names it; `GET /view` serves it."""

    filename: str
    subfolder: str = ""
    type: str = "output"


class _HistoryStatus(msgspec.Struct):
    status_str: str = "success"
    completed: bool = True
    messages: list[Any] = []


class HistoryEntry(msgspec.Struct):
    """One prompt's `/history/{id}` entry: its outputs and final status."""

    outputs: dict[str, dict[str, Any]] = {}
    status: _HistoryStatus = msgspec.field(default_factory=_HistoryStatus)


decode_accepted = msgspec.json.Decoder(_Accepted)
_decode_rejected = msgspec.json.Decoder(_Rejected)
decode_history = msgspec.json.Decoder(dict[str, HistoryEntry])
decode_queue = msgspec.json.Decoder(dict[str, list[list[Any]]])


@dataclass(slots=True)
class PromptRun:
    """What the frames of one prompt (or its `/history` entry) have told us so far."""

    prompt_id: str
    total_nodes: int
    output_nodes: tuple[str, ...]
    done_nodes: int = 0
    images: list[ImageRef] = field(default_factory=list)
    error: dict[str, Any] | None = None
    interrupted: bool = False

    def add_outputs(self, node: str, output: Mapping[str, Any]) -> None:
        if self.output_nodes and node not in self.output_nodes:
            return
        for raw in output.get("images") or []:
            ref = msgspec.convert(raw, ImageRef)
            # `temp` images come from PreviewImage nodes: previews, not results.
            if ref.type == "output" and ref not in self.images:
                self.images.append(ref)

    def fraction(self, within: float = 0.0) -> float:
        return min(0.99, (self.done_nodes + within) / max(1, self.total_nodes))

    def apply(self, frame: Frame, progress: ProgressCallback) -> bool:
        """Fold one frame in; True when the prompt has ended (`executing` with node null)."""
        data = frame.data
        match frame.type:
            case "execution_start":
                progress("running", 0.0)
            case "execution_cached":
                self.done_nodes += len(data.get("nodes") or [])
                progress("running", self.fraction())
            case "executing":
                if data.get("node") is None:
                    return True
                progress("running", self.fraction())
            case "progress":
                value, top = data.get("value", 0), data.get("max", 0)
                within = value / top if isinstance(value, int | float) and isinstance(top, int | float) and top else 0.0
                progress("running", self.fraction(within))
            case "executed":
                self.done_nodes += 1
                self.add_outputs(str(data.get("node")), data.get("output") or {})
            case "execution_error":
                self.error = data
            case "execution_interrupted":
                self.interrupted = True
        return False

    def from_history(self, entry: HistoryEntry) -> None:
        for node, output in entry.outputs.items():
            self.add_outputs(node, output)
        for message in entry.status.messages:
            if isinstance(message, list) and len(message) == 2:
                if message[0] == "execution_error" and isinstance(message[1], dict):
                    self.error = message[1]
                elif message[0] == "execution_interrupted":
                    self.interrupted = True
        if entry.status.status_str == "error" and self.error is None and not self.interrupted:
            self.error = {"exception_message": "ComfyUI reported an error without details"}


def rejection(raw: bytes) -> InvalidWorkflow:
    """`400` from `POST /prompt` as an error naming the node and input; the detail is in `node_errors`."""
    try:
        body = _decode_rejected.decode(raw)
    except msgspec.DecodeError:
        return InvalidWorkflow("ComfyUI rejected the workflow", details={"body": raw[:300].decode("utf-8", "replace")})
    nodes = body.node_errors if isinstance(body.node_errors, dict) else {}
    for node_id, info in nodes.items():
        first = info.errors[0] if info.errors else _InputError()
        input_name = first.extra_info.get("input_name") or first.details or None
        message = f"node {node_id} ({info.class_type}) input {input_name!r}: {first.message or 'invalid'}"
        return InvalidWorkflow(
            f"ComfyUI rejected the workflow: {message}",
            details={
                "node": node_id,
                "class_type": info.class_type,
                "input": input_name,
                "errors": msgspec.to_builtins(info.errors),
            },
        )
    error = body.error if isinstance(body.error, dict) else {"message": str(body.error)}
    return InvalidWorkflow(
        f"ComfyUI rejected the workflow: {error.get('message', 'invalid prompt')}",
        details={"type": error.get("type"), "detail": error.get("details")},
    )
