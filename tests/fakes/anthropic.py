"""A fake Anthropic Messages API on 127.0.0.1: `POST /v1/messages`, whole or as its SSE event sequence.

Enough of the protocol for the gateway's Anthropic provider to be driven by real client SDKs: text answers,
tool calls (`tool_use` blocks; `tool_choice` auto/any/tool/none; auto calls until the last turn holds a
`tool_result`), the structured-output tool's input made from its `input_schema`, usage counts. It records
every request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize
from tests.fakes.server import FakeServer

__all__ = ["FakeAnthropic"]

_encode = msgspec.json.encode


def _synth(schema: dict[str, Any], seed: int) -> Any:
    return synthesize(schema, prose=Prose({"product_name": "Fake Claude Lamp"}, role="fake", task="chat"),
                      rng=random.Random(seed))


@dataclass
class FakeAnthropic(FakeServer):
    """The fake server; `reply` is the assistant's text."""

    reply: str = "Fake Anthropic answer about the lamp."

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def _blocks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {"type": "auto"}
        messages = body.get("messages") or []
        last = messages[-1]["content"] if messages else ""
        answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
        kind = choice.get("type")
        if tools and kind != "none" and (kind in ("tool", "any") or not answered):
            tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
            args = _synth(tool.get("input_schema") or {"type": "object"}, len(messages))
            return [{"type": "tool_use", "id": f"toolu_fake{len(messages)}", "name": tool["name"], "input": args}]
        return [{"type": "text", "text": self.reply}]

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        blocks = self._blocks(body)
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        usage = {"input_tokens": 17, "output_tokens": 9}
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
                   "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return web.json_response(message)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await response.write(b"event: " + name.encode() + b"\ndata: " + _encode({"type": name, **data}) + b"\n\n")

        await event("message_start", {"message": {**message, "content": [], "stop_reason": None,
                                                  "usage": {"input_tokens": 17, "output_tokens": 1}}})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                await event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                for word in block["text"].split(" "):
                    await event("content_block_delta", {"index": index, "delta": {"type": "text_delta",
                                                                                 "text": word + " "}})
            else:
                start = {**block, "input": {}}
                await event("content_block_start", {"index": index, "content_block": start})
                text = _encode(block["input"]).decode()
                for cut in range(0, len(text), 9):
                    await event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta",
                                                                                 "partial_json": text[cut:cut + 9]}})
            await event("content_block_stop", {"index": index})
        await event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": 9}})
        await event("message_stop", {})
        await response.write_eof()
        return response
