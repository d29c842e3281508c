"""The orchestrator's JSON API: start P0 runs, read them back, follow their events, report health and readiness.

Every run has a deadline (`runs.timeout_s`, shortened by the request's `X-Request-Timeout`); gateway calls
inside it send what is left, so no gateway works longer than the run's caller waits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.flow import FLOW_NAME, check_scenarios
from orchestrator.runs import run_event_stream, summary_of
from orchestrator.state import app_state
from service_common.deadline import effective_timeout, request_timeout
from service_common.http import MsgspecResponse, decode_body, request_id_of
from service_common.sse import sse_response
from shared_contracts.errors import GatewayError, InvalidRequest, NotReady
from shared_contracts.flows import RunList, RunRequest, RunStatus

__all__ = ["API_ROUTES"]

_decode_run_request = msgspec.json.Decoder(RunRequest)
_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "failed")
# An event stream outlives its run's deadline by this much at most; a client may reconnect after.
_EVENTS_MARGIN_S = 60.0


async def create_run(request: Request) -> Response:
    """`POST /api/v1/flows/p0-product-detail/runs`: 200 with the result, or 202 and the run id."""
    state = app_state(request)
    requested = request_timeout(request.headers)
    body = await decode_body(request, _decode_run_request, max_bytes=state["config"].server.max_body_bytes)
    check_scenarios(body.scenarios)
    timeout_s = effective_timeout(state["config"].runs.timeout_s, requested)
    runner = state["runner"]
    doc = runner.flow.new_document(body.product, timeout_s=timeout_s, scenarios=body.scenarios)
    await runner.save(doc)
    request_id = request_id_of(request)
    if body.wait:
        return MsgspecResponse(await runner.run(doc, request_id, timeout_s=timeout_s))
    runner.start(doc, request_id, timeout_s=timeout_s)
    return MsgspecResponse(doc, status_code=202, headers={"location": f"/api/v1/runs/{doc.run_id}"})


async def get_run(request: Request) -> Response:
    """`GET /api/v1/runs/{run_id}`."""
    return MsgspecResponse(await app_state(request)["store"].get(request.path_params["run_id"]))


async def run_events(request: Request) -> Response:
    """`GET /api/v1/runs/{run_id}/events`: SSE `step_started`, `step_finished`, then `run_finished`."""
    state = app_state(request)
    run_id = request.path_params["run_id"]
    await state["store"].get(run_id)  # an unknown run is a 404 envelope, before the stream starts
    runs = state["config"].runs
    frames = run_event_stream(
        state["store"], state["feed"], run_id, poll_s=runs.events_poll_s, max_s=runs.timeout_s + _EVENTS_MARGIN_S
    )
    return sse_response(frames)


async def list_runs(request: Request) -> Response:
    """`GET /api/v1/runs?limit=N&status=S`: recent runs, newest first."""
    state = app_state(request)
    cap = state["config"].runs.recent_limit
    raw = request.query_params.get("limit", str(cap))
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        raise InvalidRequest(f"limit must be an integer from 1 to {cap}", details={"path": "limit"})
    wanted = request.query_params.get("status")
    status = next((s for s in _STATUSES if s == wanted), None)
    if wanted is not None and status is None:
        raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}", details={"path": "status"})
    docs = await state["store"].recent(int(raw), status=status)
    return MsgspecResponse(RunList(runs=[summary_of(doc) for doc in docs]))


async def healthz(request: Request) -> Response:
    """The process is up."""
    return MsgspecResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when both gateways say they are; otherwise 503 naming the one that is not."""
    state = app_state(request)
    checks = {"llm_gateway": state["llm"].check_ready(), "media_gateway": state["media"].check_ready()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    failing: dict[str, Any] = {}
    for name, result in zip(checks, results, strict=True):
        if isinstance(result, GatewayError):
            failing[name] = {"code": result.code, "message": result.message}
        elif isinstance(result, BaseException):
            raise result
    if failing:
        raise NotReady(f"not ready: {', '.join(failing)}", details=failing)
    return MsgspecResponse({"status": "ready", "gateways": {name: "ready" for name in checks}})


API_ROUTES = [
    Route(f"/api/v1/flows/{FLOW_NAME}/runs", create_run, methods=["POST"]),
    Route("/api/v1/runs", list_runs, methods=["GET"]),
    Route("/api/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/api/v1/runs/{run_id}/events", run_events, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
