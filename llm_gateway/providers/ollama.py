"""Ollama over its REST API: `POST /api/chat` (one JSON body, or NDJSON when streaming), health `GET /api/version`.

Errors arrive as `{"error": "..."}`, with an HTTP status or as a line in a 200 stream; each becomes a
`shared_contracts.errors` class here: 404 (unknown model) and other 4xx -> upstream_rejected, 401/403 ->
upstream_unauthorized, 429 -> rate_limited, 5xx and error lines -> upstream_error, malformed body ->
upstream_error, connection failure -> provider_unavailable, deadline -> upstream_timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import msgspec

from service_common.client import HttpClient
from service_common.retry import retry_after_seconds
from shared_contracts.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnauthorized,
)

from .base import Delta, EmbedCall, EmbedResult, Provider, ProviderCall, ProviderResult, ProviderSettings
from .ollama_tools import forced_call, ollama_message, ollama_tools, parse_calls

__all__ = ["OllamaProvider", "OllamaSettings", "ollama_error"]


class OllamaSettings(ProviderSettings, frozen=True):
    """`base_url` of the Ollama server; `keep_alive` as Ollama takes it (`"5m"`, seconds, `-1`)."""

    base_url: str = "http://localhost:11434"
    keep_alive: str | int | None = None
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64
    # Sent on every call, e.g. for an authenticating proxy in front of Ollama.
    headers: dict[str, str] = {}


class _ChatBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    format: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | int | None = None
    tools: list[dict[str, Any]] | None = None


class _ReplyMessage(msgspec.Struct):
    content: str = ""
    tool_calls: list[Any] | None = None


class _Chunk(msgspec.Struct):
    """One Ollama reply object (whole reply or NDJSON line); unknown upstream fields are ignored."""

    message: _ReplyMessage | None = None
    done: bool = False
    done_reason: str | None = None
    # Absent counts stay unknown (None): Ollama leaves them out, e.g. when its prompt cache served the prompt.
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: str | None = None


class _ErrorBody(msgspec.Struct):
    error: str | None = None


_encode = msgspec.json.Encoder().encode
_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_decode_error = msgspec.json.Decoder(_ErrorBody).decode


class _Embeddings(msgspec.Struct):
    embeddings: list[list[float]]
    prompt_eval_count: int | None = None


_decode_embed = msgspec.json.Decoder(_Embeddings).decode
# Provider-neutral option -> Ollama option.
_OPTION_NAMES = (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"), ("stop", "stop"),
                 ("max_tokens", "num_predict"))


def ollama_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """`{"error": "..."}` with an error status: 404 is how Ollama says the model is not pulled."""
    try:
        message = _decode_error(raw).error or ""
    except msgspec.DecodeError:
        message = raw[:200].decode(errors="replace")
    details = {"provider": name, "status": status, "upstream_error": message}
    text = f"{name} answered {status}: {message}" if message else f"{name} answered {status}"
    if status in (401, 403):
        return UpstreamUnauthorized(text, details=details)
    if status == 429:
        return RateLimited(text, details=details, retry_after=retry_after_seconds(headers))
    if 400 <= status < 500:
        return UpstreamRejected(text, details=details)
    return UpstreamError(text, details=details)


class OllamaProvider(Provider):
    """Real Ollama provider over one pooled HttpClient."""

    Settings = OllamaSettings
    features = frozenset({"tools", "embeddings"})
    bounds_itself = True  # one HttpClient call per try

    def __init__(self, name: str, settings: OllamaSettings) -> None:
        super().__init__(name, settings)
        if not settings.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {settings.base_url!r}")
        if "," in settings.base_url:
            raise ValueError("base_url lists several instances: use class llm_gateway.providers.ollama_pool:OllamaPool")
        self._settings = settings
        # The caller's deadline bounds each call; connecting has its own cap.
        self.client = HttpClient(
            name,
            base_url=settings.base_url,
            headers=settings.headers,
            on_error=ollama_error,
            max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout,
            # A generation changes nothing upstream, so a request dropped unanswered may be sent again.
            replayable=True,
        )

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    def _body(self, call: ProviderCall, *, stream: bool) -> bytes:
        options: dict[str, Any] = {}
        keep_alive = self._settings.keep_alive
        for key, value in call.extra.items():
            if key == "keep_alive":
                keep_alive = value
            else:
                options[key] = value  # e.g. num_ctx from the route's `extra`
        opts = call.options
        for ours, theirs in _OPTION_NAMES:
            value = getattr(opts, ours)
            if value is not None:
                options[theirs] = value
        names: dict[str, str] = {}
        tools, forced = ollama_tools(call)
        body = _ChatBody(
            model=call.model,
            messages=[ollama_message(m, names) for m in call.messages],
            stream=stream,
            format=forced.schema if forced is not None else call.response_schema,
            options=options or None,
            keep_alive=keep_alive,
            tools=tools,
        )
        return _encode(body)

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        try:
            reply = await self.client.call("POST", "/api/chat", body=self._body(call, stream=False), deadline=deadline)
        except GatewayError as err:
            # Errors name the model too: with fallbacks, several models of one provider may be tried.
            err.details.setdefault("model", call.model)
            raise
        chunk = self._parse(reply.body, call)
        text = chunk.message.content if chunk.message else ""
        return self._with_calls(call, _result(chunk, text), (chunk.message.tool_calls if chunk.message else None) or [])

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        # No yield happens inside a read's deadline: a timeout must never fire while the consumer holds control.
        pieces: list[str] = []
        final: _Chunk | None = None
        raw_calls: list[Any] = []
        # A forced call's JSON is the call, not text: it is not streamed as deltas.
        forced = ollama_tools(call)[1] is not None
        try:
            body = self._body(call, stream=True)
            async with self.client.stream("POST", "/api/chat", body=body, deadline=deadline) as answer:
                while final is None:
                    line = await answer.readline()
                    if not line:
                        raise UpstreamError(
                            f"{self.name}: stream ended before its final line", details=self._where(call)
                        )
                    if not line.strip():
                        continue
                    chunk = self._parse(line, call)
                    text = chunk.message.content if chunk.message else ""
                    raw_calls += (chunk.message.tool_calls if chunk.message else None) or []
                    if text:
                        pieces.append(text)
                        if not forced:
                            yield Delta(text)
                    if chunk.done:
                        final = chunk
        except GatewayError as err:
            err.details.setdefault("model", call.model)
            raise
        yield self._with_calls(call, _result(final, "".join(pieces)), raw_calls)

    def _with_calls(self, call: ProviderCall, result: ProviderResult, raw: list[Any]) -> ProviderResult:
        """The result with its tool calls: those Ollama sent, or the forced one its `format` answer stands for."""
        forced = ollama_tools(call)[1]
        calls = forced_call(result.text, forced, self.name) if forced is not None else parse_calls(raw, self.name)
        if calls:
            result.tool_calls, result.text, result.finish_reason = calls, "" if forced else result.text, "tool_calls"
        return result

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        """`POST /api/embed`: `{"embeddings": [[...]], "prompt_eval_count"}`."""
        body: dict[str, Any] = {"model": call.model, "input": call.texts, **dict(call.extra)}
        if call.dimensions is not None:
            body["dimensions"] = call.dimensions
        if self._settings.keep_alive is not None:
            body.setdefault("keep_alive", self._settings.keep_alive)
        try:
            reply = await self.client.call("POST", "/api/embed", body=_encode(body), deadline=deadline)
            answer = _decode_embed(reply.body)
        except GatewayError as err:
            err.details.setdefault("model", call.model)
            raise
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: malformed embeddings", details={"provider": self.name}) from exc
        return EmbedResult(vectors=answer.embeddings, input_tokens=answer.prompt_eval_count)

    async def health(self, *, deadline: float) -> None:
        reply = await self.client.request("GET", "/api/version", deadline=deadline)
        if reply.status != 200:
            raise UpstreamError(f"{self.name}: /api/version answered {reply.status}", details={"status": reply.status})

    def _where(self, call: ProviderCall) -> dict[str, Any]:
        return {"provider": self.name, "model": call.model}

    def _parse(self, raw: bytes, call: ProviderCall) -> _Chunk:
        try:
            chunk = _decode_chunk(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(
                f"{self.name}: malformed reply: {exc}",
                details={**self._where(call), "sample": raw[:200].decode(errors="replace")},
            ) from exc
        if chunk.error is not None:
            details = {**self._where(call), "upstream_error": chunk.error}
            raise UpstreamError(f"{self.name}: {chunk.error}", details=details)
        return chunk


def _result(chunk: _Chunk, text: str) -> ProviderResult:
    return ProviderResult(
        text=text,
        finish_reason=chunk.done_reason or "stop",
        input_tokens=chunk.prompt_eval_count,
        output_tokens=chunk.eval_count,
    )
