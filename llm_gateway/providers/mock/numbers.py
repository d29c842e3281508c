"""Numbers for mock documents: inside `minimum`/`maximum` (exclusive or not), a multiple of `multipleOf`.

Every search here is bounded and no arithmetic can overflow into a 500: a range or step the mock cannot
meet (`multipleOf: 1e-300` from `minimum: 1e300` where no float fits) is a 400 naming the keyword.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from .refs import refused

__all__ = ["bounds", "integer_in", "number_in"]

_DEFAULT_SPAN = 1e9
_STEPS = 2_000


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float, float]:
    """The closed range a value must fall in; a 400 when it is empty."""
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    # Draft 4 spells exclusiveness as a boolean beside minimum/maximum; later drafts give the bound itself.
    if ex_low is True and low is not None:
        ex_low, low = low, None
    if ex_high is True and high is not None:
        ex_high, high = high, None
    ex_low, ex_high = _number(ex_low), _number(ex_high)
    lows = [b for b in (low, _inside(ex_low, up=True, integer=integer)) if b is not None]
    highs = [b for b in (high, _inside(ex_high, up=False, integer=integer)) if b is not None]
    lo = max(lows) if lows else None
    hi = min(highs) if highs else None
    if lo is None and hi is None:
        lo, hi = -_DEFAULT_SPAN, _DEFAULT_SPAN
    elif lo is None:
        assert hi is not None
        lo = max(hi - max(_DEFAULT_SPAN, abs(hi)), -sys.float_info.max)
    elif hi is None:
        # One bound only: the range reaches as far again beyond it (`minimum: 1e300` still has room).
        hi = min(lo + max(_DEFAULT_SPAN, abs(lo)), sys.float_info.max)
    assert lo is not None and hi is not None
    if integer:
        lo, hi = math.ceil(lo), math.floor(hi)
    if lo > hi:
        raise refused("a number range has no value in it", keyword="minimum/maximum")
    return lo, hi


def _inside(bound: float | None, *, up: bool, integer: bool) -> float | None:
    """The nearest allowed value inside an exclusive bound."""
    if bound is None:
        return None
    if integer:
        return math.floor(bound) + 1 if up else math.ceil(bound) - 1
    return math.nextafter(bound, math.inf if up else -math.inf)


def is_multiple(value: float, step: float) -> bool:
    """jsonschema's `multipleOf` test, overflow included (it falls back to exact fractions)."""
    if isinstance(step, float):
        quotient = value / step
        try:
            return int(quotient) == quotient
        except (OverflowError, ValueError):
            return (Fraction(value) / Fraction(step)).denominator == 1
    if isinstance(value, float):
        return not value % step
    return value % step == 0


def _multiple(step: float, low: float, high: float, guess: float, *, integer: bool) -> float | int:
    """A multiple of `step` in [low, high] near `guess` (an int when `integer`); a 400 when none is found."""

    def ok(value: float) -> bool:
        return not integer or float(value).is_integer()

    start = min(max(guess, low), high)
    ratio = start / step
    if math.isfinite(ratio) and abs(ratio) < 2**52:
        k = math.ceil(ratio)
        for n in range(_STEPS):
            for candidate in (k + n) * step, round((k + n) * step, 12):
                if candidate > high:
                    break
                if low <= candidate and ok(candidate) and is_multiple(candidate, step):
                    return int(candidate) if integer else candidate
    # Far from zero in units of the step: a power-of-two multiple of it is exact in binary floating point.
    for sign in (1, -1):
        target = low if sign > 0 else -high
        if target <= 0:
            continue
        shift = max(0, math.ceil(math.log2(target) - math.log2(abs(step))))
        for extra in range(4):
            try:
                candidate = sign * math.ldexp(abs(step), shift + extra)
            except OverflowError:
                break
            if math.isfinite(candidate) and low <= candidate <= high and ok(candidate) and is_multiple(candidate, step):
                return int(candidate) if integer else candidate
    raise refused(
        f"no multiple of {step!r} the mock provider can write lies between {low!r} and {high!r}",
        keyword="multipleOf",
    )


def integer_in(schema: Mapping[str, Any], guess: int) -> int:
    """An integer valid for `schema`'s bounds and multipleOf, `guess` when it is."""
    low, high = bounds(schema, integer=True)
    pick = int(min(max(guess, low), high))
    step = _number(schema.get("multipleOf"))
    if step is None or step <= 0:
        return pick
    if isinstance(step, int):
        up = -(-pick // step) * step
        if low <= up <= high:
            return up
        down = (pick // step) * step
        if low <= down <= high:
            return down
    return int(_multiple(step, low, high, pick, integer=True))


def number_in(schema: Mapping[str, Any], guess: float) -> float | int:
    """A number valid for `schema`'s bounds and multipleOf, `guess` when it is."""
    step = _number(schema.get("multipleOf"))
    if isinstance(step, int) and step > 0:
        return integer_in(schema, int(guess))
    low, high = bounds(schema, integer=False)
    pick = min(max(float(guess), low), high)
    if step is None or step <= 0:
        return pick
    return _multiple(step, low, high, pick, integer=False)
