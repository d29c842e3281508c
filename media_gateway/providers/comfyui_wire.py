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
from .comfyui_errors import clean, without_paths
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


# Progress stays below this until the job has really finished (images downloaded and stored).
_BEFORE_END = 0.99


def _ratio(value: Any, top: Any) -> float:
    """`value / max` of a `progress` frame or a `progress_state` node, clamped to 0..1; 0 when unreadable."""
    if isinstance(value, bool) or isinstance(top, bool):
        return 0.0
    if not isinstance(value, int | float) or not isinstance(top, int | float) or top <= 0:
        return 0.0
    return min(1.0, max(0.0, value / top))


@dataclass(slots=True)
class PromptRun:
    """What the frames of one prompt (or its `/history` entry) have told us so far.

    Progress counts nodes: each finished or cached node is one part of `total_nodes`, and the node
    running now adds its own `value / max` (a sampler's steps). ComfyUI tells this three ways, all folded
    in: `progress_state` (every node's state, around each node), `progress` (per sampler step) and
    `executing` (a new node means the one before it finished). Nodes never go back to unfinished, so the
    fraction never falls; it stays below 1.0 until the prompt has ended.
    """

    prompt_id: str
    total_nodes: int
    output_nodes: tuple[str, ...]
    finished: set[str] = field(default_factory=set)
    current: str | None = None
    within: float = 0.0
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

    def fraction(self) -> float:
        """The share of the prompt done so far, 0 ≤ f ≤ 0.99."""
        total = max(self.total_nodes, len(self.finished) + (self.current is not None))
        within = self.within if self.current is not None and self.current not in self.finished else 0.0
        return min(_BEFORE_END, (len(self.finished) + within) / max(1, total))

    def _finish(self, node: str) -> None:
        self.finished.add(node)
        if node == self.current:
            self.current, self.within = None, 0.0

    def _start(self, node: str, within: float = 0.0) -> None:
        if node in self.finished:
            return
        if node != self.current:
            # `executing` of a new node: the one before it has finished.
            if self.current is not None:
                self.finished.add(self.current)
            self.current, self.within = node, 0.0
        self.within = max(self.within, within)

    def _states(self, nodes: Mapping[str, Any]) -> None:
        for node, state in nodes.items():
            if not isinstance(state, dict):
                continue
            if state.get("state") == "finished":
                self._finish(str(node))
            elif state.get("state") == "running":
                self._start(str(node), _ratio(state.get("value"), state.get("max")))

    def apply(self, frame: Frame, progress: ProgressCallback) -> bool:
        """Fold one frame in; True when the prompt has ended (`executing` with node null)."""
        data = frame.data
        match frame.type:
            case "execution_start":
                pass
            case "execution_cached":
                for node in data.get("nodes") or []:
                    self._finish(str(node))
            case "progress_state":
                nodes = data.get("nodes")
                if isinstance(nodes, dict):
                    self._states(nodes)
            case "executing":
                node = data.get("node")
                if node is None:
                    return True
                self._start(str(node))
            case "progress":
                node = data.get("node")
                if node is not None:
                    self._start(str(node), _ratio(data.get("value"), data.get("max")))
            case "executed":
                node = str(data.get("node"))
                self._finish(node)
                self.add_outputs(node, data.get("output") or {})
            case "execution_error":
                self.error = data
                return False
            case "execution_interrupted":
                self.interrupted = True
                return False
            case _:
                return False
        progress("running", self.fraction())
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
    """`400` from `POST /prompt` as an error naming the node and input; the detail is in `node_errors`.

    Every text is passed on without server paths (see comfyui_errors).
    """
    try:
        body = _decode_rejected.decode(raw)
    except msgspec.DecodeError:
        text = raw[:300].decode("utf-8", "replace")
        return InvalidWorkflow("ComfyUI rejected the workflow", details={"body": without_paths(text)})
    nodes = body.node_errors if isinstance(body.node_errors, dict) else {}
    for node_id, info in nodes.items():
        first = info.errors[0] if info.errors else _InputError()
        input_name = clean(first.extra_info.get("input_name") or first.details or None)
        reason = without_paths(first.message or "invalid")
        message = f"node {node_id} ({info.class_type}) input {input_name!r}: {reason}"
        return InvalidWorkflow(
            f"ComfyUI rejected the workflow: {message}",
            details={
                "node": node_id,
                "class_type": info.class_type,
                "input": input_name,
                "errors": clean(msgspec.to_builtins(info.errors)),
            },
        )
    error = body.error if isinstance(body.error, dict) else {"message": str(body.error)}
    return InvalidWorkflow(
        f"ComfyUI rejected the workflow: {without_paths(str(error.get('message', 'invalid prompt')))}",
        details={"type": error.get("type"), "detail": clean(error.get("details"))},
    )
