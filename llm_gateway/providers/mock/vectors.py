"""The mock's embeddings and log-probabilities: deterministic numbers with the live shapes.

An embedding is a unit vector drawn from a generator seeded by the text alone, so the same text always gets
the same vector (and a shorter `dimensions` is the same vector cut and renormalised, as OpenAI's shortened
embeddings are). Log-probabilities are one per word piece of the answer, with plausible alternatives.
"""

from __future__ import annotations

import hashlib
import math
import random
import re

from shared_contracts.tools import TokenLogprob, TopLogprob

__all__ = ["mock_logprobs", "unit_vector"]

_PIECE = re.compile(r"\S+\s*|\s+")


def _rng(*parts: str) -> random.Random:
    digest = hashlib.blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def unit_vector(text: str, dimensions: int) -> list[float]:
    """`dimensions` floats of length 1, the same for the same text."""
    rng = _rng("embed", text)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def mock_logprobs(text: str, top: int) -> list[TokenLogprob]:
    """One entry per word piece of `text`, each with `top` alternatives (the piece itself first)."""
    out: list[TokenLogprob] = []
    for index, piece in enumerate(_PIECE.findall(text)):
        rng = _rng("logprob", str(index), piece)
        chosen = -rng.uniform(0.0, 1.5)
        alternatives = [TopLogprob(token=piece, logprob=chosen)]
        for rank in range(1, top):
            other = chosen - rng.uniform(0.5, 3.0) * rank
            alternatives.append(TopLogprob(token=f"{piece.strip()}_{rank}", logprob=other))
        out.append(TokenLogprob(token=piece, logprob=chosen, top_logprobs=alternatives[:top]))
    return out
