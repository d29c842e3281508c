"""Record and replay for the LLM Gateway: live answers kept as fixture files and answered from them offline.

GENERATOR_MODE=record calls the live providers and saves each answer; GENERATOR_MODE=replay answers only
from the saved files and never contacts an upstream. A fixture's key is the SHA-256 of what was routed:
role, task, quality, messages, response_schema and the client's options (every request field but
`payload` and `metadata`, which carry context and ids, never what the model sees). One file per answer,
`<fixtures_dir>/<role>/<task>-<key[:16]>.json`, holds the routed request, the answer (text, json,
finish_reason, usage, the provider and model that answered) and, for a streamed answer, its pieces.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

import msgspec
import structlog

from service_common.files import write_atomically
from service_common.fixtures import FixtureFiles, canonical_key, differences, pretty, read_fixture, redact, slug
from service_common.ids import new_id
from shared_contracts.errors import FixtureMissing
from shared_contracts.llm import Attempt, GenerateRequest, GenerateResponse, Usage
from shared_contracts.tools import TokenLogprob, ToolCall

__all__ = ["FORMAT", "Fixture", "FixtureAnswer", "FixtureStore", "replay_pieces", "replayed_response", "routed"]

FORMAT = 1
_log = structlog.get_logger(component="llm_fixtures")
_WORDS = re.compile(r"\S+\s*|\s+")


class FixtureAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A recorded answer: what the live provider said, and who said it."""

    provider: str
    model: str
    text: str
    json: dict[str, Any] | None = None
    finish_reason: str
    usage: Usage
    # The text pieces of a streamed answer as they came; None when it was recorded as one complete answer.
    chunks: list[str] | None = None
    # The tools the model called, and the tokens' log-probabilities when they were asked for.
    tool_calls: list[ToolCall] = []
    logprobs: list[TokenLogprob] | None = None


class Fixture(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fixture file: its format, key, the routed request it answers, and the answer."""

    format: int = FORMAT
    key: str
    request: dict[str, Any]
    answer: FixtureAnswer


_decode_fixture = msgspec.json.Decoder(Fixture)


def routed(request: GenerateRequest) -> dict[str, Any]:
    """The parts of `request` a fixture is keyed on: everything the model sees, nothing that is an id.

    Fields at their default are left out, so a field added to the contract later keeps existing keys.
    """
    parts: dict[str, Any] = msgspec.to_builtins(msgspec.structs.replace(request, payload={}, metadata={}))
    return parts


class FixtureStore:
    """The fixtures under one folder, indexed by key in memory; loaded at start-up, added to while recording."""

    def __init__(self, root: Path, *, secrets: Sequence[str] = ()) -> None:
        self.files = FixtureFiles(root)
        self.secrets = tuple(secrets)
        self._index: dict[str, tuple[Path, Fixture]] = {}

    @property
    def root(self) -> Path:
        """The folder."""
        return self.files.root

    def __len__(self) -> int:
        return len(self._index)

    def load(self) -> None:
        """Read every fixture file; a broken one raises ValueError naming it (a start-up error, not a 500)."""
        index: dict[str, tuple[Path, Fixture]] = {}
        for path in self.files.files(".json"):
            fixture = read_fixture(path, _decode_fixture)
            index[fixture.key] = (path, fixture)
        self._index = index

    def path_for(self, request: GenerateRequest, key: str) -> Path:
        """Where the fixture for `request` lives: `<role>/<task>-<key[:16]>.json`, names made safe."""
        return self.files.path(slug(request.role), f"{slug(request.task)}-{key[:16]}.json")

    def find(self, request: GenerateRequest) -> Fixture:
        """The recorded answer to `request`; a miss is 404 `fixture_missing` naming the key and the closest one."""
        parts = routed(request)
        key = canonical_key(parts)
        found = self._index.get(key)
        if found is not None:
            return found[1]
        raise self._missing(request, parts, key)

    def _missing(self, request: GenerateRequest, parts: dict[str, Any], key: str) -> FixtureMissing:
        same = [
            (path, fixture) for path, fixture in self._index.values()
            if fixture.request.get("role") == request.role and fixture.request.get("task") == request.task
        ]
        details: dict[str, Any] = {
            "key": key, "role": request.role, "task": request.task, "fixtures_dir": str(self.root), "closest": None,
        }
        if not same:
            return FixtureMissing(
                f"no fixture recorded for role {request.role!r}, task {request.task!r} (key {key[:16]})",
                details=details,
            )
        wanted = _text_of(parts)

        def rank(item: tuple[Path, Fixture]) -> tuple[int, float]:
            recorded = item[1].request
            similar = difflib.SequenceMatcher(None, _text_of(recorded), wanted, autojunk=False).quick_ratio()
            return len(differences(recorded, parts)), -similar

        path, closest = min(same, key=rank)
        details["closest"] = {
            "key": closest.key,
            "file": str(path.relative_to(self.root)),
            "differs_in": differences(closest.request, parts),
        }
        return FixtureMissing(
            f"no fixture recorded for this {request.role}/{request.task} request (key {key[:16]}); "
            f"the closest, {closest.key[:16]}, differs in {', '.join(details['closest']['differs_in'])}",
            details=details,
        )

    async def save(self, request: GenerateRequest, response: GenerateResponse, chunks: list[str] | None) -> Path:
        """Record `response` as the answer to `request` (replacing an older one); credentials are redacted.

        A request that itself contained a credential is keyed without it, so it is never replayed as it was.
        """
        parts = redact(routed(request), self.secrets)
        key = canonical_key(parts)
        path = self.path_for(request, key)
        older = self._index.get(key)
        if chunks is None and older is not None and older[1].answer.text == response.text:
            chunks = older[1].answer.chunks  # a complete answer keeps the chunking a stream recorded
        answer = FixtureAnswer(
            provider=response.provider,
            model=response.model,
            text=response.text,
            json=response.json,
            finish_reason=response.finish_reason,
            usage=response.usage,
            chunks=chunks,
            tool_calls=response.tool_calls,
            logprobs=response.logprobs,
        )
        fixture = Fixture(key=key, request=parts, answer=_redacted(answer, self.secrets))
        await asyncio.to_thread(write_atomically, path, pretty(fixture))
        self._index[key] = (path, fixture)
        _log.info("fixture_recorded", key=key[:16], role=request.role, task=request.task,
                  file=str(path.relative_to(self.root)))
        return path


def _redacted(answer: FixtureAnswer, secrets: Sequence[str]) -> FixtureAnswer:
    return msgspec.convert(redact(msgspec.to_builtins(answer), secrets), FixtureAnswer)


def _text_of(parts: dict[str, Any]) -> str:
    messages = parts.get("messages") or []
    return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def replay_pieces(fixture: Fixture) -> list[str]:
    """A replayed stream's pieces: as recorded, or (recorded whole) a few words at a time."""
    answer = fixture.answer
    if answer.chunks is not None:
        return [c for c in answer.chunks if c]
    words = _WORDS.findall(answer.text)
    return ["".join(words[i : i + 4]) for i in range(0, len(words), 4)]


def replayed_response(request: GenerateRequest, fixture: Fixture, started: float) -> GenerateResponse:
    """The recorded answer in the live shape, saying `mode: replay`; one attempt, at the provider that answered."""
    answer = fixture.answer
    latency = round((perf_counter() - started) * 1000, 3)
    return GenerateResponse(
        id=new_id(),
        role=request.role,
        task=request.task,
        mode="replay",
        provider=answer.provider,
        model=answer.model,
        text=answer.text,
        json=answer.json,
        finish_reason=answer.finish_reason,
        usage=answer.usage,
        latency_ms=latency,
        attempts=[Attempt(provider=answer.provider, model=answer.model, outcome="ok", latency_ms=latency)],
        tool_calls=answer.tool_calls,
        logprobs=answer.logprobs,
    )
