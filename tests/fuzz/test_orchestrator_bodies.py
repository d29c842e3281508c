"""Generated requests against the orchestrator's validation: never a 5xx, always the error envelope on 4xx.

Its gateways point at a closed loopback port, so a body that passes validation runs a flow whose first
step fails at once (`provider_unavailable`): the answer is a 200 failed run or a 202, never a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.app import create_app
from orchestrator.config import load_orchestrator_config
from orchestrator.tools.processes import free_port
from tests.orchestrator.answers import PRODUCT

from .test_media_bodies import FUZZ, AppDriver, check_answer, json_values

REPO = Path(__file__).resolve().parents[2]
RUNS = "/api/v1/flows/p0-product-detail/runs"

products = st.fixed_dictionaries(
    {},
    optional={key: st.just(value) | json_values for key, value in PRODUCT.items()} | {"extra": json_values},
)
run_bodies = st.fixed_dictionaries({}, optional={"product": products | json_values, "wait": st.booleans() | json_values,
                                                 "unknown": json_values})
raw_bodies = st.one_of(
    st.binary(max_size=64), json_values.map(msgspec.json.encode), run_bodies.map(msgspec.json.encode)
)
timeouts = st.fixed_dictionaries({}, optional={"x-request-timeout": st.text(max_size=8)}).map(
    lambda h: {k: v for k, v in h.items() if v.isascii() and v.isprintable()}
)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    closed = f"http://127.0.0.1:{free_port()}"
    environ = {"LLM_GATEWAY_URL": closed, "MEDIA_GATEWAY_URL": closed,
               "ORCHESTRATOR_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    running = AppDriver(create_app(load_orchestrator_config(REPO / "config" / "orchestrator.yaml", environ)))
    yield running
    running.close()


def test_generated_run_bodies_never_get_a_5xx(driver: AppDriver) -> None:
    @FUZZ
    @given(raw=raw_bodies, extra=timeouts)
    def check(raw: bytes, extra: dict[str, str]) -> None:
        reply = driver.request("POST", RUNS, raw, extra)
        check_answer(reply)
        if reply.status == 200:
            assert msgspec.json.decode(reply.body)["status"] == "failed"

    check()


def test_generated_run_ids_and_limits_never_get_a_5xx(driver: AppDriver) -> None:
    @FUZZ
    @given(value=st.text(min_size=1, max_size=60), limit=st.text(max_size=8))
    def check(value: str, limit: str) -> None:
        reply = driver.request("GET", f"/api/v1/runs/{quote(value, safe='')}")
        check_answer(reply)
        assert reply.status in (400, 404), reply.body
        check_answer(driver.request("GET", f"/api/v1/runs?limit={quote(limit, safe='')}"))

    check()
