"""Structured output: parse a model's text as JSON and validate it against the request's `response_schema`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jsonschema
import msgspec
from jsonschema.exceptions import SchemaError, ValidationError, best_match, relevance
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from shared_contracts.errors import InvalidOutput, InvalidRequest

from .patterns import bounded_pattern_keyword
from .schema_bounds import check_schema_bounds

__all__ = ["OutputSchema", "SchemaCache", "repair_prompt"]

_key_encoder = msgspec.json.Encoder(order="deterministic")
_decode_any = msgspec.json.Decoder().decode
# Agents send the same few schemas over and over; past this many distinct ones the cache starts afresh.
_CACHE_LIMIT = 256
# A repair names at most this many problems (the most relevant first); the 422 lists the same ones.
_MAX_PROBLEMS = 5
# Quoted values (an enum's members, the value the model gave) are cut to this many characters.
_MAX_SHOWN = 120
_MAX_ENUM_SHOWN = 24
# No retrieval: without a registry jsonschema would fetch a remote `$ref` with a blocking urlopen (SSRF,
# and a stalled event loop). The JSON Schema metaschemas still resolve; anything else is Unresolvable.
_NO_RETRIEVAL: Registry[Any] = Registry()


def repair_prompt(error: InvalidOutput) -> str:
    """The follow-up message that asks the model to fix its answer: each failing path and what it must be.

    `error.details["problems"]` (from `OutputSchema.parse`) names the paths and the allowed values (enum,
    const, pattern, bounds), so a model whose decoder ignored a keyword learns exactly what to change.
    """
    problems = error.details.get("problems") or [
        {"path": error.details.get("path", "$"), "expected": error.message}
    ]
    lines = "\n".join(f"- at {p['path']}: {p['expected']}" for p in problems)
    return (
        "Your previous answer did not match the required JSON schema:\n"
        f"{lines}\n"
        "Reply again with only a JSON object that matches the schema, and no other text."
    )


def _shown(value: Any) -> str:
    text = msgspec.json.encode(value).decode("utf-8", "replace")
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


_BOUNDS = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "greater than {}",
    "exclusiveMaximum": "less than {}",
    "multipleOf": "a multiple of {}",
    "minLength": "at least {} characters long",
    "maxLength": "at most {} characters long",
    "minItems": "an array of at least {} items",
    "maxItems": "an array of at most {} items",
    "minProperties": "an object with at least {} properties",
    "maxProperties": "an object with at most {} properties",
}


def _expected(error: ValidationError) -> str:
    """What the value at the error's path must be, in words a model can act on."""
    keyword, value = error.validator, error.validator_value
    got = f" (got {_shown(error.instance)})" if not isinstance(error.instance, dict | list) else ""
    if keyword == "const":
        return f"must be exactly {_shown(value)}{got}"
    if keyword == "enum" and isinstance(value, list):
        more = ", ..." if len(value) > _MAX_ENUM_SHOWN else ""
        return f"must be one of {', '.join(_shown(v) for v in value[:_MAX_ENUM_SHOWN])}{more}{got}"
    if keyword == "pattern":
        return f"must be a string matching the regular expression {_shown(value)}{got}"
    if keyword in _BOUNDS:
        return f"must be {_BOUNDS[str(keyword)].format(_shown(value))}{got}"
    if keyword == "type":
        kinds = " or ".join(value) if isinstance(value, list) else str(value)
        return f"must be of type {kinds}{got}"
    if keyword == "required" and isinstance(value, list) and isinstance(error.instance, dict):
        missing = [name for name in value if name not in error.instance]
        return "must have the properties " + ", ".join(_shown(name) for name in missing)
    if keyword == "additionalProperties" and value is False and isinstance(error.instance, dict):
        allowed = list((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {})
        extra = [name for name in error.instance if name not in allowed]
        return (f"must not have the properties {', '.join(map(_shown, extra))}; "
                f"allowed: {', '.join(map(_shown, allowed)) or 'none'}")
    if keyword == "uniqueItems":
        return "must be an array whose items are all different"
    if keyword == "format":
        return f"must be a valid {value}{got}"
    message = error.message
    return message if len(message) <= 2 * _MAX_SHOWN else message[: 2 * _MAX_SHOWN - 3] + "..."


def _path(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _strip_fences(text: str) -> str:
    # Models often wrap JSON in a Markdown code fence even when told not to; the fence is not the answer.
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and len(stripped) >= 6:
        body = stripped[3:-3]
        newline = body.find("\n")
        return body[newline + 1 :] if newline >= 0 else body
    return stripped


class OutputSchema:
    """A checked schema with its compiled validator."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        kind = schema.get("type")
        if kind is not None and kind != "object" and not (isinstance(kind, list) and "object" in kind):
            raise InvalidRequest(
                "response_schema must describe a JSON object", details={"path": "$.response_schema.type"}
            )
        with warnings.catch_warnings():
            # An unknown `$schema` falls back to the latest draft; jsonschema warns about that, we accept it.
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(dict(schema))
        except RecursionError as exc:
            raise InvalidRequest("response_schema nests too deeply", details={"path": "$.response_schema"}) from exc
        except SchemaError as exc:
            raise InvalidRequest(
                f"response_schema is not a valid JSON Schema: {exc.message}",
                details={"path": "$.response_schema", "schema_path": "/".join(map(str, exc.path))},
            ) from exc
        _check_refs(schema)
        # Before compiling: a schema jsonschema could not check in bounded time is the client's error (400).
        check_schema_bounds(schema)
        # jsonschema's `extend` has no annotations; it returns a validator class like `cls`.
        bounded = jsonschema.validators.extend(cls, {"pattern": bounded_pattern_keyword})  # type: ignore[no-untyped-call]
        self._validator: Validator = bounded(schema, registry=_NO_RETRIEVAL)

    def parse(self, text: str) -> dict[str, Any]:
        """The answer as a JSON object valid for the schema; InvalidOutput says why not."""
        try:
            doc = _decode_any(_strip_fences(text))
        except msgspec.DecodeError as exc:
            raise InvalidOutput(f"answer is not valid JSON: {exc}", details={"error": str(exc), "path": "$"}) from exc
        except RecursionError as exc:
            raise InvalidOutput("answer nests too deeply", details={"error": "too deep", "path": "$"}) from exc
        if not isinstance(doc, dict):
            raise InvalidOutput("answer is not a JSON object", details={"error": "not an object", "path": "$"})
        try:
            error = best_match(self._validator.iter_errors(doc))
        except Unresolvable as exc:
            raise InvalidRequest(
                f"response_schema has a $ref that does not resolve: {exc}", details={"path": "$.response_schema"}
            ) from exc
        except RecursionError as exc:
            raise InvalidOutput(
                "answer nests too deeply to check against response_schema", details={"error": "too deep", "path": "$"}
            ) from exc
        if error is not None:
            path = _path(error)
            # The best match first, then the other problems (the whole list is computed only on failure).
            others = sorted(self._validator.iter_errors(doc), key=relevance, reverse=True)
            chosen = [error, *(e for e in others if (_path(e), e.validator) != (path, error.validator))]
            problems = [{"path": _path(e), "expected": _expected(e)} for e in chosen[:_MAX_PROBLEMS]]
            raise InvalidOutput(
                f"answer does not match response_schema at {path}: {error.message}",
                details={"error": error.message, "path": path, "expected": problems[0]["expected"],
                         "problems": problems},
            )
        return doc


def _check_refs(schema: Mapping[str, Any]) -> None:
    """Only references inside the schema itself (`#...`) are allowed: the gateway fetches nothing for a client.

    `patternProperties` is refused too: jsonschema matches those with Python's unbounded `re` (also inside
    `additionalProperties`), while `pattern` runs bounded (see `patterns.py`).
    """
    # A loop, not recursion: a schema may nest as deep as the JSON decoder allows.
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key in ("$ref", "$dynamicRef"):
                ref = node.get(key)
                if isinstance(ref, str) and not ref.startswith("#"):
                    raise InvalidRequest(
                        f"response_schema: {key} {ref[:80]!r} points outside the schema; only '#...' is allowed",
                        details={"path": "$.response_schema", "ref": ref[:200]},
                    )
            if isinstance(node.get("patternProperties"), Mapping):
                raise InvalidRequest(
                    "response_schema: patternProperties is not supported; "
                    "list the properties or use additionalProperties",
                    details={"path": "$.response_schema"},
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


class SchemaCache:
    """Compiled validators by schema content, so a repeated schema is checked and compiled once."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, OutputSchema] = {}

    def get(self, schema: Mapping[str, Any]) -> OutputSchema:
        """The OutputSchema for `schema`; InvalidRequest when it is not a usable schema."""
        key = _key_encoder.encode(schema)
        found = self._by_key.get(key)
        if found is None:
            found = OutputSchema(schema)
            if len(self._by_key) >= _CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[key] = found
        return found
