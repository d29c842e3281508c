"""Shared pieces for the cloud provider tests: recorded payloads, a call, a deadline, request capture."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from aioresponses import aioresponses
from yarl import URL

from llm_gateway.providers.base import ProviderCall
from shared_contracts.llm import GenerateOptions, Message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY = "sk-test-0123456789abcdef0123456789abcdef"


def fixture(provider: str, name: str) -> bytes:
    """A recorded upstream body from tests/fixtures/<provider>/."""
    return (FIXTURES / provider / name).read_bytes()


def in_seconds(seconds: float) -> float:
    """An absolute deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + seconds


def make_call(**overrides: Any) -> ProviderCall:
    """A copywriter-style call with a system prompt, a user turn and every sampling option set."""
    fields: dict[str, Any] = {
        "model": "test-model",
        "messages": [
            Message(role="system", content="You write product copy."),
            Message(role="user", content="Describe the Aurora kettle."),
        ],
        "options": GenerateOptions(temperature=0.2, max_tokens=256, top_p=0.9, seed=7, stop=["###"]),
    }
    fields.update(overrides)
    return ProviderCall(**fields)


def sent(upstream: aioresponses, method: str, url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers of the one request made to `url`."""
    calls = upstream.requests[(method, URL(url))]
    assert len(calls) == 1
    kwargs = calls[0].kwargs
    body = msgspec.json.decode(kwargs["data"]) if kwargs.get("data") is not None else {}
    return body, dict(kwargs["headers"])


def uncomment(text: str, first: str, count: int) -> str:
    """`text` with the `count` commented lines starting at the one reading `# {first}` switched on."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip() == f"# {first}")
    for n in range(start, start + count):
        assert lines[n].lstrip().startswith("# "), lines[n]
        lines[n] = lines[n].replace("# ", "", 1)
    return "\n".join(lines) + "\n"


def sent_bodies(upstream: aioresponses, method: str, url: str) -> list[dict[str, Any]]:
    """The JSON bodies of every request made to `url`, in order."""
    return [msgspec.json.decode(call.kwargs["data"]) for call in upstream.requests.get((method, URL(url)), [])]


SCHEMA: dict[str, Any] = {
    "title": "Copy",
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["headline", "bullets"],
    "additionalProperties": False,
}
