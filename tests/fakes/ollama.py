"""A protocol-faithful fake Ollama server (aiohttp.web on 127.0.0.1, a free port).

Speaks `POST /api/chat` (one JSON object, or NDJSON with `"stream": true`, the last line `"done": true`
with `done_reason` and nanosecond durations), `GET /api/version`, `GET /api/tags`, and Ollama's
`{"error": "..."}` bodies (404 for a model that is not pulled). It records every request it receives.

    async with FakeOllama(models=["qwen2.5:7b"]) as fake:
        provider_url = fake.base_url
        ...
        assert fake.chat_requests[-1].body["format"] == schema

Faults: `fake.fault = Fault(status=500)` for every chat request, `fake.faults["model"] = Fault(...)`
for one model; `Fault(times=1)` applies once. Knobs: `delay`, `chunk_delay`, `error_after`,
`malformed_after`, `cut_after`, `raw`.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize
from llm_gateway.providers.mock.vectors import unit_vector
from tests.fakes.server import FakeServer, Fault, RecordedRequest

__all__ = ["Fault", "FakeOllama", "RecordedRequest"]

_PIECE = re.compile(r"\S+\s*|\s+")
_encode = msgspec.json.encode


Reply = Callable[[dict[str, Any]], str]


@dataclass
class FakeOllama(FakeServer):
    """The fake server; `reply(body) -> text` overrides the default answers."""

    models: Sequence[str] = ("qwen2.5:7b", "qwen2.5:14b")
    reply: Reply | str | None = None
    version: str = "0.6.5"
    fault: Fault | None = None
    faults: dict[str, Fault] = field(default_factory=dict)
    # Models in memory (`GET /api/ps`); a chat that is answered loads its model.
    loaded: list[str] = field(default_factory=list)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/api/chat"]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/embed", self._embed)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)

    async def _ps(self, request: web.Request) -> web.Response:
        """`GET /api/ps`: the models in memory (as Ollama, one stays loaded after it answered a chat)."""
        await self.record(request)
        models = [{"name": name, "model": name, "size": 5_000_000_000, "digest": f"{abs(hash(name)):064x}"[:64],
                   "details": {"format": "gguf", "family": "qwen2"}, "expires_at": "2099-01-01T00:00:00Z",
                   "size_vram": 5_000_000_000} for name in self.loaded]
        return web.json_response({"models": models})

    async def _embed(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if body.get("model") not in self.models:
            return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
        vectors = [unit_vector(t, body.get("dimensions") or 8) for t in texts]
        return web.json_response({"model": body["model"], "embeddings": vectors, "total_duration": 14_000_000,
                                  "load_duration": 1_000_000, "prompt_eval_count": sum(len(t.split()) for t in texts)})

    async def _version(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.json_response({"version": self.version})

    async def _tags(self, request: web.Request) -> web.Response:
        await self.record(request)
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-01-10T12:00:00.000000000Z",
                "size": 4_683_087_332,
                "digest": f"{abs(hash(name)):064x}"[:64],
                "details": {
                    "format": "gguf",
                    "family": "qwen2",
                    "parameter_size": "7.6B",
                    "quantization_level": "Q4_K_M",
                },
            }
            for name in self.models
        ]
        return web.json_response({"models": models})

    def _take_fault(self, model: str) -> Fault | None:
        fault = self.faults.get(model) or self.fault
        return None if fault is None else fault.take()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if not isinstance(body, dict):
            return _error(400, "invalid character looking for beginning of value")
        model = body.get("model")
        if not model:
            return _error(400, "model is required")
        fault = self._take_fault(model)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return _error(fault.status, fault.error, headers=headers)
        if model not in self.models:
            return _error(404, f'model "{model}" not found, try pulling it first')
        if model not in self.loaded:
            self.loaded.append(model)
        if fault and fault.raw is not None:
            return web.Response(body=fault.raw, status=200, content_type="application/json")
        calls = self._tool_calls(body)
        if calls:
            return await self._calls(request, model, body, calls)
        pieces = _PIECE.findall(self._answer(body))
        limit = (body.get("options") or {}).get("num_predict")
        done_reason = "stop"
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, done_reason = pieces[:limit], "length"
        final = _final(model, body, len(pieces), done_reason)
        if body.get("stream", True) is False:
            final["message"] = {"role": "assistant", "content": "".join(pieces)}
            return web.Response(body=_encode(final), content_type="application/json", charset="utf-8")
        return await self._stream(request, model, pieces, final, fault)

    async def _stream(
        self, request: web.Request, model: str, pieces: list[str], final: dict[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for index, piece in enumerate(pieces):
            if fault is not None and await fault.break_stream(
                response, index, error_line=_encode({"error": fault.error}) + b"\n",
                malformed_line=b'{"model": "' + model.encode() + b'", "message": {oops\n',
            ):
                return response
            line = {
                "model": model,
                "created_at": _now(),
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            await response.write(_encode(line) + b"\n")
        final["message"] = {"role": "assistant", "content": ""}
        await response.write(_encode(final) + b"\n")
        await response.write_eof()
        return response

    def _tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """As a tool-calling model: a call of the tool the last user turn names (else the first), until a tool
        result is the last turn; arguments made from the tool's schema."""
        tools = body.get("tools") or []
        messages = body.get("messages") or []
        if not tools or (messages and messages[-1].get("role") == "tool"):
            return []
        asked = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        tool = next((t for t in tools if t["function"]["name"] in asked), tools[0])["function"]
        schema = tool.get("parameters") or {"type": "object"}
        args = synthesize(schema, prose=Prose({"product_name": "Fake Ollama Lamp"}, role="fake", task="chat"),
                          rng=random.Random(len(asked)))
        return [{"function": {"index": 0, "name": tool["name"], "arguments": args}}]

    async def _calls(
        self, request: web.Request, model: str, body: dict[str, Any], calls: list[dict[str, Any]]
    ) -> web.StreamResponse:
        final = _final(model, body, 12, "stop")
        message = {"role": "assistant", "content": "", "tool_calls": calls}
        if body.get("stream", True) is False:
            return web.Response(body=_encode({**final, "message": message}), content_type="application/json")
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        # As Ollama does: the calls in one line before the final one.
        await response.write(_encode({"model": model, "created_at": _now(), "message": message, "done": False}) + b"\n")
        await response.write(_encode({**final, "message": {"role": "assistant", "content": ""}}) + b"\n")
        await response.write_eof()
        return response

    def _answer(self, body: dict[str, Any]) -> str:
        if callable(self.reply):
            return self.reply(body)
        if isinstance(self.reply, str):
            return self.reply
        messages = body.get("messages") or []
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        fmt = body.get("format")
        if isinstance(fmt, dict):
            rng = random.Random(len(last))
            doc = synthesize(fmt, prose=Prose({"product_name": "Fake Ollama Lamp"}, role="fake", task="chat"), rng=rng)
            return msgspec.json.encode(doc).decode()
        if fmt == "json":
            return _encode({"answer": f"fake ollama answer to: {last[:60]}"}).decode()
        return f"Fake Ollama ({body['model']}) answers: {last[:80]}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encode({"error": message}),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _final(model: str, body: dict[str, Any], eval_count: int, done_reason: str) -> dict[str, Any]:
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    prompt_eval_count = 11 + prompt_words * 2  # the chat template adds tokens of its own
    return {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": done_reason,
        "total_duration": 1_218_436_750 + eval_count * 21_000_000,
        "load_duration": 15_733_208,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": 143_000_000,
        "eval_count": eval_count,
        "eval_duration": eval_count * 21_000_000,
    }
