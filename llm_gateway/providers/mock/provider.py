"""The mock provider: answers from `<fixtures_dir>/<role>.<task>.json`, else writes a deterministic answer.

With a `response_schema` it synthesises a schema-valid document reusing payload values; without one it
writes a short plausible paragraph. Same request, same answer. It never sleeps unless `delay_ms` is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ..base import Delta, Provider, ProviderCall, ProviderResult, ProviderSettings
from .prose import Prose
from .synth import synthesize

__all__ = ["MockProvider", "MockSettings", "estimate_tokens"]

_seed_encoder = msgspec.json.Encoder(order="deterministic")
_encoder = msgspec.json.Encoder()
_PIECE = re.compile(r"\S+\s*|\s+")


class MockSettings(ProviderSettings, frozen=True):
    """`fixtures_dir`: where `<role>.<task>.json` files live; `delay_ms`: optional simulated latency."""

    fixtures_dir: str = "config/mock/llm"
    delay_ms: Annotated[float, msgspec.Meta(ge=0, le=60_000)] = 0.0
    # Words per streamed delta, so a mock stream has several events like a live one.
    stream_words: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 4


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token), never zero."""
    return max(1, (len(text) + 3) // 4)


def _load_fixtures(directory: Path) -> dict[str, str]:
    fixtures: dict[str, str] = {}
    if not directory.is_dir():
        return fixtures
    for path in sorted(directory.glob("*.json")):
        try:
            value: Any = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise ValueError(f"fixture {path}: {exc}") from exc
        # A JSON string is the answer's text; any other JSON value is the answer's JSON, encoded.
        fixtures[path.stem] = value if isinstance(value, str) else _encoder.encode(value).decode()
    return fixtures


class MockProvider(Provider):
    """Deterministic answers in the live response shape; used for every route in mock mode."""

    Settings = MockSettings
    kind = "mock"

    def __init__(self, name: str, settings: MockSettings) -> None:
        super().__init__(name, settings)
        self._delay = settings.delay_ms / 1000
        self._stream_words = settings.stream_words
        # Read once at configuration time: a broken fixture fails start-up, not a request.
        self._fixtures = _load_fixtures(Path(settings.fixtures_dir))

    @property
    def fixtures(self) -> frozenset[str]:
        """The `role.task` names that have a fixture."""
        return frozenset(self._fixtures)

    def answer(self, call: ProviderCall) -> str:
        """The text this provider answers `call` with."""
        fixture = self._fixtures.get(f"{call.role}.{call.task}")
        if fixture is not None:
            return fixture
        seed = hashlib.blake2b(
            _seed_encoder.encode([call.role, call.task, call.payload, call.response_schema, call.messages]),
            digest_size=8,
        ).digest()
        rng = random.Random(int.from_bytes(seed, "big"))
        prose = Prose(call.payload, role=call.role, task=call.task)
        if call.response_schema is not None:
            return _encoder.encode(synthesize(call.response_schema, prose=prose, rng=rng)).decode()
        return prose.plain_answer(rng)

    def _result(self, call: ProviderCall, text: str) -> ProviderResult:
        prompt = sum(len(m.content) for m in call.messages)
        return ProviderResult(
            text=text, finish_reason="stop", input_tokens=max(1, (prompt + 3) // 4), output_tokens=estimate_tokens(text)
        )

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        if self._delay:
            await asyncio.sleep(self._delay)
        return self._result(call, self.answer(call))

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        if self._delay:
            await asyncio.sleep(self._delay)
        text = self.answer(call)
        pieces = _PIECE.findall(text)
        for start in range(0, len(pieces), self._stream_words):
            yield Delta("".join(pieces[start : start + self._stream_words]))
        yield self._result(call, text)
