"""Generated requests against the Media Gateway's validation: never a 5xx, always the error envelope on 4xx.

The app runs in mock mode in-process (its lifespan on a private loop); hypothesis drives it. Bodies are
mostly malformed; the well-formed ones ask for small images, so rendering stays cheap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_gateway.app import create_app
from media_gateway.config import load_media_config
from tests.fakes.asgi import AsgiClient, AsgiResponse

REPO = Path(__file__).resolve().parents[2]
GENERATE = "/api/v1/media/image/generate"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
sides = st.sampled_from([64, 72, 128]) | st.integers(-10, 5000) | json_values
image_bodies = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["vision", "qa", ""]) | json_values,
        "task": st.sampled_from(["product_image", "smoke", "x"]) | json_values,
        "prompt": st.text(max_size=60) | json_values,
        "workflow": st.sampled_from(["smoke_v1", "product_shot_v1", "nope", "../etc"]) | json_values,
        "negative_prompt": st.text(max_size=20) | json_values,
        "width": sides,
        "height": sides,
        "seed": st.integers(-5, 2**64) | json_values,
        "count": st.integers(-1, 6) | json_values,
        "params": st.dictionaries(
            st.sampled_from(["steps", "cfg", "color", "checkpoint", "x"]), json_values, max_size=3
        )
        | json_values,
        "wait": st.booleans() | json_values,
        "metadata": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3) | json_values,
        "unknown": json_values,
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=64), json_values.map(msgspec.json.encode), image_bodies.map(msgspec.json.encode)
)
headers = st.fixed_dictionaries(
    {}, optional={"x-request-timeout": st.text(max_size=8), "x-generator-mode": st.text(max_size=6),
                  "x-request-id": st.text(max_size=20), "content-type": st.sampled_from(["application/json", ""])},
).map(lambda h: {k: v for k, v in h.items() if v.isascii() and v.isprintable()})


class AppDriver:
    """One ASGI app with its lifespan running on a private loop; `request` runs one call to completion."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = AsgiClient(app)
        self.loop.run_until_complete(self.client.__aenter__())

    def request(self, method: str, path: str, raw: bytes = b"", headers: dict[str, str] | None = None) -> AsgiResponse:
        call = self.client.request(method, path, body=raw, headers=headers)
        return self.loop.run_until_complete(asyncio.wait_for(call, 20))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.__aexit__(None, None, None))
        self.loop.close()


def check_answer(reply: AsgiResponse) -> None:
    """Below 500, and every 4xx is exactly the error envelope with a code."""
    assert reply.status < 500, reply.body
    if reply.status >= 400:
        doc = msgspec.json.decode(reply.body)
        assert set(doc) == {"error"}, doc
        assert set(doc["error"]) == {"code", "message", "details", "request_id"}, doc
        assert isinstance(doc["error"]["code"], str) and doc["error"]["code"] != "internal_error"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    store = tmp_path_factory.mktemp("media-fuzz")
    config = load_media_config(REPO / "config" / "media_gateway.yaml",
                               {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(store)})
    running = AppDriver(create_app(msgspec.structs.replace(config, allow_mode_header=True)))
    yield running
    running.close()


def test_generated_bodies_never_get_a_5xx(driver: AppDriver) -> None:
    @FUZZ
    @given(raw=raw_bodies, extra=headers)
    def check(raw: bytes, extra: dict[str, str]) -> None:
        check_answer(driver.request("POST", GENERATE, raw, extra))

    check()


def test_generated_job_and_image_ids_are_404_never_5xx(driver: AppDriver) -> None:
    @FUZZ
    @given(value=st.text(min_size=1, max_size=80), kind=st.sampled_from(["jobs", "images", "jobs-events"]),
           method=st.sampled_from(["GET", "DELETE"]))
    def check(value: str, kind: str, method: str) -> None:
        segment = quote(value, safe="")
        path = {"jobs": f"/api/v1/media/jobs/{segment}", "images": f"/api/v1/media/images/{segment}",
                "jobs-events": f"/api/v1/media/jobs/{segment}/events"}[kind]
        reply = driver.request(method, path)
        check_answer(reply)
        assert reply.status in (404, 405), reply.body

    check()
