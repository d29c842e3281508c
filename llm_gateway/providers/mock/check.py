"""The mock's own check of each document it writes, so a keyword it cannot honour is a 400, never a 422.

A live model that follows the schema would have answered; a 422 `invalid_output` from the mock would be a
failure no live run gives. So the document is validated here first (the same draft and the same bounded
`pattern` as the gateway), and a miss names the keyword and the place.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jsonschema
import msgspec
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from ...patterns import bounded_pattern_keyword
from .refs import refused

__all__ = ["DocumentCheck"]

_key = msgspec.json.Encoder(order="deterministic").encode
_CACHE_LIMIT = 128
_NO_RETRIEVAL: Registry[Any] = Registry()


class DocumentCheck:
    """Compiled validators by schema content (a few hundred at most), and the check itself."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, Validator] = {}
        self._classes: dict[type[Any], Any] = {}

    def _validator(self, schema: Mapping[str, Any]) -> Validator:
        with warnings.catch_warnings():
            # An unknown `$schema` means the latest draft, as in the gateway; jsonschema warns about it.
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        bounded = self._classes.get(cls)
        if bounded is None:  # one extended class per draft, not per schema
            bounded = self._classes[cls] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
                cls, {"pattern": bounded_pattern_keyword}
            )
        validator: Validator = bounded(schema, registry=_NO_RETRIEVAL)
        return validator

    def check(self, schema: Mapping[str, Any], doc: Any) -> None:
        """Return when `doc` is valid for `schema`; else a 400 naming the keyword the mock could not honour."""
        key = _key(schema)
        validator = self._by_key.get(key)
        if validator is None:
            if len(self._by_key) >= _CACHE_LIMIT:
                self._by_key.clear()
            validator = self._by_key[key] = self._validator(schema)
        try:
            error = best_match(validator.iter_errors(doc))
        except Unresolvable as exc:
            raise refused(f"a $ref does not resolve: {exc}") from exc
        except RecursionError as exc:
            raise refused("cannot be checked without endless recursion (a $ref loop)") from exc
        if error is None:
            return
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        keyword = str(error.validator)
        raise refused(
            f"the mock provider cannot honour {keyword!r} at {where}: {error.message[:200]}",
            keyword=keyword,
            at=where,
        )
