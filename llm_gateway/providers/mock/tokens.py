"""The mock's token model, and the end of an answer as a live model ends it: at `max_tokens` or a `stop` string.

A token is a short run of one kind of character (up to six Latin letters, three digits, two Hangul
syllables, or one other character) with the spaces before it, roughly what a BPE tokenizer makes of
English and Korean. Counting with one model everywhere keeps `output_tokens <= max_tokens` exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Ending", "count_tokens", "end_text"]

_TOKEN = re.compile(r"\s*(?:[A-Za-z]{1,6}|[0-9]{1,3}|[\uac00-\ud7a3]{1,2}|[^\sA-Za-z0-9\uac00-\ud7a3])|\s+")


def count_tokens(text: str) -> int:
    """How many tokens `text` is in the mock's model."""
    return sum(1 for _ in _TOKEN.finditer(text))


@dataclass(frozen=True, slots=True)
class Ending:
    """The text a live model would have returned, why it ended, and its length in tokens."""

    text: str
    finish_reason: str
    tokens: int


def end_text(text: str, *, max_tokens: int | None, stop: Sequence[str] | None) -> Ending:
    """`text` cut where a live model stops: before the first stop string (excluded, as OpenAI and Ollama do)
    unless `max_tokens` runs out first (`finish_reason: length`)."""
    hits = [(text.find(s), len(s)) for s in stop or () if s and s in text]
    stop_at, stop_len = min(hits) if hits else (-1, 0)
    limit: int | None = None  # where the text is after `max_tokens` tokens, when there is more after it
    if max_tokens is not None:
        for number, match in enumerate(_TOKEN.finditer(text), start=1):
            if number == max_tokens:
                limit = match.end() if match.end() < len(text) else None
                break
    # A stop string counts only when it is complete within the tokens the model was allowed.
    if stop_at >= 0 and (limit is None or stop_at + stop_len <= limit):
        cut = text[:stop_at]
        return Ending(cut, "stop", count_tokens(cut))
    if limit is not None:
        cut = text[:limit]
        return Ending(cut, "length", count_tokens(cut))
    return Ending(text, "stop", count_tokens(text))
