"""Client-supplied regular expressions (`pattern` in a `response_schema`), run with a time bound.

Python's `re` has no timeout, so one catastrophically backtracking pattern in a client's schema could
hold the event loop while an answer is checked. The `regex` module takes a timeout per search.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import regex
from jsonschema import ValidationError
from jsonschema.protocols import Validator

from shared_contracts.errors import InvalidRequest

__all__ = ["PATTERN_TIMEOUT_S", "bounded_pattern_keyword", "pattern_search"]

PATTERN_TIMEOUT_S = 0.05
"""Longest one pattern may take on one string; real output schemas' patterns take microseconds."""


def pattern_search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text`; InvalidRequest when it is invalid or too slow.

    >>> pattern_search(r"^[a-z-]+$", "hero-image")
    True
    """
    try:
        return regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S) is not None
    except regex.error as exc:
        raise InvalidRequest(
            f"response_schema: pattern {pattern[:80]!r} is not a valid regular expression: {exc}",
            details={"path": "$.response_schema", "pattern": pattern[:200]},
        ) from exc
    except TimeoutError as exc:
        raise InvalidRequest(
            f"response_schema: pattern {pattern[:80]!r} took over {PATTERN_TIMEOUT_S:g}s to match; simplify it",
            details={"path": "$.response_schema", "pattern": pattern[:200]},
        ) from exc


def bounded_pattern_keyword(
    validator: Validator, pattern: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """jsonschema's `pattern` keyword, with the search bounded by PATTERN_TIMEOUT_S."""
    if validator.is_type(instance, "string") and isinstance(pattern, str) and not pattern_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")
