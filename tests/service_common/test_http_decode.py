"""Client bodies: every malformed one is a 400 envelope-ready InvalidRequest, never an unhandled error."""

from __future__ import annotations

import msgspec
import pytest

from service_common.http import decode_payload
from shared_contracts.errors import InvalidRequest
from shared_contracts.media import ImageRequest

_decode = msgspec.json.Decoder(ImageRequest)
_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"{nope", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "Expected `object`"),
        (b'{"role": "a", "task": "b", "prompt": "c", "width": 65}', "multiple of 8"),
        # msgspec stops at the interpreter's recursion limit; that must not become a 500.
        (b'{"role": "a", "task": "b", "prompt": "c", "params": {"x": ' + _DEEP + b"}}", "nests too deeply"),
        (_DEEP, "nests too deeply|Expected `object`"),
    ],
)
def test_malformed_bodies_are_invalid_request(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_payload(raw, _decode)
