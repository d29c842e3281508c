"""Strings that match a schema's `pattern`, generated with rstr's Xeger (regex → string), bounded in work.

The pattern is parsed and its generation cost estimated before anything is built: a pattern whose
strings would be huge (`a{100000}`, nested repeats, classes spanning all of Unicode) or that Python's
parser does not read is refused with a 400 naming `pattern`. Every candidate is checked with the
gateway's own bounded matcher, since Xeger does not honour look-arounds.
"""

from __future__ import annotations

import random
import re
from typing import Any

from rstr.xeger import Xeger

from shared_contracts.errors import InvalidRequest

from ...patterns import pattern_search
from .refs import refused

__all__ = ["pattern_text"]

_parser: Any = getattr(re, "_parser")  # noqa: B009 - Python 3.11's sre_parse, the parser rstr itself uses

_MAX_COST = 200_000
_MAX_LENGTH = 10_000
_MAX_NESTING = 100
_SHORT_REPEAT = 8
_LONG_REPEAT = 100
_TRIES = 8
_PRINTABLE = 100  # a category or `.` draws from about this many characters


class _Xeger(Xeger):
    """rstr's Xeger with `*`/`+`/`{n,}` repeats capped at `repeat` (never below the pattern's minimum)."""

    def __init__(self, rng: random.Random, repeat: int) -> None:
        super().__init__(rng)
        self.repeat = repeat

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        end = max(start_range, min(end_range, self.repeat))
        times = self._random.randint(start_range, end)
        return "".join("".join(self._handle_state(state) for state in value) for _ in range(times))


def _cost(parsed: Any, repeat: int, depth: int = 0) -> tuple[int, int]:
    """(work, longest string) of building one string of `parsed` with repeats capped at `repeat`."""
    if depth > _MAX_NESTING:
        raise ValueError("nests too deeply")
    work = length = 0
    for op, value in parsed:
        name = op.name.lower()
        if name in ("literal", "not_literal", "any", "category"):
            work, length = work + (1 if name == "literal" else _PRINTABLE), length + 1
        elif name == "in":
            size = sum(_class_size(o.name.lower(), v) for o, v in value)
            work, length = work + size + 1, length + 1
        elif name == "branch":
            costs = [_cost(alt, repeat, depth + 1) for alt in value[1]]
            work, length = work + max(c[0] for c in costs), length + max(c[1] for c in costs)
        elif name in ("subpattern", "assert"):
            sub = _cost(value[-1], repeat, depth + 1)
            work, length = work + sub[0], length + (sub[1] if name == "subpattern" else 0)
        elif name in ("min_repeat", "max_repeat", "possessive_repeat"):
            low, high, sub_parsed = value
            times = max(low, min(high, repeat))
            sub = _cost(sub_parsed, repeat, depth + 1)
            work, length = work + times * max(sub[0], 1), length + times * sub[1]
        elif name == "groupref":
            work, length = work + 1, length + _MAX_LENGTH // 10  # a copy of a group: counted generously
        elif name in ("at", "assert_not"):
            work += 1
        else:
            raise ValueError(f"unsupported construct {name}")
    return work, length


def _class_size(op: str, value: Any) -> int:
    if op == "range":
        return int(value[1]) - int(value[0]) + 1
    if op in ("category", "negate"):
        return _PRINTABLE
    return 1


def pattern_text(pattern: str, rng: random.Random, *, low: int = 0, high: int | None = None) -> str:
    """A string of `low`..`high` characters that `pattern` matches; a 400 naming `pattern` when none is found."""
    try:
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise _cannot(pattern, f"it is not a pattern Python's parser reads ({exc})") from exc
    limit = high if high is not None else _MAX_LENGTH
    for attempt in range(_TRIES):
        repeat = _SHORT_REPEAT if attempt < _TRIES // 2 else max(_LONG_REPEAT, low)
        try:
            work, _ = _cost(parsed, repeat)
        except (ValueError, RecursionError) as exc:
            raise _cannot(pattern, str(exc)) from exc
        if work > _MAX_COST:
            raise _cannot(pattern, f"its strings take more than {_MAX_COST} steps to build (the mock's limit)")
        try:
            text = _Xeger(rng, repeat).xeger(pattern)
        except (KeyError, IndexError, ValueError, RecursionError):
            continue  # a construct Xeger cannot build for this draw (e.g. a reference to an unset group)
        if low <= len(text) <= limit and _matches(pattern, text):
            return text
    raise _cannot(pattern, f"no generated string matched it within {low}..{limit} characters")


def _matches(pattern: str, text: str) -> bool:
    try:
        return pattern_search(pattern, text)
    except InvalidRequest:
        return False


def _cannot(pattern: str, why: str) -> InvalidRequest:
    return refused(
        f"the mock provider cannot write a string for pattern {pattern[:80]!r}: {why}",
        keyword="pattern",
        pattern=pattern[:200],
    )
