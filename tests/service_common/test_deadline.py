"""Deadlines that travel with a request: the `X-Request-Timeout` header in and out."""

from __future__ import annotations

import asyncio

import pytest

from service_common.deadline import effective_timeout, parse_request_timeout, timeout_header_value
from shared_contracts.errors import InvalidRequest


@pytest.mark.parametrize(("raw", "seconds"), [("30", 30.0), ("2.5", 2.5), (" .5 ", 0.5), (None, None)])
def test_request_timeout_header_parses_positive_seconds(raw: str | None, seconds: float | None) -> None:
    assert parse_request_timeout(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "-1", "abc", "1e3", "inf", "nan", "1.2.3", "١٢", "99999999", "3" * 40])
def test_bad_request_timeout_is_invalid_request_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request_timeout(raw)
    assert caught.value.details["header"] == "x-request-timeout"


def test_a_caller_may_shorten_never_lengthen_the_deadline() -> None:
    assert effective_timeout(180, 5) == 5
    assert effective_timeout(5, 180) == 5
    assert effective_timeout(5, None) == 5


async def test_outbound_header_carries_what_is_left() -> None:
    deadline = asyncio.get_running_loop().time() + 2
    left = float(timeout_header_value(deadline))
    assert 0 < left <= 2
    assert timeout_header_value(deadline - 10) == "0.001"
