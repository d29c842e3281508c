"""`POST /v1/embeddings`, OpenAI style: `model` is `role:<role>[/task:<task>]` (task `embed`) or a configured
embedding model; vectors as floats or, as the SDKs ask by default, base64 of little-endian float32."""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service_common.deadline import request_timeout
from service_common.http import decode_body
from service_common.modes import requested_mode
from shared_contracts.embeddings import EmbedRequest
from shared_contracts.errors import InvalidRequest, NoRoute

from .embedding import Embedder
from .openai_convert import refuse
from .openai_wire import EmbeddingsRequest, decode_embeddings

__all__ = ["openai_embedding_routes"]

_encode = msgspec.json.Encoder().encode


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class _Embeddings:
    def __init__(self, embedder: Embedder, *, allow_mode_header: bool, max_body: int) -> None:
        self.embedder = embedder
        self.allow_mode_header = allow_mode_header
        self.max_body = max_body

    def _addressing(self, model: str) -> tuple[str, str, str | None]:
        if model.startswith("role:"):
            parts: dict[str, str] = {}
            for segment in model.split("/"):
                key, sep, value = segment.partition(":")
                if not sep or not value or key not in ("role", "task", "quality") or key in parts:
                    raise InvalidRequest(f"model {model!r}: expected role:<role>[/task:<task>][/quality:<quality>]",
                                         details={"param": "model"})
                parts[key] = value
            return parts["role"], parts.get("task", "embed"), parts.get("quality")
        router = self.embedder.router
        rules, default = router.describe() if router is not None else ([], None)
        for route in [*rules, *([default] if default else [])]:
            if route.model == model:
                quality = route.quality[0] if route.quality else None
                return (route.role or ["openai"])[0], (route.task or ["embed"])[0], quality
        raise NoRoute(f"The model {model!r} does not exist; GET /v1/models lists the models",
                      details={"model": model, "param": "model"})

    async def create(self, request: Request) -> Response:
        timeout = request_timeout(request.headers)
        body: EmbeddingsRequest = await decode_body(request, decode_embeddings, max_bytes=self.max_body)
        mode = requested_mode(request.headers, allowed=self.allow_mode_header)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or not all(isinstance(t, str) and t for t in texts):
            raise refuse("input", "send a non-empty string or a list of them; token arrays are not supported")
        role, task, quality = self._addressing(body.model)
        native = msgspec.convert({"role": role, "task": task, "quality": quality, "input": texts,
                                  "dimensions": body.dimensions}, EmbedRequest)
        answer = await self.embedder.embed(native, mode=mode, timeout=timeout)
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": i,
             "embedding": _b64(vector) if body.encoding_format == "base64" else vector}
            for i, vector in enumerate(answer.embeddings)
        ]
        tokens = answer.usage.input_tokens
        usage = None if tokens is None else {"prompt_tokens": tokens, "total_tokens": tokens}
        headers = {"x-gateway-model": answer.model, "x-gateway-provider": answer.provider}
        return Response(_encode({"object": "list", "data": data, "model": body.model, "usage": usage}),
                        media_type="application/json", headers=headers)


def openai_embedding_routes(embedder: Embedder, *, allow_mode_header: bool, max_body: int) -> list[Route]:
    """`/v1/embeddings`, to add to the app's route list."""
    endpoint = _Embeddings(embedder, allow_mode_header=allow_mode_header, max_body=max_body)
    return [Route("/v1/embeddings", endpoint.create, methods=["POST"])]
