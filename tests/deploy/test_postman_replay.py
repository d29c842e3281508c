"""Replays the Postman collection against the three services running as real processes in mock mode.

The replay itself runs in conftest's `services` fixture; each request here must have got the status its
Postman test script expects.
"""

from __future__ import annotations

import pytest

from .conftest import REQUESTS, Services, request_key
from .postman import PostmanRequest

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]


@pytest.mark.parametrize("request_", REQUESTS, ids=request_key)
async def test_request_gets_the_expected_status(services: Services, request_: PostmanRequest) -> None:
    status, body = services.statuses[request_key(request_)]
    assert status == request_.expected_status, body
