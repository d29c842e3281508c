"""Recorded gateway answers for the orchestrator's tests (bodies as the gateways send them)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Any

__all__ = [
    "LLM_URL",
    "MEDIA_URL",
    "PRODUCT",
    "envelope",
    "llm_answer",
    "media_job",
    "media_job_of",
    "output_of",
    "png",
]

LLM_URL = "http://llm.test"
MEDIA_URL = "http://media.test"
_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orchestrator"

PRODUCT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "orchestrator" / "samples" / "ko_tumbler.json").read_text("utf-8")
)


def output_of(role: str) -> dict[str, Any]:
    """The structured output a gateway answered for `role` (recorded from a mock-mode gateway)."""
    data: dict[str, Any] = json.loads((_FIXTURES / f"llm_{role}.json").read_text("utf-8"))["json"]
    return copy.deepcopy(data)


def llm_answer(role: str, *, json_output: dict[str, Any] | None = None, mode: str = "mock") -> dict[str, Any]:
    """A whole GenerateResponse body for `role`, optionally with a different `json`."""
    body: dict[str, Any] = json.loads((_FIXTURES / f"llm_{role}.json").read_text("utf-8"))
    if json_output is not None:
        body["json"] = json_output
        body["text"] = json.dumps(json_output, ensure_ascii=False)
    body["mode"] = mode
    return body


def media_job(*, status: str = "succeeded", mode: str = "mock", error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Job body as `POST /api/v1/media/image/generate` answers it with `wait: true`."""
    body: dict[str, Any] = json.loads((_FIXTURES / "media_job.json").read_text("utf-8"))
    body["status"], body["mode"], body["error"] = status, mode, error
    if status != "succeeded":
        body["images"] = []
    return body


def envelope(code: str, message: str = "failed", **details: Any) -> dict[str, Any]:
    """An error envelope as every gateway sends it."""
    return {"error": {"code": code, "message": message, "details": details, "request_id": "req-1"}}


def png(width: int = 64, height: int = 48) -> bytes:
    """A real PNG of that size."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (31, 111, 92)).save(out, format="PNG")
    return out.getvalue()


def media_job_of(image: bytes, *, mode: str = "mock") -> dict[str, Any]:
    """A succeeded Job whose one image is `image` (id, size and sha256 as the gateway would state them)."""
    body = media_job(mode=mode)
    digest = hashlib.sha256(image).hexdigest()
    body["images"][0].update(id=digest, sha256=digest, bytes=len(image),
                             url=f"{MEDIA_URL}/api/v1/media/images/{digest}")
    return body
