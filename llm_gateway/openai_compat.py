"""An OpenAI-compatible front end on the gateway: `POST /v1/chat/completions` and `GET /v1/models`.

Any OpenAI SDK pointed at `http://<gateway>/v1` goes through the same routing, fallbacks, mock mode and
structured output as the native `/api/v1/llm/generate`. `model` is either a route alias,
`role:<role>[/task:<task>][/quality:<quality>]` (task defaults to `chat`), or a configured model
name, which is served by the first route whose primary target uses it.

A streamed answer with a `response_format` is validated before its content is sent: the content arrives
in one chunk once the gateway has accepted (or repaired) it, so a stream never delivers an answer the
gateway would reject; one it still rejects ends with an error chunk and no content.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from time import perf_counter
from typing import Annotated, Any, Literal

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service_common.deadline import request_timeout
from service_common.http import decode_body
from service_common.metrics import label_request
from service_common.modes import requested_mode
from shared_contracts._base import Inbound, Outbound
from shared_contracts.errors import GatewayError, InvalidRequest, NoRoute
from shared_contracts.llm import GenerateRequest, GenerateResponse, RouteInfo, StreamDelta

from .gateway import Gateway, GatewayStream, Plan
from .streaming import DeadlineStream

__all__ = ["ALIAS_PREFIX", "DEFAULT_TASK", "ChatCompletionRequest", "openai_routes"]

ALIAS_PREFIX = "role:"
DEFAULT_TASK = "chat"
_OWNER = "llm-gateway"
_encode = msgspec.json.Encoder().encode


class _TextPart(Inbound):
    type: Literal["text"]
    text: str


class _ChatMessage(Inbound):
    # `developer` is the newer name OpenAI uses for `system`.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_TextPart] | None = None
    name: str | None = None


class _JsonSchema(Inbound):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class _ResponseFormat(Inbound):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class _StreamOptions(Inbound):
    include_usage: bool = False


class ChatCompletionRequest(Inbound):
    """The Chat Completions fields the gateway honours; unknown fields are rejected by name.

    `frequency_penalty`, `presence_penalty`, `user` and `logprobs: false` are accepted and ignored,
    since SDKs send them; tools, `n > 1` and log-probabilities are refused.
    """

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    messages: Annotated[list[_ChatMessage], msgspec.Meta(min_length=1)]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    response_format: _ResponseFormat | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    tools: list[dict[str, Any]] | None = None


class _Model(Outbound, kw_only=True):
    id: str
    object: str = "model"
    created: int
    owned_by: str = _OWNER


class _ModelList(Outbound, kw_only=True):
    object: str = "list"
    data: list[_Model]


class _Usage(Outbound, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


_decode_request = msgspec.json.Decoder(ChatCompletionRequest)


def _text(content: str | list[_TextPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.text for part in content)


def _usage(response: GenerateResponse) -> _Usage | None:
    """OpenAI's usage object, or None (sent as `"usage": null`) when the provider did not report both counts:
    OpenAI's schema has no place for an unknown count, and a made-up 0 would be read as a real one."""
    used = response.usage
    if used.input_tokens is None or used.output_tokens is None:
        return None
    return _Usage(
        prompt_tokens=used.input_tokens,
        completion_tokens=used.output_tokens,
        total_tokens=used.input_tokens + used.output_tokens,
    )


class _ChatEndpoints:
    """Handlers bound to one Gateway; each request logs one line (never the prompt)."""

    def __init__(self, gateway: Gateway, *, max_body: int) -> None:
        self.gateway = gateway
        self.max_body = max_body
        self.created = int(time.time())
        self.log = structlog.get_logger(component="openai_compat")

    def _routes(self) -> list[RouteInfo]:
        table = self.gateway.routing_table()
        return [*table.rules, *([table.default] if table.default else [])]

    async def models(self, request: Request) -> Response:
        """Route aliases (`role:<role>` per role a rule names) and every primary model, in match order."""
        ids: dict[str, None] = {}
        for route in self._routes():
            for role in route.role or []:
                ids[f"{ALIAS_PREFIX}{role}"] = None
        for route in self._routes():
            ids[route.model] = None
        body = _ModelList(data=[_Model(id=name, created=self.created) for name in ids])
        return Response(_encode(body), media_type="application/json")

    def _addressing(self, model: str) -> tuple[str, str, str | None]:
        """`model` → (role, task, quality) for the router."""
        if model.startswith(ALIAS_PREFIX):
            parts: dict[str, str] = {}
            for segment in model.split("/"):
                key, sep, value = segment.partition(":")
                if not sep or not value or key not in ("role", "task", "quality") or key in parts:
                    raise InvalidRequest(
                        f"model {model!r}: expected role:<role>[/task:<task>][/quality:<quality>]",
                        details={"field": "model"},
                    )
                parts[key] = value
            return parts["role"], parts.get("task", DEFAULT_TASK), parts.get("quality")
        for route in self._routes():
            if route.model == model:
                # The route's own first role/task/quality reach it (any value where the rule has none).
                role = route.role[0] if route.role else "openai"
                task = route.task[0] if route.task else DEFAULT_TASK
                return role, task, route.quality[0] if route.quality else None
        raise NoRoute(
            f"unknown model {model!r}; GET /v1/models lists the route aliases and models",
            details={"model": model},
        )

    def _generate_request(self, body: ChatCompletionRequest) -> GenerateRequest:
        if body.n not in (None, 1):
            raise InvalidRequest("only n=1 is supported", details={"field": "n"})
        if body.tools:
            raise InvalidRequest("tools are not supported by this gateway", details={"field": "tools"})
        if body.logprobs:
            raise InvalidRequest("logprobs are not supported by this gateway", details={"field": "logprobs"})
        role, task, quality = self._addressing(body.model)
        schema: dict[str, Any] | None = None
        if body.response_format is not None and body.response_format.type == "json_schema":
            spec = body.response_format.json_schema
            if spec is None or spec.schema is None:
                raise InvalidRequest(
                    "response_format.json_schema.schema is required", details={"field": "response_format"}
                )
            schema = spec.schema
        elif body.response_format is not None and body.response_format.type == "json_object":
            schema = {"type": "object"}
        raw: dict[str, Any] = {
            "role": role,
            "task": task,
            "quality": quality,
            "messages": [
                {"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
                for m in body.messages
            ],
            "response_schema": schema,
            "options": {
                "temperature": body.temperature,
                "top_p": body.top_p,
                "max_tokens": body.max_completion_tokens or body.max_tokens,
                "seed": body.seed,
                "stop": [body.stop] if isinstance(body.stop, str) else body.stop,
            },
            "metadata": body.metadata or {},
        }
        raw["options"] = {k: v for k, v in raw["options"].items() if v is not None}
        try:
            # Through convert, so the native request's limits (temperature <= 2, ...) apply here too.
            return msgspec.convert(raw, GenerateRequest)
        except msgspec.ValidationError as exc:
            raise InvalidRequest("invalid chat completion request", details={"reason": str(exc)}) from exc

    def _log(self, request: GenerateRequest | None, started: float, outcome: str, **fields: Any) -> None:
        self.log.info(
            "openai_chat",
            role=request.role if request else None,
            task=request.task if request else None,
            outcome=outcome,
            latency_ms=round((perf_counter() - started) * 1000, 3),
            **fields,
        )

    async def chat(self, request: Request) -> Response:
        started = perf_counter()
        native: GenerateRequest | None = None
        try:
            timeout = request_timeout(request.headers)
            body = await decode_body(request, _decode_request, max_bytes=self.max_body)
            # Before the model is resolved, as on the native endpoint: a bad header is a 400 even for an unknown model.
            mode = requested_mode(request.headers, allowed=self.gateway.allow_mode_header)
            native = self._generate_request(body)
            if body.stream:
                include_usage = body.stream_options is not None and body.stream_options.include_usage
                if native.response_schema is None:
                    pieces = self.gateway.stream(native, mode=mode, timeout=timeout)
                else:
                    # Validate before streaming: the content goes out once the gateway accepted (or repaired) it.
                    plan = self.gateway.plan(native, mode=mode, timeout=timeout)
                    deadline = asyncio.get_running_loop().time() + plan.timeout
                    pieces = GatewayStream(self._validated(plan), deadline)
                chunks = self._chunks(pieces, body.model, include_usage, native, started)
                return DeadlineStream(chunks, deadline=pieces.deadline, on_cut=lambda: self._cut(native, started))
            response = await self.gateway.generate(native, mode=mode, timeout=timeout)
        except GatewayError as err:
            self._log(native, started, err.code, stream=False)
            raise
        self._log(
            native, started, "ok", stream=False, mode=response.mode, provider=response.provider, model=response.model
        )
        completion = {
            "id": f"chatcmpl-{response.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": response.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": response.finish_reason,
                }
            ],
            "usage": _usage(response),
            "system_fingerprint": None,
        }
        return Response(_encode(completion), media_type="application/json")

    async def _validated(self, plan: Plan) -> AsyncGenerator[StreamDelta | GenerateResponse, None]:
        """The plan's one validated (or repaired) answer, as a stream with no text pieces."""
        yield await self.gateway.run(plan)

    def _cut(self, native: GenerateRequest | None, started: float) -> None:
        """The client did not read the stream before the deadline: it was cut, the generation closed."""
        label_request(role=native.role if native else "", task=native.task if native else "", outcome="stream_cut")
        self._log(native, started, "stream_cut", stream=True)

    async def _chunks(
        self,
        pieces: GatewayStream,
        model: str,
        include_usage: bool,
        native: GenerateRequest,
        started: float,
    ) -> AsyncGenerator[bytes, None]:
        head: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }

        def chunk(delta: Mapping[str, Any], finish: str | None = None, **more: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + _encode({**head, "choices": [choice], **more}) + b"\n\n"

        try:
            # As OpenAI does, the first chunk carries the role and empty content.
            yield chunk({"role": "assistant", "content": ""})
            streamed = False
            async for item in pieces:
                if isinstance(item, StreamDelta):
                    streamed = True
                    yield chunk({"content": item.text})
                    continue
                head["model"] = item.model
                if not streamed and item.text:
                    # A validated answer (response_format) comes whole, after the gateway accepted it.
                    yield chunk({"content": item.text})
                yield chunk({}, item.finish_reason)
                if include_usage:
                    yield b"data: " + _encode({**head, "choices": [], "usage": _usage(item)}) + b"\n\n"
                self._log(native, started, "ok", stream=True, mode=item.mode, provider=item.provider, model=item.model)
            yield b"data: [DONE]\n\n"
        except GatewayError as err:
            # Headers are sent: the error travels as a data frame, which OpenAI SDKs raise as APIError.
            self._log(native, started, err.code, stream=True)
            error = {"message": err.message, "type": err.code, "code": err.code, "param": None}
            yield b"data: " + _encode({"error": error}) + b"\n\n"
        except Exception as exc:
            # The status line is already sent, so this is the outermost handler the stream has.
            self.log.error("openai_stream_failed", exc_info=exc)
            error = {"message": "internal error", "type": "internal_error", "code": "internal_error", "param": None}
            yield b"data: " + _encode({"error": error}) + b"\n\n"
        finally:
            await pieces.aclose()


def openai_routes(gateway: Gateway, *, max_body: int) -> list[Route]:
    """The `/v1/...` routes, to add to the app's route list."""
    endpoints = _ChatEndpoints(gateway, max_body=max_body)
    return [
        Route("/v1/chat/completions", endpoints.chat, methods=["POST"]),
        Route("/v1/models", endpoints.models, methods=["GET"]),
    ]
