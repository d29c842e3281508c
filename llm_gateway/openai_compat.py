"""An OpenAI-compatible front end on the gateway: `POST /v1/chat/completions`, `GET /v1/models[/{id}]`, embeddings.

Any OpenAI SDK pointed at `http://<gateway>/v1` goes through the same routing, fallbacks, mock mode and
structured output as the native `/api/v1/llm/generate`. `model` is either a route alias,
`role:<role>[/task:<task>][/quality:<quality>]` (task defaults to `chat`), or a configured model name,
which is served by the first route whose primary target uses it. Every answer (and every chunk) names the
`model` the client asked for; the model that answered is in `x-gateway-model` (and `x-gateway-provider`).

Errors are OpenAI's (see openai_errors.py). A stream sends nothing until its first piece exists, so a failure
before it is an ordinary HTTP error; a streamed answer with a `response_format` is validated before its
content is sent, so a stream never delivers an answer the gateway would reject.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from time import perf_counter
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service_common.deadline import request_timeout
from service_common.http import decode_body
from service_common.metrics import label_request
from service_common.modes import requested_mode, requested_scenario
from shared_contracts._base import Outbound
from shared_contracts.errors import GatewayError, InvalidRequest, NoRoute
from shared_contracts.llm import GenerateOptions, GenerateRequest, GenerateResponse, Mode, RouteInfo, StreamDelta
from shared_contracts.scenarios import LLM_SCENARIOS, Scenario

from .gateway import Gateway
from .openai_convert import completion_message, finish_reason, native_request, wire_logprobs, wire_tool_calls
from .openai_errors import openai_error
from .openai_wire import ChatCompletionRequest, decode_chat
from .plan import GatewayStream, Plan
from .streaming import DeadlineStream, first_item, resumed

__all__ = ["ALIAS_PREFIX", "DEFAULT_TASK", "ChatCompletionRequest", "openai_routes", "system_fingerprint"]

ALIAS_PREFIX = "role:"
DEFAULT_TASK = "chat"
_OWNER = "llm-gateway"
_encode = msgspec.json.Encoder().encode
_Item = StreamDelta | GenerateResponse


class _Model(Outbound, kw_only=True):
    id: str
    object: str = "model"
    created: int
    owned_by: str = _OWNER


class _ModelList(Outbound, kw_only=True):
    object: str = "list"
    data: list[_Model]


def system_fingerprint(mode: Mode) -> str:
    """`system_fingerprint` says which mode answered (`fp_mock`, `fp_live`, `fp_replay`): a mock answer names
    the model the live route would use, so the fingerprint (and the `X-Generator-Mode` header) tell it apart."""
    return f"fp_{mode}"


def _usage(responses: list[GenerateResponse]) -> dict[str, int] | None:
    """OpenAI's usage over all choices, or None (`"usage": null`) when a provider did not report a count:
    OpenAI's schema has no place for an unknown count, and a made-up 0 would be read as a real one."""
    counts = [(r.usage.input_tokens, r.usage.output_tokens) for r in responses]
    if any(i is None or o is None for i, o in counts):
        return None
    prompt = sum(i or 0 for i, _ in counts[:1])  # the same prompt for every choice: counted once, as OpenAI does
    completion = sum(o or 0 for _, o in counts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _resolved(model: str, provider: str) -> dict[str, str]:
    return {"x-gateway-model": model, "x-gateway-provider": provider}


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

    def _model_ids(self) -> dict[str, str]:
        """Every id `model` may be, with who owns it: route aliases, then every primary model, in match order."""
        ids: dict[str, str] = {}
        for route in self._routes():
            for role in route.role or []:
                ids.setdefault(f"{ALIAS_PREFIX}{role}", _OWNER)
        for route in self._routes():
            ids.setdefault(route.model, route.provider)
        return ids

    async def models(self, request: Request) -> Response:
        """Route aliases (`role:<role>` per role a rule names) and every primary model, in match order."""
        data = [_Model(id=name, created=self.created, owned_by=owner) for name, owner in self._model_ids().items()]
        return Response(_encode(_ModelList(data=data)), media_type="application/json")

    async def model(self, request: Request) -> Response:
        """One model: any listed id, or any alias that resolves to a route; else 404 model_not_found."""
        name = request.path_params["model"]
        owner = self._model_ids().get(name)
        if owner is None:
            role, task, quality = self._addressing(name)
            self.gateway.router.resolve(role, task, quality)
            owner = _OWNER
        return Response(_encode(_Model(id=name, created=self.created, owned_by=owner)), media_type="application/json")

    def _addressing(self, model: str) -> tuple[str, str, str | None]:
        """`model` → (role, task, quality) for the router."""
        if model.startswith(ALIAS_PREFIX):
            parts: dict[str, str] = {}
            for segment in model.split("/"):
                key, sep, value = segment.partition(":")
                if not sep or not value or key not in ("role", "task", "quality") or key in parts:
                    raise InvalidRequest(
                        f"model {model!r}: expected role:<role>[/task:<task>][/quality:<quality>]",
                        details={"param": "model"},
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
            f"The model {model!r} does not exist; GET /v1/models lists the route aliases and models",
            details={"model": model, "param": "model"},
        )

    def _native(self, body: ChatCompletionRequest) -> GenerateRequest:
        role, task, quality = self._addressing(body.model)
        return native_request(body, role=role, task=task, quality=quality)

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
            body = await decode_body(request, decode_chat, max_bytes=self.max_body)
            # Before the model is resolved, as on the native endpoint: a bad header is a 400 even for an unknown model.
            mode = requested_mode(request.headers, allowed=self.gateway.allow_mode_header)
            scenario = requested_scenario(request.headers, mode=mode or self.gateway.mode, known=LLM_SCENARIOS)
            native = self._native(body)
            if body.stream:
                return await self._stream(body, native, mode, timeout, scenario, started)
            choices = [self._with_seed(native, index) for index in range(body.n or 1)]
            responses = await asyncio.gather(
                *(self.gateway.generate(c, mode=mode, timeout=timeout, scenario=scenario) for c in choices)
            )
        except GatewayError as err:
            self._log(native, started, err.code, stream=bool(native and body.stream))
            raise
        first = responses[0]
        self._log(native, started, "ok", stream=False, mode=first.mode, provider=first.provider, model=first.model)
        legacy = bool(body.functions)
        completion = {
            "id": f"chatcmpl-{first.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": index,
                    "message": completion_message(response, legacy=legacy),
                    "logprobs": wire_logprobs(response.logprobs),
                    "finish_reason": finish_reason(response, legacy=legacy),
                }
                for index, response in enumerate(responses)
            ],
            "usage": _usage(list(responses)),
            "system_fingerprint": system_fingerprint(first.mode),
        }
        return Response(_encode(completion), media_type="application/json", headers=_resolved(first.model,
                                                                                              first.provider))

    @staticmethod
    def _with_seed(native: GenerateRequest, index: int) -> GenerateRequest:
        """Choice `index` of `n`: each after the first gets its own seed, so the choices differ as OpenAI's do."""
        if index == 0:
            return native
        options = native.options or GenerateOptions()
        seed = (options.seed or 0) + index
        return msgspec.structs.replace(native, options=msgspec.structs.replace(options, seed=seed))

    def _open(self, native: GenerateRequest, mode: Mode | None, timeout: float | None,
              scenario: Scenario | None) -> GatewayStream:
        if native.response_schema is None:
            return self.gateway.stream(native, mode=mode, timeout=timeout, scenario=scenario)
        # Validate before streaming: the content goes out once the gateway accepted (or repaired) it.
        plan = self.gateway.plan(native, mode=mode, timeout=timeout, scenario=scenario)
        deadline = asyncio.get_running_loop().time() + plan.timeout
        return GatewayStream(self._validated(plan), deadline)

    async def _stream(
        self,
        body: ChatCompletionRequest,
        native: GenerateRequest,
        mode: Mode | None,
        timeout: float | None,
        scenario: Scenario | None,
        started: float,
    ) -> Response:
        streams = [self._open(self._with_seed(native, i), mode, timeout, scenario) for i in range(body.n or 1)]
        # Nothing is sent before the first piece exists: an error until then is an ordinary HTTP error.
        try:
            first = await first_item(streams[0])
        except BaseException:
            for later in streams[1:]:
                await later.aclose()
            raise
        if isinstance(first, GenerateResponse):
            headers = _resolved(first.model, first.provider)
        else:
            attempt = streams[0].attempts[-1] if streams[0].attempts else None
            headers = _resolved(attempt.model, attempt.provider) if attempt else {}
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        chunks = self._chunks(streams, first, body, include_usage, native, started)
        return DeadlineStream(chunks, deadline=streams[0].deadline, on_cut=lambda: self._cut(native, started),
                              headers=headers)

    async def _validated(self, plan: Plan) -> AsyncGenerator[_Item, None]:
        """The plan's one validated (or repaired) answer, as a stream with no text pieces."""
        yield await self.gateway.run(plan)

    def _cut(self, native: GenerateRequest | None, started: float) -> None:
        """The client did not read the stream before the deadline: it was cut, the generation closed."""
        label_request(role=native.role if native else "", task=native.task if native else "", outcome="stream_cut")
        self._log(native, started, "stream_cut", stream=True)

    async def _chunks(
        self,
        streams: list[GatewayStream],
        first: _Item,
        body: ChatCompletionRequest,
        include_usage: bool,
        native: GenerateRequest,
        started: float,
    ) -> AsyncGenerator[bytes, None]:
        head: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.model,
            "system_fingerprint": system_fingerprint(self.gateway.mode),
        }
        legacy = bool(body.functions)

        def chunk(index: int, delta: Mapping[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
            choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return b"data: " + _encode({**head, "choices": [choice]}) + b"\n\n"

        answers: list[GenerateResponse] = []
        try:
            for index, pieces in enumerate(streams):
                # As OpenAI does, the first chunk of a choice carries the role and empty content.
                yield chunk(index, {"role": "assistant", "content": ""})
                streamed = False
                items = resumed(first, pieces, more=isinstance(first, StreamDelta)) if index == 0 else pieces
                async for item in items:
                    if isinstance(item, StreamDelta):
                        streamed = True
                        yield chunk(index, {"content": item.text})
                        continue
                    head["system_fingerprint"] = system_fingerprint(item.mode)
                    if not streamed and item.text:
                        # A validated answer (response_format) comes whole, after the gateway accepted it.
                        yield chunk(index, {"content": item.text})
                    if item.tool_calls and legacy:
                        yield chunk(index, {"function_call": wire_tool_calls(item.tool_calls[:1])[0]["function"]})
                    elif item.tool_calls:
                        calls = [{"index": n, **call} for n, call in enumerate(wire_tool_calls(item.tool_calls))]
                        yield chunk(index, {"tool_calls": calls})
                    yield chunk(index, {}, finish_reason(item, legacy=legacy), wire_logprobs(item.logprobs))
                    answers.append(item)
            if include_usage:
                yield b"data: " + _encode({**head, "choices": [], "usage": _usage(answers)}) + b"\n\n"
            last = answers[-1]
            self._log(native, started, "ok", stream=True, mode=last.mode, provider=last.provider, model=last.model)
            yield b"data: [DONE]\n\n"
        except GatewayError as err:
            # Headers are sent: the error travels as a data frame, which OpenAI SDKs raise as APIError.
            self._log(native, started, err.code, stream=True)
            yield b"data: " + _encode({"error": openai_error(err.to_body())}) + b"\n\n"
        except Exception as exc:
            # The status line is already sent, so this is the outermost handler the stream has.
            self.log.error("openai_stream_failed", exc_info=exc)
            error = openai_error(GatewayError("internal error").to_body())
            yield b"data: " + _encode({"error": error}) + b"\n\n"
        finally:
            for pieces in streams:
                await pieces.aclose()


def openai_routes(gateway: Gateway, *, max_body: int) -> list[Route]:
    """The `/v1/...` routes, to add to the app's route list."""
    endpoints = _ChatEndpoints(gateway, max_body=max_body)
    return [
        Route("/v1/chat/completions", endpoints.chat, methods=["POST"]),
        Route("/v1/models", endpoints.models, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoints.model, methods=["GET"]),
    ]
