"""Wire types of `POST /api/v1/llm/embed`: texts in, one vector per text out, routed by role and task."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ._base import Inbound, Outbound
from .llm import Attempt, Mode, NonEmpty

__all__ = ["EmbedRequest", "EmbedResponse", "EmbedUsage"]

EmbedText = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]


class EmbedRequest(Inbound):
    """Who asks (`role`, `task`, routed by `embedding_routing` in YAML) and the texts to embed, in order."""

    role: NonEmpty
    input: EmbedText | Annotated[list[EmbedText], msgspec.Meta(min_length=1, max_length=2048)]
    task: NonEmpty = "embed"
    # Fewer dimensions than the model's own, where the model can shorten its vectors (OpenAI, Gemini, Ollama).
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=65_536)] | None = None
    quality: NonEmpty | None = None
    metadata: dict[str, str] = {}


class EmbedUsage(Outbound):
    """Input tokens as the provider reported them; null when it did not report a count (never 0)."""

    input_tokens: int | None


class EmbedResponse(Outbound):
    """One vector per input text, in order; the same shape in mock and live mode."""

    id: str
    role: str
    task: str
    mode: Mode
    provider: str
    model: str
    embeddings: list[list[float]]
    dimensions: int
    usage: EmbedUsage
    latency_ms: float
    attempts: list[Attempt]
