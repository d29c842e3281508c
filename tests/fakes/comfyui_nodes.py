"""The node side of the fake ComfyUI: input specs and validation, execution order, cache keys and pixels.

Specs, limits and error bodies copy what a real ComfyUI 0.3.64 reports (`/object_info/<Class>` and the
400 bodies recorded from it); the pixels are drawn with Pillow so that, as on the real server, the seed of
`ImageAddNoise` or `KSampler` decides them and every image of a batch differs.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFilter

__all__ = ["OUTPUT_NODES", "SAMPLERS", "encode_png", "execution_order", "pixels", "signature", "validate"]

_U64 = 2**64 - 1
SAMPLERS = frozenset({"KSampler"})
OUTPUT_NODES = frozenset({"SaveImage", "PreviewImage"})
_SAMPLER_NAMES = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m", "dpmpp_sde",
                  "dpmpp_2m_sde", "ddim", "uni_pc")
_SCHEDULERS = ("simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
               "linear_quadratic", "kl_optimal")


@dataclass(frozen=True)
class _In:
    """One required input: a link to another node, a number with bounds, a string, or a list of choices."""

    kind: str  # "LINK", "INT", "FLOAT", "STRING", "CHOICE"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    default: Any = None

    def config(self) -> list[Any]:
        """The `input_config` ComfyUI echoes in a validation error."""
        if self.kind == "CHOICE":
            return [list(self.choices), {}]
        return [self.kind, {"default": self.default, "min": self.low, "max": self.high}]


_LINK = _In("LINK")
_STRING = _In("STRING")


def _int(low: int, high: int, default: int) -> _In:
    return _In("INT", low, high, default=default)


def _float(low: float, high: float, default: float) -> _In:
    return _In("FLOAT", low, high, default=default)


SPECS: dict[str, dict[str, _In]] = {
    "CheckpointLoaderSimple": {"ckpt_name": _In("CHOICE")},  # choices: the fake's checkpoints
    "CLIPTextEncode": {"text": _STRING, "clip": _LINK},
    "EmptyLatentImage": {"width": _int(16, 16384, 512), "height": _int(16, 16384, 512),
                         "batch_size": _int(1, 4096, 1)},
    "KSampler": {
        "seed": _int(0, _U64, 0), "steps": _int(1, 10000, 20), "cfg": _float(0.0, 100.0, 8.0),
        "sampler_name": _In("CHOICE", choices=_SAMPLER_NAMES), "scheduler": _In("CHOICE", choices=_SCHEDULERS),
        "denoise": _float(0.0, 1.0, 1.0), "model": _LINK, "positive": _LINK, "negative": _LINK,
        "latent_image": _LINK,
    },
    "VAEDecode": {"samples": _LINK, "vae": _LINK},
    "SaveImage": {"filename_prefix": _STRING, "images": _LINK},
    "PreviewImage": {"images": _LINK},
    "EmptyImage": {"width": _int(1, 16384, 512), "height": _int(1, 16384, 512), "batch_size": _int(1, 4096, 1),
                   "color": _int(0, 16777215, 0)},
    "ImageAddNoise": {"image": _LINK, "seed": _int(0, _U64, 0), "strength": _float(0.0, 1.0, 0.5)},
    "ImageBlur": {"image": _LINK, "blur_radius": _int(1, 31, 1), "sigma": _float(0.1, 10.0, 1.0)},
}


def _error(kind: str, message: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": name, "extra_info": {"input_name": name, **extra}}


def _top(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _number(spec: _In, value: Any) -> float | int | None:
    """ComfyUI converts with int()/float(), so 1.5 and "5" pass as INT; None when it cannot."""
    try:
        return int(value) if spec.kind == "INT" else float(value)
    except (TypeError, ValueError):
        return None


def _check(spec: _In, name: str, value: Any, graph: Mapping[str, Any], checkpoints: tuple[str, ...]) -> list[Any]:
    if value is None:
        return [_error("required_input_missing", "Required input is missing", name)]
    if spec.kind == "LINK":
        if not (isinstance(value, list) and len(value) == 2 and str(value[0]) in graph):
            return [_error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                           name, received_value=value)]
        return []
    if spec.kind == "CHOICE":
        choices = spec.choices or checkpoints
        if value not in choices:
            return [{"type": "value_not_in_list", "message": "Value not in list",
                     "details": f"{name}: '{value}' not in {list(choices)}",
                     "extra_info": {"input_name": name, "input_config": [list(choices), {}],
                                    "received_value": value}}]
        return []
    if spec.kind == "STRING":
        return []
    number = _number(spec, value)
    if number is None:
        return [_error("invalid_input_type", f"Failed to convert an input value to a {spec.kind} value",
                       name, input_config=spec.config(), received_value=value)]
    if spec.low is not None and number < spec.low:
        return [_error("value_smaller_than_min", f"Value {number} smaller than min of {spec.low}", name,
                       input_config=spec.config(), received_value=value)]
    if spec.high is not None and number > spec.high:
        return [_error("value_bigger_than_max", f"Value {number} bigger than max of {spec.high}", name,
                       input_config=spec.config(), received_value=value)]
    return []


def validate(graph: Any, checkpoints: tuple[str, ...]) -> dict[str, Any] | None:
    """The 400 body ComfyUI answers for a bad graph, or None when it would queue it."""
    if not isinstance(graph, dict):
        return {"error": _top("invalid_prompt", "Cannot execute because the prompt is not a graph."),
                "node_errors": {}}
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return {"error": _top("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                  "property.", f"Node ID '#{node_id}'"), "node_errors": {}}
        if node["class_type"] not in SPECS:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return {"error": _top("invalid_prompt", message, f"Node ID '#{node_id}'"), "node_errors": {}}
    if not any(node["class_type"] in OUTPUT_NODES for node in graph.values()):
        return {"error": _top("prompt_no_outputs", "Prompt has no outputs"), "node_errors": []}
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = node.get("inputs", {})
        errors = [e for name, spec in SPECS[node["class_type"]].items()
                  for e in _check(spec, name, inputs.get(name), graph, checkpoints)]
        if errors:
            outputs = [n for n, x in graph.items() if x["class_type"] in OUTPUT_NODES]
            node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs, "class_type": node["class_type"]}
    if node_errors:
        return {"error": _top("prompt_outputs_failed_validation", "Prompt outputs failed validation"),
                "node_errors": node_errors}
    return None


def _links(node: Mapping[str, Any]) -> list[str]:
    return [str(v[0]) for v in node["inputs"].values() if isinstance(v, list) and len(v) == 2]


def execution_order(graph: Mapping[str, Any]) -> list[str]:
    """Nodes the outputs need, each after its inputs (ComfyUI runs `1 2 3 4` for a graph keyed `1 2 4 3`)."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for upstream in _links(graph[node_id]):
            visit(upstream)
        order.append(node_id)

    for node_id, node in graph.items():
        if node["class_type"] in OUTPUT_NODES:
            visit(node_id)
    return order


def signature(graph: Mapping[str, Any], node_id: str) -> str:
    """A node's cache key: its class, its literal inputs and, recursively, the keys of its inputs' nodes."""
    node = graph[node_id]
    inputs = {k: signature(graph, str(v[0])) + f"#{v[1]}" if isinstance(v, list) and len(v) == 2 else v
              for k, v in sorted(node["inputs"].items())}
    return json.dumps([node["class_type"], inputs], sort_keys=True, default=str)


def _source(graph: Mapping[str, Any], node_id: str) -> list[Image.Image]:
    node = graph[node_id]
    kind, inputs = node["class_type"], node["inputs"]
    if kind in ("EmptyImage", "EmptyLatentImage"):
        size = (int(inputs["width"]), int(inputs["height"]))
        color = int(inputs.get("color", 0x4080C0))
        rgb = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
        return [Image.new("RGB", size, rgb) for _ in range(int(inputs["batch_size"]))]
    if kind in ("ImageAddNoise", "KSampler"):
        images = pixels(graph, str((inputs.get("image") or inputs["latent_image"])[0]))
        strength = float(inputs.get("strength", 0.5))
        # One generator for the whole batch, as ComfyUI draws the noise of the batch tensor at once.
        rng = random.Random(int(inputs["seed"]))
        return [Image.blend(img, Image.frombytes("RGB", img.size, rng.randbytes(img.width * img.height * 3)),
                            strength) for img in images]
    if kind == "ImageBlur":
        blur = ImageFilter.GaussianBlur(float(inputs["sigma"]))
        return [img.filter(blur) for img in pixels(graph, str(inputs["image"][0]))]
    # VAEDecode, SaveImage, PreviewImage: the images of the first linked input that has any.
    for upstream in _links(node):
        found = pixels(graph, upstream)
        if found:
            return found
    return []


def pixels(graph: Mapping[str, Any], node_id: str) -> list[Image.Image]:
    """The images node `node_id` produces (empty for nodes that produce none, e.g. a text encoder)."""
    return _source(graph, node_id)


def encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
