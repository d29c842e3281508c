"""What people look at: the console (`/`), each run's product page (`/runs/{run_id}`), two runs side by side
(`/compare`), the run's kept images, its export, the console's static files and its key session.

Browsers (`Accept: text/html`) get HTML error pages; programs get the JSON error envelope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.pages.export import export_files, zip_export
from orchestrator.pages.security import html_headers
from orchestrator.pages.session import ConsoleLogin
from orchestrator.runs import is_run_id
from orchestrator.state import AppState, app_state
from service_common.http import MsgspecResponse, decode_body
from shared_contracts.errors import GatewayError, InvalidRequest, NotFound, Unauthorized, UnsupportedMediaType
from shared_contracts.flows import RunDocument, RunImage, RunStatus

__all__ = ["PAGE_ROUTES", "run_image_bytes"]

_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "failed")
_decode_login = msgspec.json.Decoder(ConsoleLogin)
Handler = Callable[[Request], Awaitable[Response]]


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page."""
    return "text/html" in request.headers.get("accept", "")


def html(body: str, status: int = 200) -> Response:
    """An HTML answer with the strict CSP."""
    return Response(body.encode("utf-8"), status_code=status, headers=html_headers())


def page(handler: Handler) -> Handler:
    """A page handler whose errors reach browsers as HTML pages and programs as the envelope."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except GatewayError as err:
            if not wants_html(request):
                raise
            request.scope.setdefault("state", {})["error_code"] = err.code  # counted like any error
            title = HTTPStatus(err.status).phrase
            return html(app_state(request)["pages"].error(err.status, title, err.message), err.status)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def _run(state: AppState, run_id: str) -> RunDocument:
    if not is_run_id(run_id):
        raise NotFound(f"no run {run_id!r}", details={"run_id": run_id})
    return await state["store"].get(run_id)


@page
async def console(request: Request) -> Response:
    """`GET /`: start a run (a sample product preloaded with `?sample=`), follow it, list recent runs."""
    state = app_state(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in _STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}", details={"path": "status"})
    sample = request.query_params.get("sample") or None
    renderer = state["pages"]
    if sample is not None and sample not in renderer.samples:
        raise InvalidRequest(f"no sample product {sample!r}", details={"path": "sample"})
    runs = await state["store"].recent(state["config"].runs.recent_limit, status=_status(status))
    product = renderer.samples[sample] if sample else None
    return html(renderer.console(runs, status=status, product=product, sample=sample))


def _status(value: str | None) -> RunStatus | None:
    for status in _STATUSES:
        if value == status:
            return status
    return None


@page
async def run_page(request: Request) -> Response:
    """`GET /runs/{run_id}`: the product detail page, then the run's inside view."""
    state = app_state(request)
    doc = await _run(state, request.path_params["run_id"])
    recent = await state["store"].recent(state["config"].runs.recent_limit)
    earlier = [d for d in recent if d.product.name == doc.product.name and d.started_at < doc.started_at]
    previous = max(earlier, key=lambda d: d.started_at).run_id if earlier else None
    return html(state["pages"].run_page(doc, compare_with=previous))


@page
async def compare(request: Request) -> Response:
    """`GET /compare?run=A&run=B`: two runs side by side."""
    state = app_state(request)
    ids = request.query_params.getlist("run")
    if len(ids) != 2:
        raise InvalidRequest("compare needs exactly two runs: /compare?run=A&run=B", details={"path": "run"})
    docs = [await _run(state, run_id) for run_id in ids]
    return html(state["pages"].compare(docs))


async def run_image_bytes(state: AppState, image: RunImage) -> bytes:
    """A run image's bytes from the run image store; an image kept before this store existed (or by a
    process without one) is fetched from the Media Gateway once and kept now."""
    data = await state["images"].get(image.sha256)
    if data is not None:
        return data
    data = await state["media"].image_bytes(image)
    await state["images"].put(data, sha256=image.sha256)
    return data


async def run_image(request: Request) -> Response:
    """`GET /runs/{run_id}/images/{image_id}`: a run's image, from the copy kept with the run."""
    state = app_state(request)
    doc = await _run(state, request.path_params["run_id"])
    image_id = request.path_params["image_id"]
    image = next((i for i in doc.images if i.id == image_id), None)
    if image is None:
        raise NotFound(f"run {doc.run_id} has no image {image_id!r}", details={"image_id": image_id})
    etag = f'"{image.sha256}"'
    headers = {
        "etag": etag,
        # Content-addressed, so it never changes; private, because it may sit behind an API key.
        "cache-control": "private, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = await run_image_bytes(state, image)
    media_type = image.mime_type if image.mime_type in _IMAGE_TYPES else "application/octet-stream"
    return Response(data, media_type=media_type, headers=headers)


@page
async def export(request: Request) -> Response:
    """`GET /runs/{run_id}/export`: the run as a zip of a folder that opens from disk."""
    state = app_state(request)
    doc = await _run(state, request.path_params["run_id"])

    async def image_bytes(image: RunImage) -> bytes | None:
        try:
            return await run_image_bytes(state, image)
        except GatewayError:
            return None  # the page in the export then says the image is missing

    files = await export_files(doc, state["pages"], image_bytes)
    return Response(
        zip_export(files, doc.run_id),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{doc.run_id}.zip"', "cache-control": "no-store"},
    )


async def api_docs(request: Request) -> Response:
    """`GET /docs`: the API, for people (`/openapi.json` for programs)."""
    return html(app_state(request)["pages"].api_docs(request.app.state.openapi))


def _static(name: str) -> Handler:
    async def endpoint(request: Request) -> Response:
        served = app_state(request)["pages"].static[name]
        headers = {"etag": served.etag, "cache-control": "no-cache", "x-content-type-options": "nosniff"}
        if request.headers.get("if-none-match") == served.etag:
            return Response(status_code=304, headers=headers)
        return Response(served.body, headers={**headers, "content-type": served.media_type})

    endpoint.__doc__ = f"`GET /static/{name}`."
    return endpoint


async def start_session(request: Request) -> Response:
    """`POST /api/v1/console/session` `{"key": ...}`: a browser session cookie for a configured API key."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the key as application/json")
    sessions = app_state(request)["sessions"]
    body = await decode_body(request, _decode_login, max_bytes=8_192)
    if not sessions.enabled:
        return MsgspecResponse({"status": "open"})  # no keys configured: nothing to remember
    token = sessions.login(body.key)
    if token is None:
        raise Unauthorized("that is not one of this orchestrator's API keys")
    secure = request.url.scheme == "https"
    return MsgspecResponse({"status": "ok"}, headers={"set-cookie": sessions.cookie(token, secure=secure),
                                                       "cache-control": "no-store"})


async def end_session(request: Request) -> Response:
    """`DELETE /api/v1/console/session`: forget this browser's session."""
    sessions = app_state(request)["sessions"]
    secure = request.url.scheme == "https"
    return MsgspecResponse({"status": "ok"}, headers={"set-cookie": sessions.clear_cookie(secure=secure)})


PAGE_ROUTES = [
    Route("/", console, methods=["GET"]),
    Route("/runs/{run_id}", run_page, methods=["GET"]),
    Route("/runs/{run_id}/images/{image_id}", run_image, methods=["GET"]),
    Route("/runs/{run_id}/export", export, methods=["GET"]),
    Route("/compare", compare, methods=["GET"]),
    Route("/docs", api_docs, methods=["GET"]),
    Route("/static/console.css", _static("console.css"), methods=["GET"]),
    Route("/static/console.js", _static("console.js"), methods=["GET"]),
    Route("/static/favicon.svg", _static("favicon.svg"), methods=["GET"]),
    Route("/api/v1/console/session", start_session, methods=["POST"]),
    Route("/api/v1/console/session", end_session, methods=["DELETE"]),
]
