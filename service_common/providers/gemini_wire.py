"""The Gemini API's GenerateContentResponse, as both gateways read it (text and image providers).

Tolerant Structs: fields we do not use are ignored, so a new upstream field never breaks us.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "BLOCKED_FINISH_REASONS",
    "Candidate",
    "Content",
    "GenerateContentResponse",
    "InlineData",
    "Part",
    "PromptFeedback",
    "UsageMetadata",
    "decode_response",
]

# Finish reasons that mean the answer was withheld rather than cut short or completed.
BLOCKED_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


class InlineData(msgspec.Struct, rename="camel"):
    """Inline bytes: `data` is plain base64, without a `data:` prefix."""

    mime_type: str = ""
    data: str = ""


class Part(msgspec.Struct, rename="camel"):
    """One part of a candidate's content; `thought` parts are the model's reasoning, not the answer."""

    text: str | None = None
    inline_data: InlineData | None = None
    thought: bool = False
    # A function call the model made: `{"name", "args", "id"?}`.
    function_call: dict[str, Any] | None = None


class Content(msgspec.Struct):
    """A candidate's content: its parts in order."""

    parts: list[Part] = []


class Candidate(msgspec.Struct, rename="camel"):
    """One answer; `finish_reason` is `STOP`, `MAX_TOKENS` or why it was withheld (`SAFETY`, `IMAGE_SAFETY`, ...)."""

    content: Content | None = None
    finish_reason: str | None = None

    def answer_parts(self) -> list[Part]:
        """The parts that make the answer (thought parts left out)."""
        return [p for p in (self.content.parts if self.content else []) if not p.thought]


class PromptFeedback(msgspec.Struct, rename="camel"):
    """Set when the prompt itself was blocked (then there are no candidates)."""

    block_reason: str | None = None


class UsageMetadata(msgspec.Struct, rename="camel"):
    """Token counts; thinking tokens are billed as output."""

    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0


class GenerateContentResponse(msgspec.Struct, rename="camel"):
    """A whole answer, or one SSE chunk of a streamed one; a blocked prompt has no candidates."""

    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    # An error after a 200 header (mid-stream) arrives in this shape.
    error: dict[str, Any] | None = None

    @property
    def block_reason(self) -> str | None:
        """Why the prompt was blocked, when it was."""
        return self.prompt_feedback.block_reason if self.prompt_feedback else None


decode_response = msgspec.json.Decoder(GenerateContentResponse)
