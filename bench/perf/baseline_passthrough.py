"""The floor a Python gateway stands on: Starlette + uvicorn + aiohttp, forwarding bytes and nothing else.

No routing, no validation, no logging, no request ids: the body a client posts to
`/api/v1/llm/generate` goes verbatim to `{upstream}/api/chat`, and the upstream's bytes and status come
back. `make bench-compare` drives it with the same load as the gateway, so ours/baseline shows what our
routing, validation, logging and normalisation cost. Run: `python -m bench.perf.baseline_passthrough`.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["create_app", "main"]


def create_app(upstream: str) -> Starlette:
    """An app with one pooled session to `upstream`, opened in the lifespan."""
    target = upstream.rstrip("/") + "/api/chat"
    sessions: list[aiohttp.ClientSession] = []

    async def forward(request: Request) -> Response:
        body = await request.body()
        async with sessions[0].post(target, data=body, headers={"content-type": "application/json"}) as resp:
            payload = await resp.read()
            return Response(payload, status_code=resp.status, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            sessions.append(session)
            yield

    return Starlette(routes=[Route("/api/v1/llm/generate", forward, methods=["POST"])], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    """Serve the pass-through with uvloop and httptools, access log off."""
    parser = argparse.ArgumentParser(prog="baseline-passthrough")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--upstream", default="http://127.0.0.1:11500")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
