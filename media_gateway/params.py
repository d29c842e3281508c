"""Workflow parameter rules: each parameter's declared type and bounds, checked at start-up and per request.

A value that reaches a ComfyUI graph must be one the workflow's author allowed: a number within
`min`/`max`, one of `choices`, a string within `max_length` (and `pattern`), or a single file name.
So `checkpoint: "../../../../etc/passwd"` or `steps: 10000` is a 400 naming the parameter, and ComfyUI
never sees it.
"""

from __future__ import annotations

import re
from typing import Any

from service_common.config import ConfigError
from shared_contracts.errors import InvalidRequest

from .config import ParamSpec, ParamType

__all__ = ["STANDARD_TYPES", "check_spec", "check_value"]

# The request's own fields that are workflow parameters by name, and their types (ImageRequest bounds them).
STANDARD_TYPES: dict[str, ParamType] = {
    "prompt": "string", "negative_prompt": "string", "width": "int", "height": "int", "seed": "int", "count": "int",
}
# One file name: letters, digits and `_ . + - ( ) [ ]` and spaces, not starting with a dot, at most 255 long.
_FILENAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-()\[\] ]{0,254}")
_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
               "filename": "a file name"}


def _of_type(kind: ParamType, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, int | float)
    return isinstance(value, str)


def _problem(kind: ParamType, spec: ParamSpec, value: Any) -> tuple[str, dict[str, Any]] | None:
    """Why `value` breaks the rule (a message and details), or None when it is allowed."""
    if not _of_type(kind, value):
        return f"expected {_TYPE_NAMES[kind]}, got {type(value).__name__}", {"type": kind}
    if spec.choices is not None and value not in spec.choices:
        return f"{value!r} is not one of the allowed values", {"choices": spec.choices}
    if kind in ("int", "float"):
        if spec.min is not None and value < spec.min:
            return f"{value} is below the minimum {_number(spec.min)}", {"min": _number(spec.min)}
        if spec.max is not None and value > spec.max:
            return f"{value} is above the maximum {_number(spec.max)}", {"max": _number(spec.max)}
    if kind in ("string", "filename"):
        if spec.max_length is not None and len(value) > spec.max_length:
            return f"longer than {spec.max_length} characters", {"max_length": spec.max_length}
        if kind == "filename" and _FILENAME.fullmatch(value) is None:
            return ("must be a single file name (letters, digits, _ . + - ( ) [ ] and spaces; no path "
                    "separators, no leading dot)"), {"type": "filename"}
        if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            return f"does not match the pattern {spec.pattern!r}", {"pattern": spec.pattern}
    return None


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def kind_of(name: str, spec: ParamSpec) -> ParamType | None:
    """The parameter's type: declared, or the request field's own for the standard ones."""
    return spec.type or STANDARD_TYPES.get(name)


def check_spec(where: str, name: str, spec: ParamSpec) -> None:
    """Start-up check of one parameter's rule; a parameter clients may set must be typed and bounded."""
    standard = STANDARD_TYPES.get(name)
    if standard is not None and spec.type not in (None, standard):
        raise ConfigError(f"{where}.type: {name!r} is the request's own field, of type {standard}")
    kind = kind_of(name, spec)
    if kind is None:
        raise ConfigError(f"{where}.type: required; one of int, float, bool, string, filename")
    if kind in ("int", "float"):
        if standard is None and (spec.min is None or spec.max is None):
            raise ConfigError(f"{where}: a {kind} parameter needs both 'min' and 'max'")
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise ConfigError(f"{where}: min {spec.min} is above max {spec.max}")
    elif spec.min is not None or spec.max is not None:
        raise ConfigError(f"{where}: 'min'/'max' apply to int and float parameters only")
    if kind == "string" and standard is None and spec.choices is None and spec.max_length is None:
        raise ConfigError(f"{where}: a string parameter needs 'choices' or 'max_length'")
    if kind == "bool" and (spec.choices is not None or spec.pattern is not None or spec.max_length is not None):
        raise ConfigError(f"{where}: a bool parameter takes no choices, pattern or max_length")
    if spec.pattern is not None:
        if kind not in ("string", "filename"):
            raise ConfigError(f"{where}.pattern: applies to string and filename parameters only")
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            raise ConfigError(f"{where}.pattern: not a regular expression: {exc}") from exc
    for i, choice in enumerate(spec.choices or []):
        if not _of_type(kind, choice):
            raise ConfigError(f"{where}.choices[{i}]: {choice!r} is not {_TYPE_NAMES[kind]}")
    if spec.default is not None:
        problem = _problem(kind, spec, spec.default)
        if problem is not None:
            raise ConfigError(f"{where}.default: {problem[0]}")
    elif standard is None:
        raise ConfigError(f"{where}.default: required for a parameter the request may leave out")


def check_value(name: str, spec: ParamSpec, value: Any, *, field: str) -> None:
    """Refuse a value outside the parameter's rule with 400 naming `field` (`params.steps`, `width`)."""
    kind = kind_of(name, spec)
    if kind is None:
        return
    problem = _problem(kind, spec, value)
    if problem is not None:
        message, details = problem
        raise InvalidRequest(f"{field}: {message}", details={"param": name, **details})


__all__ += ["kind_of"]
