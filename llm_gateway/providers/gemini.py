"""Google Gemini API, `POST {base_url}/v1beta/models/{model}:generateContent` with `x-goog-api-key`.

Streaming uses `:streamGenerateContent?alt=sse`, where every event is a partial GenerateContentResponse.
A blocked prompt is a 200 without candidates (only `promptFeedback.blockReason`): a clear rejection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import msgspec

from service_common.providers import KeyedProvider, KeyedSettings
from service_common.providers.bodies import merge_extra
from service_common.providers.cloud_errors import gemini_error
from service_common.providers.gemini_wire import (
    BLOCKED_FINISH_REASONS,
    Candidate,
    GenerateContentResponse,
    UsageMetadata,
    decode_response,
)
from shared_contracts.errors import InvalidOutput, UpstreamError, UpstreamRejected
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, ToolCall

from .base import Delta, EmbedCall, EmbedResult, Provider, ProviderCall, ProviderResult

__all__ = ["GeminiProvider", "GeminiSettings"]


class GeminiSettings(KeyedSettings, kw_only=True, frozen=True):
    """YAML section of a Gemini provider."""

    base_url: str = "https://generativelanguage.googleapis.com"
    api_key_env: str = "GEMINI_API_KEY"
    api_version: str = "v1beta"
    # responseJsonSchema takes full JSON Schema ($defs, $ref); responseSchema only an OpenAPI subset.
    schema_field: Literal["responseJsonSchema", "responseSchema"] = "responseJsonSchema"


_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


class _Embedding(msgspec.Struct):
    values: list[float]


class _Embeddings(msgspec.Struct):
    embeddings: list[_Embedding]


class GeminiProvider(KeyedProvider, Provider):
    """Gemini text generation with JSON-schema output and SSE streaming."""

    Settings = GeminiSettings
    settings: GeminiSettings
    error_mapper = staticmethod(gemini_error)
    features = frozenset({"tools", "embeddings"})
    bounds_itself = True  # one HttpClient call per try

    def auth_headers(self, key: str) -> Mapping[str, str]:
        return {"x-goog-api-key": key}

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        raw = await self.client.post_json(self._url(call, "generateContent"), self._body(call), deadline=deadline)
        reply = self._decode(raw)
        if not reply.candidates:
            raise self._blocked(reply)
        candidate = reply.candidates[0]
        text = _text(candidate)
        calls = _calls(candidate, self.name, 0)
        if not text and not calls and candidate.finish_reason in BLOCKED_FINISH_REASONS:
            raise self._blocked(reply)
        return _with_calls(self._result(text, candidate.finish_reason, reply.usage_metadata), calls)

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        pieces: list[str] = []
        calls: list[ToolCall] = []
        finish: str | None = None
        usage: UsageMetadata | None = None
        url = self._url(call, "streamGenerateContent") + "?alt=sse"
        async for event in self.client.post_sse(url, self._body(call), deadline=deadline):
            chunk = self._decode(event.data.encode())
            if chunk.block_reason:
                raise self._blocked(chunk)
            usage = chunk.usage_metadata or usage  # cumulative; the last chunk has the totals
            for candidate in chunk.candidates[:1]:
                piece = _text(candidate)
                calls += _calls(candidate, self.name, len(calls))
                if piece:
                    pieces.append(piece)
                    yield Delta(piece)
                finish = candidate.finish_reason or finish
        if finish is None:
            raise UpstreamError(f"{self.name}: the stream ended early", details={"provider": self.name})
        if not pieces and not calls and finish in BLOCKED_FINISH_REASONS:
            raise self._blocked(GenerateContentResponse(candidates=[Candidate(finish_reason=finish)]))
        yield _with_calls(self._result("".join(pieces), finish, usage), calls)

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        """`:batchEmbedContents`, one request per text; Gemini reports no token count (null)."""
        model = call.model.removeprefix("models/")
        requests = []
        for text in call.texts:
            item: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
            if call.dimensions is not None:
                item["outputDimensionality"] = call.dimensions
            requests.append(merge_extra(item, call.extra))
        url = f"{self.base_url}/{self.settings.api_version}/models/{model}:batchEmbedContents"
        raw = await self.client.post_json(url, {"requests": requests}, deadline=deadline)
        try:
            reply = msgspec.json.decode(raw, type=_Embeddings)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable embeddings", details={"provider": self.name}) from exc
        return EmbedResult(vectors=[e.values for e in reply.embeddings], input_tokens=None)

    async def health(self, *, deadline: float) -> None:
        await self.client.call(
            "GET", f"{self.base_url}/{self.settings.api_version}/models?pageSize=1", deadline=deadline
        )

    def _url(self, call: ProviderCall, method: str) -> str:
        model = call.model.removeprefix("models/")
        return f"{self.base_url}/{self.settings.api_version}/models/{model}:{method}"

    def _body(self, call: ProviderCall) -> dict[str, Any]:
        opts = call.options
        system = [m.content for m in call.messages if m.role == "system"]
        body: dict[str, Any] = {"contents": _contents(call.messages)}
        if call.tools:
            body["tools"] = [{"functionDeclarations": [
                {"name": t.name, "parametersJsonSchema": t.parameters,
                 **({"description": t.description} if t.description else {})}
                for t in call.tools
            ]}]
            body["toolConfig"] = {"functionCallingConfig": _calling(call)}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config = {
            "maxOutputTokens": opts.max_tokens,
            "temperature": opts.temperature,
            "topP": opts.top_p,
            "seed": opts.seed,
            "stopSequences": opts.stop,
        }
        generation: dict[str, Any] = {k: v for k, v in config.items() if v is not None}
        if call.response_schema is not None:
            generation["responseMimeType"] = "application/json"
            generation[self.settings.schema_field] = call.response_schema
        if generation:
            body["generationConfig"] = generation
        return merge_extra(body, call.extra)

    def _decode(self, raw: bytes) -> GenerateContentResponse:
        try:
            reply = decode_response.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        if reply.error is not None:
            # An error after the 200 header arrives as a data frame; it is an upstream failure.
            raise self.client.error(int(reply.error.get("code") or 500), msgspec.json.encode({"error": reply.error}))
        return reply

    def _blocked(self, reply: GenerateContentResponse) -> UpstreamRejected:
        reason = reply.block_reason
        where = "prompt"
        if reason is None and reply.candidates:
            reason, where = reply.candidates[0].finish_reason, "answer"
        return UpstreamRejected(
            f"{self.name}: the {where} was blocked ({reason or 'no candidates'})",
            details={"provider": self.name, "reason": "blocked", "block_reason": reason or "UNSPECIFIED"},
        )

    def _result(self, text: str, finish: str | None, usage: UsageMetadata | None) -> ProviderResult:
        if usage is None:
            # No usageMetadata at all: the counts are unknown. (Inside it, an absent count is proto3's 0.)
            return ProviderResult(
                text=text, finish_reason=_FINISH.get(finish or "STOP", "stop"), input_tokens=None, output_tokens=None
            )
        return ProviderResult(
            text=text,
            finish_reason=_FINISH.get(finish or "STOP", "stop"),
            input_tokens=usage.prompt_token_count,
            # Thinking tokens are billed as output, so they count as output here too.
            output_tokens=usage.candidates_token_count + usage.thoughts_token_count,
        )


def _text(candidate: Candidate) -> str:
    # Every text part counts, except thought summaries, which are not the answer.
    return "".join(p.text for p in candidate.answer_parts() if p.text)


def _calling(call: ProviderCall) -> dict[str, Any]:
    choice = call.tool_choice
    if isinstance(choice, NamedToolChoice):
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"required": "ANY", "none": "NONE"}.get(str(choice), "AUTO")}


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    """Gemini's turns: calls as `functionCall` parts of a model turn, results as `functionResponse` parts."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "", "tool")
            part = {"functionResponse": {"name": name, "response": {"result": m.content}}}
            if out and out[-1]["role"] == "user" and "functionResponse" in out[-1]["parts"][-1]:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
            continue
        parts: list[dict[str, Any]] = [{"text": m.content}] if m.content or not m.tool_calls else []
        for c in m.tool_calls or []:
            names[c.id] = c.name
            parts.append({"functionCall": {"name": c.name, "args": c.arguments}})
        out.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    return out


def _calls(candidate: Candidate, provider: str, start: int) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for part in candidate.answer_parts():
        found = part.function_call
        if found is None:
            continue
        name, args = found.get("name"), found.get("args", {})
        if not isinstance(name, str) or not isinstance(args, dict):
            raise InvalidOutput(f"{provider}: a function call without a name or object args",
                                details={"provider": provider})
        given = found.get("id")
        calls.append(ToolCall(id=given if isinstance(given, str) and given else f"call_{start + len(calls)}_{name}",
                              name=name, arguments=args))
    return calls


def _with_calls(result: ProviderResult, calls: list[ToolCall]) -> ProviderResult:
    if calls:
        result.tool_calls, result.finish_reason = calls, "tool_calls"
    return result
