"""`POST /api/v1/llm/embed`: EmbedRequest → EmbedResponse, routed by `embedding_routing` (see embedding.py)."""

from __future__ import annotations

from time import perf_counter

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service_common.deadline import request_timeout
from service_common.http import decode_body
from service_common.modes import requested_mode
from shared_contracts.embeddings import EmbedRequest
from shared_contracts.errors import GatewayError

from .embedding import Embedder

__all__ = ["embed_routes"]

_decode = msgspec.json.Decoder(EmbedRequest)
_encode = msgspec.json.Encoder().encode


def embed_routes(embedder: Embedder, *, allow_mode_header: bool, max_body: int) -> list[Route]:
    """The native embeddings route, to add to the app's route list."""
    log = structlog.get_logger(component="llm_gateway")

    async def embed(request: Request) -> Response:
        started = perf_counter()
        body: EmbedRequest | None = None
        try:
            timeout = request_timeout(request.headers)
            body = await decode_body(request, _decode, max_bytes=max_body)
            mode = requested_mode(request.headers, allowed=allow_mode_header)
            answer = await embedder.embed(body, mode=mode, timeout=timeout)
        except GatewayError as err:
            log.info("llm_embed", role=body.role if body else None, task=body.task if body else None,
                     outcome=err.code, latency_ms=round((perf_counter() - started) * 1000, 3))
            raise
        log.info("llm_embed", role=body.role, task=body.task, outcome="ok", mode=answer.mode,
                 provider=answer.provider, model=answer.model, texts=len(answer.embeddings),
                 latency_ms=answer.latency_ms)
        return Response(_encode(answer), media_type="application/json")

    return [Route("/api/v1/llm/embed", embed, methods=["POST"])]
