"""A protocol-faithful fake OpenAI-compatible server (vLLM, llama.cpp server, LM Studio) on 127.0.0.1.

Speaks `POST /v1/chat/completions` (one JSON completion, or SSE `data:` chunks with `"stream": true`,
a usage chunk when `stream_options.include_usage`, then `data: [DONE]`), `GET /v1/models`, and OpenAI's
`{"error": {"message", "type", "code"}}` bodies. It records every request.

    async with FakeOpenAI(models=["local-model"]) as fake:
        fake.fault = Fault(status=429, retry_after="1", times=1)

Faults are tests/fakes/server.py's `Fault` (status, retry_after, delay, chunk_delay, error_after,
malformed_after, cut_after, raw, times). `gate`: when set, every chat request waits for it (after
`received` is set), so a test can hold a request in flight without sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize
from llm_gateway.providers.mock.vectors import unit_vector
from tests.fakes.server import FakeServer, Fault, RecordedRequest

__all__ = ["FakeOpenAI"]

_encode = msgspec.json.encode


@dataclass
class FakeOpenAI(FakeServer):
    """The fake server; `reply` is the assistant's text (split into words when streamed)."""

    models: Sequence[str] = ("local-model",)
    reply: str = "Fake OpenAI-compatible answer about the lamp."
    fault: Fault | None = None
    gate: asyncio.Event | None = None
    received: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()  # a request held in flight must end before the server can
        await super().stop()

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": unit_vector(t, body.get("dimensions") or 8)}
                for i, t in enumerate(texts)]
        tokens = sum(len(t.split()) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: web.Request) -> web.Response:
        await self.record(request)
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        self.received.set()
        if self.gate is not None:
            await self.gate.wait()
        fault = None if self.fault is None else self.fault.take()
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return _error(fault.status, fault.error, headers=headers)
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", code="model_not_found")
        if fault and fault.raw is not None:
            return web.Response(body=fault.raw, status=200, content_type="application/json")
        if body.get("stream"):
            return await self._stream(request, str(model), body, fault)
        calls = _tool_calls(body)
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else self._content(body),
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        completion = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": self._usage(body),
            "system_fingerprint": "fp_fake",
        }
        return web.json_response(completion)

    def _content(self, body: dict[str, Any]) -> str:
        """The reply, or a document valid for the requested JSON schema (as a model under strict mode)."""
        spec = body.get("response_format") or {}
        if spec.get("type") == "json_schema":
            return _synth(spec["json_schema"]["schema"], len(body.get("messages") or []))
        if spec.get("type") == "json_object":
            return _encode({"answer": self.reply}).decode()
        return self.reply

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        out = len(self.reply.split())
        return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        async def send(payload: Any) -> None:
            await response.write(_frame(payload))

        calls = _tool_calls(body)
        if calls:
            for index, call in enumerate(calls):  # as OpenAI: id and name first, then the arguments in pieces
                first = {"index": index, "id": call["id"], "type": "function",
                         "function": {"name": call["function"]["name"], "arguments": ""}}
                await send({**head, "choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
                arguments = call["function"]["arguments"]
                for start in range(0, len(arguments), 7):
                    piece = {"index": index, "function": {"arguments": arguments[start:start + 7]}}
                    await send({**head, "choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]})
            await send({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        words = [w + " " for w in self._content(body).split(" ")]
        words[-1] = words[-1][:-1]
        for index, word in enumerate(words):
            if fault is not None and await fault.break_stream(
                response, index,
                error_line=_frame({"error": {"message": fault.error, "type": "server_error", "code": None}}),
                malformed_line=b'data: {"id": "chatcmpl-fake", "choices": [{oops\n\n',
            ):
                return response
            await send({**head, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        await send({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await send({**head, "choices": [], "usage": self._usage(body)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """As a tool-calling model: the forced tool, else (auto) the one the last user turn names or the first,
    until a tool result is the last turn; arguments made from the tool's schema."""
    tools = [t["function"] for t in body.get("tools") or []]
    choice = body.get("tool_choice")
    messages = body.get("messages") or []
    if not tools or choice == "none":
        return []
    asked = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(choice, dict):
        tool = next(t for t in tools if t["name"] == choice["function"]["name"])
    elif choice != "required" and messages and messages[-1].get("role") == "tool":
        return []
    else:
        tool = next((t for t in tools if t["name"] in asked), tools[0])
    arguments = _synth(tool.get("parameters") or {"type": "object"}, len(asked))
    return [{"id": f"call_fake{len(messages)}", "type": "function",
             "function": {"name": tool["name"], "arguments": arguments}}]


def _synth(schema: dict[str, Any], seed: int) -> str:
    doc = synthesize(schema, prose=Prose({"product_name": "Fake OpenAI Lamp"}, role="fake", task="chat"),
                     rng=random.Random(seed))
    return _encode(doc).decode()


def _frame(payload: Any) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"


def _error(
    status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(body=_encode(body), status=status, content_type="application/json", headers=headers)
