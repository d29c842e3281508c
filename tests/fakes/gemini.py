"""A fake Gemini API on 127.0.0.1: `:generateContent` and `:streamGenerateContent?alt=sse`, and `:batchEmbedContents`.

Enough of the protocol for the gateway's Gemini provider to be driven by real client SDKs: text answers,
JSON answers made from `generationConfig.responseJsonSchema`, function calls (`functionCallingConfig` AUTO,
ANY with `allowedFunctionNames`, NONE; AUTO calls until the last turn holds a `functionResponse`), usage
metadata, and embeddings. It records every request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize
from llm_gateway.providers.mock.vectors import unit_vector
from tests.fakes.server import FakeServer

__all__ = ["FakeGemini"]

_encode = msgspec.json.encode


def _synth(schema: dict[str, Any], seed: int) -> Any:
    return synthesize(schema, prose=Prose({"product_name": "Fake Gemini Lamp"}, role="fake", task="chat"),
                      rng=random.Random(seed))


@dataclass
class FakeGemini(FakeServer):
    """The fake server; `reply` is the model's text."""

    reply: str = "Fake Gemini answer about the lamp."

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{call}", self._call)

    def _parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        declared = [f for t in body.get("tools") or [] for f in t.get("functionDeclarations") or []]
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {"mode": "AUTO"}
        contents = body.get("contents") or []
        answered = bool(contents) and any("functionResponse" in p for p in contents[-1].get("parts", []))
        if declared and config["mode"] != "NONE" and (config["mode"] == "ANY" or not answered):
            allowed = config.get("allowedFunctionNames") or [declared[0]["name"]]
            function = next(f for f in declared if f["name"] in allowed)
            schema = function.get("parametersJsonSchema") or function.get("parameters") or {"type": "object"}
            return [{"functionCall": {"name": function["name"], "args": _synth(schema, len(contents))}}]
        schema = (body.get("generationConfig") or {}).get("responseJsonSchema")
        if schema is not None:
            return [{"text": _encode(_synth(schema, len(contents))).decode()}]
        return [{"text": self.reply}]

    async def _call(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        method = request.match_info["call"].rpartition(":")[2]
        if method == "batchEmbedContents":
            vectors = [unit_vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality") or 8)
                       for r in body["requests"]]
            return web.json_response({"embeddings": [{"values": v} for v in vectors]})
        parts = self._parts(body)
        usage = {"promptTokenCount": 21, "candidatesTokenCount": 8, "totalTokenCount": 29}
        if method == "generateContent":
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts},
                                                      "finishReason": "STOP", "index": 0}],
                                      "usageMetadata": usage, "modelVersion": "fake"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = parts
        if "text" in parts[0] and " " in parts[0]["text"]:
            head, _, tail = parts[0]["text"].partition(" ")
            pieces = [{"text": head + " "}, {"text": tail}]
        for index, part in enumerate(pieces):
            chunk: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
                                     "usageMetadata": usage}
            if index == len(pieces) - 1:
                chunk["candidates"][0]["finishReason"] = "STOP"
            await response.write(b"data: " + _encode(chunk) + b"\r\n\r\n")
        await response.write_eof()
        return response
