"""Smoke tests straight against a real llama-server (no project code): what the gateway can rely on.

The model is a tiny random-weight llama (see tiny_model.py): free text is gibberish, but a JSON-schema
`response_format` makes llama.cpp's grammar sampler produce valid JSON. Needs `.ci/llama_server.sh`
to have built the binary and `gguf` to be installed (else these tests skip; see fixtures.py).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import jsonschema
import pytest

from tests.upstreams.llama_server import LlamaServer

# Until tests/conftest.py lists it; registering a plugin twice is harmless (pytest skips the second).

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "Say hi."}]

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "kind": {"enum": ["cat", "dog", "fish"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        "ok": {"type": "boolean"},
        "version": {"const": 2},
    },
    "required": ["name", "age", "kind", "tags", "ok", "version"],
    "additionalProperties": False,
}


def json_schema_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    """OpenAI's `response_format` for a JSON schema."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


async def post_json(base_url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `body` to the chat endpoint on a fresh session; (status, parsed JSON body)."""
    async with aiohttp.ClientSession() as session, session.post(base_url + CHAT, json=body) as resp:
        return resp.status, await resp.json()


async def chat(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat completion that must answer 200."""
    status, data = await post_json(base_url, body)
    assert status == 200, data
    return data


async def read_sse(resp: aiohttp.ClientResponse) -> list[str]:
    """The `data:` payloads of an SSE response, in order (the last one is `[DONE]`)."""
    payloads: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            payloads.append(line[len("data:") :].strip())
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return payloads


async def stream_chat(base_url: str, body: dict[str, Any]) -> tuple[aiohttp.ClientResponse, list[str]]:
    """A streamed chat completion on a fresh session: (response, SSE `data:` payloads)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + CHAT, json={**body, "stream": True}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return resp, await read_sse(resp)


# -- plain endpoints ----------------------------------------------------------------------------------


async def test_health_models_and_404(llama_server: LlamaServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(llama_server.base_url + "/health") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}
        async with session.get(llama_server.base_url + "/v1/models") as resp:
            assert resp.status == 200
            models = await resp.json()
        async with session.get(llama_server.base_url + "/no/such/path") as resp:
            assert resp.status == 404
            assert resp.headers.get("Connection") == "close"
            assert await resp.json() == {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
    assert models["object"] == "list"
    [model] = models["data"]
    assert model["id"] == str(llama_server.model)  # the --model path, as given
    assert model["owned_by"] == "llamacpp"
    assert model["meta"]["n_vocab"] == 32000


# -- chat completions -----------------------------------------------------------------------------------


async def test_plain_chat_completion(llama_server: LlamaServer) -> None:
    data = await chat(llama_server.base_url, {"messages": HI, "max_tokens": 8, "seed": 1})
    assert data["object"] == "chat.completion"
    [choice] = data["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    usage = data["usage"]
    assert usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_max_tokens_gives_finish_reason_length(llama_server: LlamaServer) -> None:
    data = await chat(llama_server.base_url, {"messages": HI, "max_tokens": 5, "seed": 3})
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 5


async def test_same_seed_same_answer(llama_server: LlamaServer) -> None:
    body = {"messages": HI, "max_tokens": 12, "seed": 42}
    first = await chat(llama_server.base_url, body)
    second = await chat(llama_server.base_url, body)
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


async def test_streamed_chat_completion(llama_server: LlamaServer) -> None:
    resp, payloads = await stream_chat(llama_server.base_url, {"messages": HI, "max_tokens": 6, "seed": 1})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)  # no usage unless stream_options.include_usage
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    # the same seed without streaming gives the same text
    data = await chat(llama_server.base_url, {"messages": HI, "max_tokens": 6, "seed": 1})
    assert data["choices"][0]["message"]["content"] == text


async def test_streamed_usage_with_include_usage(llama_server: LlamaServer) -> None:
    body = {"messages": HI, "max_tokens": 4, "seed": 2, "stream_options": {"include_usage": True}}
    _, payloads = await stream_chat(llama_server.base_url, body)
    assert payloads[-1] == "[DONE]"
    last = json.loads(payloads[-2])
    assert last["choices"] == []  # OpenAI's shape: a final chunk with usage and no choices
    assert last["usage"]["completion_tokens"] == 4
    assert json.loads(payloads[-3])["choices"][0]["finish_reason"] == "length"


# -- structured output ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_json_schema_output_validates(llama_server: LlamaServer, seed: int) -> None:
    body = {"messages": HI, "max_tokens": 400, "seed": seed, "response_format": json_schema_format(PERSON_SCHEMA)}
    data = await chat(llama_server.base_url, body)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    value = json.loads(choice["message"]["content"])
    jsonschema.validate(value, PERSON_SCHEMA)


async def test_json_object_with_schema_is_constrained_too(llama_server: LlamaServer) -> None:
    """llama.cpp also takes `{"type": "json_object", "schema": ...}` (not OpenAI's shape)."""
    body = {
        "messages": HI,
        "max_tokens": 400,
        "seed": 7,
        "response_format": {"type": "json_object", "schema": PERSON_SCHEMA},
    }
    data = await chat(llama_server.base_url, body)
    jsonschema.validate(json.loads(data["choices"][0]["message"]["content"]), PERSON_SCHEMA)


async def test_streamed_json_schema_output_validates(llama_server: LlamaServer) -> None:
    body = {"messages": HI, "max_tokens": 400, "seed": 3, "response_format": json_schema_format(PERSON_SCHEMA)}
    _, payloads = await stream_chat(llama_server.base_url, body)
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    jsonschema.validate(json.loads(text), PERSON_SCHEMA)


PREFIX_ITEMS = [{"const": "a"}, {"const": 1}]


async def test_prefix_items_are_ignored_when_items_is_present(llama_server: LlamaServer) -> None:
    """llama.cpp builds an array's grammar from `items` alone when both keywords are there.

    JSON Schema 2020-12 means: first "a", then 1, then booleans. llama.cpp's grammar only knows "every
    element is a boolean", so with at least one element the answer can never validate.
    """
    schema = {"type": "array", "prefixItems": PREFIX_ITEMS, "items": {"type": "boolean"}, "minItems": 1}
    for seed in (1, 2, 3):
        data = await chat(
            llama_server.base_url,
            {"messages": HI, "max_tokens": 100, "seed": seed, "response_format": json_schema_format(schema)},
        )
        value = json.loads(data["choices"][0]["message"]["content"])
        assert isinstance(value, list) and value, value
        assert all(isinstance(v, bool) for v in value), value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema).validate(value)


async def test_prefix_items_alone_is_an_exact_tuple(llama_server: LlamaServer) -> None:
    """Without `items`, `prefixItems` becomes a fixed tuple: exactly ["a", 1] (no more, no fewer)."""
    schema = {"type": "array", "prefixItems": PREFIX_ITEMS}
    for seed in (1, 2, 3):
        data = await chat(
            llama_server.base_url,
            {"messages": HI, "max_tokens": 100, "seed": seed, "response_format": json_schema_format(schema)},
        )
        assert json.loads(data["choices"][0]["message"]["content"]) == ["a", 1]


async def test_items_false_is_rejected(llama_server: LlamaServer) -> None:
    """`"items": false` (the usual way to close a 2020-12 tuple) is a 400, not a closed tuple."""
    schema = {"type": "array", "prefixItems": PREFIX_ITEMS, "items": False}
    status, data = await post_json(
        llama_server.base_url, {"messages": HI, "max_tokens": 20, "response_format": json_schema_format(schema)}
    )
    assert status == 400
    assert "schema must be an object" in data["error"]["message"]


# -- connection behaviour -------------------------------------------------------------------------------


def _raw_exchange(port: int, body: dict[str, Any]) -> tuple[bytes, bool]:
    """One HTTP/1.1 POST on a raw socket; (response head, whether the server closed right after the body)."""
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        if b"transfer-encoding: chunked" in lines:
            while not rest.endswith(b"\r\n0\r\n\r\n"):
                more = sock.recv(65536)
                assert more, "EOF before the last chunk"
                rest += more
        else:
            length = int(next(x for x in lines if x.startswith(b"content-length:")).split(b":")[1])
            while len(rest) < length:
                rest += sock.recv(65536)
        sock.settimeout(1.0)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return head, closed


async def test_server_closes_connection_after_a_streamed_response(llama_server: LlamaServer) -> None:
    """Known llama-server behaviour: after an SSE response it closes the socket, though it said keep-alive.

    Its chunked content provider returns false after the last chunk, which cpp-httplib takes as
    "cancelled" and closes the connection; the headers ("Keep-Alive: timeout=5, max=100", no
    "Connection: close") were sent before. A client that reuses the pooled connection at once gets
    aiohttp's ClientOSError / ServerDisconnectedError on its next POST. Non-streamed responses keep the
    connection open. If this test fails, llama.cpp fixed it.
    """
    body = {"messages": HI, "max_tokens": 3, "seed": 1}
    head, closed = await asyncio.to_thread(_raw_exchange, llama_server.port, {**body, "stream": True})
    assert b"keep-alive: timeout=5, max=100" in head.lower()
    assert b"connection: close" not in head.lower()
    assert closed
    head, closed = await asyncio.to_thread(_raw_exchange, llama_server.port, body)
    assert b"keep-alive: timeout=5, max=100" in head.lower()
    assert not closed


async def test_connection_close_header_avoids_the_reuse_error(llama_server: LlamaServer) -> None:
    """Sending `Connection: close` on streamed requests keeps the next POST on the session working."""
    body = {"messages": HI, "max_tokens": 3, "seed": 1}
    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.post(
                llama_server.base_url + CHAT, json={**body, "stream": True}, headers={"Connection": "close"}
            ) as resp:
                assert (await read_sse(resp))[-1] == "[DONE]"
            async with session.post(llama_server.base_url + CHAT, json=body) as resp:
                assert resp.status == 200


# -- faults (a server of the test's own) --------------------------------------------------------------------


async def test_frozen_server_hangs_then_recovers(llama_server_factory: Callable[..., LlamaServer]) -> None:
    server = llama_server_factory()
    body = {"messages": HI, "max_tokens": 3}
    server.freeze()
    try:
        async with aiohttp.ClientSession() as session:
            # the kernel still accepts the TCP connection; nothing ever answers
            with pytest.raises(asyncio.TimeoutError):
                async with session.post(server.base_url + CHAT, json=body, timeout=aiohttp.ClientTimeout(total=0.5)):
                    pass
    finally:
        server.thaw()
    assert (await chat(server.base_url, body))["choices"]


async def test_killed_server_refuses_connections(llama_server_factory: Callable[..., LlamaServer]) -> None:
    server = llama_server_factory()
    assert server.kill() == -9
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            async with session.post(server.base_url + CHAT, json={"messages": HI, "max_tokens": 3}):
                pass
    assert isinstance(info.value.os_error, ConnectionRefusedError)
    server.start()  # same port again
    assert (await chat(server.base_url, {"messages": HI, "max_tokens": 3}))["choices"]
