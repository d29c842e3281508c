"""The mock provider: answers from `<fixtures_dir>/<role>.<task>.json`, else writes a deterministic answer.

With a `response_schema` it synthesises a schema-valid document in the product's language from the
payload; without one it writes a short paragraph. It ends the text as a live model would (`max_tokens`,
`stop`), in complete answers and streams alike. Same request, same answer. It never sleeps unless
`delay_ms` is set.
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

from ..base import FEATURES, Delta, EmbedCall, EmbedResult, Provider, ProviderCall, ProviderResult, ProviderSettings
from .check import DocumentCheck
from .prose import Prose
from .synth import synthesize
from .tokens import count_tokens, end_text
from .tools import mock_tool_calls
from .vectors import mock_logprobs, unit_vector

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
    # Length of the mock's embeddings when the request names no `dimensions`.
    embedding_dimensions: Annotated[int, msgspec.Meta(ge=1, le=65_536)] = 768


def estimate_tokens(text: str) -> int:
    """The mock's token count of `text` (see tokens.py), never zero."""
    return max(1, count_tokens(text))


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
    settings: MockSettings
    kind = "mock"
    features = FEATURES

    def __init__(self, name: str, settings: MockSettings) -> None:
        super().__init__(name, settings)
        self._delay = settings.delay_ms / 1000
        self._stream_words = settings.stream_words
        # Read once at configuration time: a broken fixture fails start-up, not a request.
        self._fixtures = _load_fixtures(Path(settings.fixtures_dir))
        self._check = DocumentCheck()

    @property
    def fixtures(self) -> frozenset[str]:
        """The `role.task` names that have a fixture."""
        return frozenset(self._fixtures)

    def _reply(self, call: ProviderCall) -> ProviderResult:
        """The tool calls (see tools.py) or the ended text `call` is answered with."""
        if call.tools:
            rng, prose = self._context(call)
            calls = mock_tool_calls(call, prose=prose, rng=rng, check=self._check)
            if calls:
                prompt = sum(len(m.content) for m in call.messages)
                return ProviderResult(
                    text="", finish_reason="tool_calls", input_tokens=max(1, (prompt + 3) // 4),
                    output_tokens=sum(estimate_tokens(_encoder.encode(c.arguments).decode()) for c in calls),
                    tool_calls=calls,
                )
        result = self._result(call, self.answer(call))
        if call.options.logprobs:
            result.logprobs = mock_logprobs(result.text, call.options.top_logprobs or 0)
        return result

    def _context(self, call: ProviderCall) -> tuple[random.Random, Prose]:
        seed = hashlib.blake2b(
            _seed_encoder.encode([call.role, call.task, call.payload, call.tools, call.messages, call.options.seed]),
            digest_size=8,
        ).digest()
        prose = Prose(call.payload, role=call.role, task=call.task, messages=call.messages)
        return random.Random(int.from_bytes(seed, "big")), prose

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        if self._delay:
            await asyncio.sleep(self._delay)
        size = call.dimensions or self.settings.embedding_dimensions
        return EmbedResult(
            vectors=[unit_vector(text, size) for text in call.texts],
            input_tokens=sum(estimate_tokens(text) for text in call.texts),
        )

    def answer(self, call: ProviderCall) -> str:
        """The whole text this provider answers `call` with, before `max_tokens` and `stop` end it."""
        fixture = self._fixtures.get(f"{call.role}.{call.task}")
        if fixture is not None:
            return fixture
        seed = hashlib.blake2b(
            _seed_encoder.encode(
                [call.role, call.task, call.payload, call.response_schema, call.messages, call.options.seed]
            ),
            digest_size=8,
        ).digest()
        rng = random.Random(int.from_bytes(seed, "big"))
        prose = Prose(call.payload, role=call.role, task=call.task, messages=call.messages)
        if call.response_schema is not None:
            doc = synthesize(call.response_schema, prose=prose, rng=rng)
            self._check.check(call.response_schema, doc)
            return _encoder.encode(doc).decode()
        return prose.plain_answer(rng)

    def _result(self, call: ProviderCall, text: str) -> ProviderResult:
        prompt = sum(len(m.content) for m in call.messages)
        ending = end_text(text, max_tokens=call.options.max_tokens, stop=call.options.stop)
        return ProviderResult(
            text=ending.text,
            finish_reason=ending.finish_reason,
            input_tokens=max(1, (prompt + 3) // 4),
            output_tokens=max(1, ending.tokens) if ending.text else 0,
        )

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        if self._delay:
            await asyncio.sleep(self._delay)
        return self._reply(call)

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        if self._delay:
            await asyncio.sleep(self._delay)
        result = self._reply(call)
        # The deltas are the ended text, so a stream stops where the complete answer does.
        pieces = _PIECE.findall(result.text)
        for start in range(0, len(pieces), self._stream_words):
            yield Delta("".join(pieces[start : start + self._stream_words]))
        yield result
