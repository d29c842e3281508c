"""An Ollama-compatible upstream that answers at once: the fixed point every benchmark measures against.

Run as its own process: `python -m bench.perf.instant_upstream --port 11500`. It is a bare asyncio
protocol on uvloop (no framework) so that it costs a few microseconds per request and is never the
bottleneck. It speaks just enough HTTP/1.1 for keep-alive clients (wrk, aiohttp, httpx):
`POST /api/chat` and `POST /api/generate` (streaming as NDJSON when the body asks `"stream": true`,
which is Ollama's default), `GET /api/tags`, `GET /api/version` and `POST /api/show`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any, cast

import msgspec

from bench.perf.pyload import run_fast

__all__ = ["main"]

_TEXT = "A bright ceramic teapot that keeps tea hot for an hour."
_CREATED = "2024-01-01T00:00:00.000000Z"


class _Body(msgspec.Struct):
    """The two request fields the reply depends on; everything else is ignored like Ollama does."""

    model: str = "bench"
    stream: bool = True


_decode_body = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.Encoder().encode


def _final(model: str, chat: bool, *, content: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "created_at": _CREATED}
    if chat:
        body["message"] = {"role": "assistant", "content": content}
    else:
        body["response"] = content
    body.update(
        done=True,
        done_reason="stop",
        total_duration=1_000_000,
        load_duration=1_000,
        prompt_eval_count=26,
        prompt_eval_duration=100_000,
        eval_count=12,
        eval_duration=800_000,
    )
    return body


def _delta(model: str, chat: bool, piece: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "created_at": _CREATED, "done": False}
    if chat:
        body["message"] = {"role": "assistant", "content": piece}
    else:
        body["response"] = piece
    return body


def _response(status: str, content_type: bytes, payload: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )


def _chunked(content_type: bytes, lines: list[bytes]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = [b"%x\r\n%s\r\n" % (len(line), line) for line in lines]
    return head + b"".join(chunks) + b"0\r\n\r\n"


class _Replies:
    """Every reply pre-rendered per model name, so a request costs a dict lookup."""

    def __init__(self, pieces: int) -> None:
        self._pieces = pieces
        self._cache: dict[tuple[bytes, str, bool], bytes] = {}
        self.fixed = {
            b"/api/tags": _response("200 OK", b"application/json", _encode({"models": []})),
            b"/api/version": _response("200 OK", b"application/json", b'{"version":"0.5.0"}'),
            b"/api/show": _response(
                "200 OK", b"application/json", _encode({"modelfile": "", "parameters": "", "template": "",
                                                        "details": {}, "model_info": {}})
            ),
        }
        self.not_found = _response("404 Not Found", b"application/json", b'{"error":"not found"}')
        self.bad = _response("400 Bad Request", b"application/json", b'{"error":"invalid JSON body"}')

    def reply(self, path: bytes, model: str, stream: bool) -> bytes:
        key = (path, model, stream)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(path == b"/api/chat", model, stream)
            if len(self._cache) < 1024:
                self._cache[key] = cached
        return cached

    def _render(self, chat: bool, model: str, stream: bool) -> bytes:
        if not stream:
            return _response("200 OK", b"application/json", _encode(_final(model, chat, content=_TEXT)))
        words = _TEXT.split(" ")
        per = max(1, len(words) // self._pieces)
        pieces = [" ".join(words[i : i + per]) + " " for i in range(0, len(words), per)]
        lines = [_encode(_delta(model, chat, piece)) + b"\n" for piece in pieces]
        lines.append(_encode(_final(model, chat, content="")) + b"\n")
        return _chunked(b"application/x-ndjson", lines)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse request heads by hand, answer from the pre-rendered set."""

    def __init__(self, replies: _Replies, counter: list[int]) -> None:
        self._replies = replies
        self._counter = counter
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the Transport interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        out: list[bytes] = []
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self._buf[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self._buf) < total:
                break
            body = self._buf[end + 4 : total]
            self._buf = self._buf[total:]
            out.append(self._answer(head, body))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _answer(self, head: bytes, body: bytes) -> bytes:
        self._counter[0] += 1
        line_end = head.find(b"\r\n")
        parts = head[: line_end if line_end >= 0 else len(head)].split(b" ")
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b"/"
        if path in (b"/api/chat", b"/api/generate"):
            try:
                parsed = _decode_body(body) if body else _Body()
            except msgspec.DecodeError:
                return self._replies.bad
            return self._replies.reply(path, parsed.model, parsed.stream)
        return self._replies.fixed.get(path, self._replies.not_found)


async def _serve(host: str, port: int, pieces: int) -> None:
    loop = asyncio.get_running_loop()
    replies = _Replies(pieces)
    counter = [0]
    server = await loop.create_server(lambda: _Connection(replies, counter), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"instant upstream on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()
    print(f"instant upstream served {counter[0]} requests", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="instant-upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11500)
    parser.add_argument("--pieces", type=int, default=4, help="NDJSON deltas per streamed reply")
    args = parser.parse_args(argv)
    run_fast(_serve(args.host, args.port, args.pieces))


if __name__ == "__main__":
    main()
