"""The ComfyUI provider: submit an API-format graph, follow it over the WebSocket, download its outputs.

Protocol facts this module relies on (measured on a real server):
- events reach only the `client_id` given in `POST /prompt`, so the socket is connected first;
- a prompt ends with `executing {"node": null}`; only then is `/history/{id}` certain to be written;
- `/history/{id}` answers `200 {}` for unknown AND unfinished prompts, so `/queue` tells them apart;
- an identical resubmission is served from cache and `executed` names the old file, which is still valid;
- `/interrupt` is sent only with this prompt's id and only while `/queue` says it runs; never a global one.
- events of a prompt posted by an earlier process went to that process's `client_id`, so a resumed
  prompt is followed by polling `/history` and `/queue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
import structlog

from service_common.client import HttpClient, Reply
from shared_contracts.errors import (
    GatewayError,
    InvalidWorkflow,
    NotReady,
    ProviderUnavailable,
    UpstreamError,
)

from .base import Capacity, MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage
from .comfyui_errors import execution_failure, without_paths
from .comfyui_socket import DISCONNECTED, RECONNECTED, ComfyUISocket, Frame, Marker
from .comfyui_wire import HistoryEntry, ImageRef, PromptRun, decode_accepted, decode_history, decode_queue, rejection

__all__ = ["ComfyUIProvider", "ComfyUISettings"]

_log = structlog.get_logger(component="comfyui")
Positive = Annotated[float, msgspec.Meta(gt=0)]


class ComfyUISettings(ProviderSettings, frozen=True):
    """One ComfyUI instance."""

    base_url: str
    # ComfyUI runs one queue; more prompts than this wait in the gateway and report `queued`.
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 2
    # Jobs allowed to wait in the gateway for one of those slots; beyond it a request gets 429 `overloaded`.
    max_queue: Annotated[int, msgspec.Meta(ge=0)] = 16
    # `Retry-After` sent with that 429.
    retry_after_s: Positive = 5.0
    request_timeout_s: Positive = 30.0
    connect_timeout_s: Positive = 10.0
    # How often `/history` is polled while the socket is down.
    poll_interval_s: Positive = 1.0
    reconnect_min_s: Positive = 0.5
    reconnect_max_s: Positive = 10.0
    # A job that finds the WebSocket down makes one connection attempt now (shared with the jobs arriving
    # meanwhile), not after the backoff; but after an attempt that ran into connect_timeout_s (an unreachable
    # host) jobs fail at once for this long instead of each waiting that timeout.
    recheck_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # Budget for deleting/interrupting a prompt after a cancel or timeout.
    cancel_timeout_s: Positive = 5.0


class ComfyUIProvider(MediaProvider):
    """Renders API-format graphs on one ComfyUI instance over HTTP plus one shared WebSocket."""

    Settings = ComfyUISettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, ComfyUISettings):
            raise TypeError(f"{type(self).__name__} needs ComfyUISettings, got {type(settings).__name__}")
        self.cfg = settings
        self.base_url = settings.base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        # Every HTTP call sets its own deadline; the WebSocket on the same pool lives for hours.
        self.client = HttpClient(name, base_url=self.base_url, connect_timeout=settings.connect_timeout_s)
        self._socket = ComfyUISocket(
            self.client,
            f"{self.base_url.replace('http', 'ws', 1)}/ws?clientId={self.client_id}",
            reconnect_min_s=settings.reconnect_min_s,
            reconnect_max_s=settings.reconnect_max_s,
            handshake_timeout_s=settings.connect_timeout_s,
            recheck_s=settings.recheck_s,
        )

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self._socket.close()
        await self.client.close()

    async def health(self, *, deadline: float) -> None:
        """Ready when `/system_stats` answers and the event socket is connected (jobs need both)."""
        try:
            reply = await self.client.request("GET", "/system_stats", deadline=deadline)
        except GatewayError as exc:
            raise NotReady(f"{self.name}: ComfyUI does not answer", details=self._state()) from exc
        if reply.status != 200:
            raise NotReady(f"{self.name}: /system_stats answered {reply.status}", details=self._state())
        budget = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await self._socket.ready(min(budget, self.cfg.connect_timeout_s)):
            raise NotReady(f"{self.name}: the ComfyUI WebSocket is not connected", details=self._state())

    def status(self) -> dict[str, str]:
        return {"websocket": self._socket.state}

    def _state(self) -> dict[str, str | None]:
        return {"provider": self.name, "websocket": self._socket.state, "error": self._socket.last_error}

    def capacity(self) -> Capacity:
        return Capacity(max_jobs=self.cfg.max_in_flight + self.cfg.max_queue, retry_after_s=self.cfg.retry_after_s)

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        if call.graph is None:
            raise InvalidWorkflow(f"workflow {call.workflow!r} has no graph file, which {self.name} needs")
        socket = self._require_socket()
        progress("queued", 0.0)
        # Checked before waiting for a slot and again once one is free: while ComfyUI is unreachable every
        # waiting job fails at once, instead of each spending a connect timeout holding a slot.
        await self._connected(socket)
        async with self._slots:
            await self._connected(socket)
            generation = socket.generation
            prompt_id = await self._submit_shielded(call)
            # A reconnect while the POST was in flight may have lost this prompt's frames (even its end),
            # and the markers went only to prompts already known: so ask /history once.
            return await self._outcome(
                call, prompt_id, socket, progress, resumed=False, reconcile=socket.generation != generation
            )

    async def resume(self, call: RenderCall, upstream_id: str, *, progress: ProgressCallback) -> list[RenderedImage]:
        socket = self._require_socket()
        async with self._slots:
            await self._connected(socket)
            _log.info("comfyui_prompt_resumed", prompt_id=upstream_id, job_id=call.job_id)
            return await self._outcome(call, upstream_id, socket, progress, resumed=True, reconcile=True)

    async def _connected(self, socket: ComfyUISocket) -> None:
        if not await socket.ready(self.cfg.connect_timeout_s):
            reason = f" ({socket.last_error})" if socket.last_error else ""
            raise ProviderUnavailable(
                f"{self.name}: ComfyUI is unreachable, its WebSocket is {socket.state}{reason}",
                details={"provider": self.name, "websocket": socket.state},
            )

    async def _outcome(
        self,
        call: RenderCall,
        prompt_id: str,
        socket: ComfyUISocket,
        progress: ProgressCallback,
        *,
        resumed: bool,
        reconcile: bool,
    ) -> list[RenderedImage]:
        """Follow `prompt_id` to its end and download its images; a cancel releases it upstream.

        `reconcile` starts from what `/history` and `/queue` know (a resumed prompt's frames went to an
        earlier client; frames sent during a reconnect are gone).
        """
        total = len(call.graph) if call.graph is not None else 1
        run = PromptRun(prompt_id=prompt_id, total_nodes=total, output_nodes=call.output_nodes)
        if reconcile:
            socket.watch(prompt_id).put_nowait(RECONNECTED)
        try:
            if not resumed:
                if call.on_accepted is not None:
                    call.on_accepted(prompt_id)
                _log.info("comfyui_prompt_queued", prompt_id=prompt_id, job_id=call.job_id)
            await self._follow(run, socket, progress, poll=resumed)
        except asyncio.CancelledError:
            if call.keep_upstream is not None and call.keep_upstream():
                # Shutting down: the prompt runs on in ComfyUI and the next process follows it (as after a crash).
                _log.info("comfyui_prompt_kept", prompt_id=prompt_id, job_id=call.job_id)
            else:
                _log.info("comfyui_prompt_released", prompt_id=prompt_id, job_id=call.job_id)
                await self._release(prompt_id)
            raise
        finally:
            socket.forget(prompt_id)
        if run.error is not None:
            raise execution_failure(run.error, prompt_id)
        if run.interrupted:
            raise UpstreamError(f"ComfyUI interrupted prompt {prompt_id}", details={"prompt_id": prompt_id})
        if not run.images:
            raise UpstreamError(f"ComfyUI finished prompt {prompt_id} without output images")
        return [await self._download(ref) for ref in run.images]

    def _require_socket(self) -> ComfyUISocket:
        if not self.client.started:
            raise ProviderUnavailable(f"{self.name}: provider not started")
        return self._socket

    async def _submit_shielded(self, call: RenderCall) -> str:
        # A cancel during the POST must not leave an orphan prompt: let the POST finish, then release it, or
        # (shutting down) record it so the next process follows it.
        assert call.graph is not None
        task = asyncio.ensure_future(self._submit(call.graph))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(GatewayError, TimeoutError):
                async with asyncio.timeout(self.cfg.cancel_timeout_s):
                    prompt_id = await task
                    if call.keep_upstream is not None and call.keep_upstream() and call.on_accepted is not None:
                        call.on_accepted(prompt_id)
                    else:
                        await self._release(prompt_id)
            raise

    async def _submit(self, graph: Mapping[str, Any]) -> str:
        payload = msgspec.json.encode({"prompt": graph, "client_id": self.client_id})
        reply = await self._http("POST", "/prompt", body=payload)
        if reply.status == 200:
            try:
                return decode_accepted.decode(reply.body).prompt_id
            except msgspec.DecodeError as exc:
                raise UpstreamError("ComfyUI accepted the prompt with an unreadable answer") from exc
        if reply.status == 400:
            raise rejection(reply.body)
        raise UpstreamError(
            f"ComfyUI answered {reply.status} to POST /prompt",
            details={"status": reply.status, "body": without_paths(reply.body[:300].decode("utf-8", "replace"))},
        )

    async def _follow(self, run: PromptRun, socket: ComfyUISocket, progress: ProgressCallback, *, poll: bool) -> None:
        queue = socket.watch(run.prompt_id)
        while True:
            item: Frame | Marker | None
            if socket.connected.is_set() and not poll:
                item = await queue.get()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), self.cfg.poll_interval_s)
                except TimeoutError:
                    item = None
            if item is DISCONNECTED:
                continue
            if isinstance(item, Frame):
                if run.apply(item, progress):
                    if not run.images and run.error is None and not run.interrupted:
                        await self._reconcile(run, progress)
                    return
                continue
            # A poll tick while down, or a reconnect: what the socket missed is in /history or /queue.
            if await self._reconcile(run, progress):
                return

    async def _reconcile(self, run: PromptRun, progress: ProgressCallback) -> bool:
        """True when `/history` shows the prompt finished (and `run` now holds its outcome)."""
        entry = await self._history(run.prompt_id)
        if entry is None:
            where = await self._queue_position(run.prompt_id)
            if where is not None:
                progress(where, run.fraction())
                return False
            # Neither queued nor running nor in history: maybe it finished between the two reads.
            entry = await self._history(run.prompt_id)
            if entry is None:
                raise UpstreamError(
                    f"ComfyUI lost prompt {run.prompt_id} (restarted?)", details={"prompt_id": run.prompt_id}
                )
        run.from_history(entry)
        return True

    async def _history(self, prompt_id: str) -> HistoryEntry | None:
        reply = await self._http("GET", f"/history/{prompt_id}")
        if reply.status != 200:
            raise UpstreamError(f"ComfyUI answered {reply.status} to GET /history", details={"status": reply.status})
        try:
            return decode_history.decode(reply.body).get(prompt_id)
        except msgspec.DecodeError as exc:
            raise UpstreamError("ComfyUI sent unreadable history") from exc

    async def _queue_position(self, prompt_id: str) -> Literal["running", "queued"] | None:
        reply = await self._http("GET", "/queue")
        if reply.status != 200:
            raise UpstreamError(f"ComfyUI answered {reply.status} to GET /queue", details={"status": reply.status})
        try:
            queue = decode_queue.decode(reply.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError("ComfyUI sent an unreadable queue") from exc
        # Queue items are [number, prompt_id, prompt, extra_data, outputs_to_execute, ...].
        if any(len(item) > 1 and item[1] == prompt_id for item in queue.get("queue_running", [])):
            return "running"
        if any(len(item) > 1 and item[1] == prompt_id for item in queue.get("queue_pending", [])):
            return "queued"
        return None

    async def _release(self, prompt_id: str) -> None:
        """Delete a queued prompt or interrupt it by id when running; best effort within the cancel budget."""
        try:
            async with asyncio.timeout(self.cfg.cancel_timeout_s):
                where = await self._queue_position(prompt_id)
                if where == "queued":
                    await self._http("POST", "/queue", body=msgspec.json.encode({"delete": [prompt_id]}))
                    where = await self._queue_position(prompt_id)
                if where == "running":
                    await self._http("POST", "/interrupt", body=msgspec.json.encode({"prompt_id": prompt_id}))
        except (GatewayError, TimeoutError) as exc:
            _log.warning("comfyui_release_failed", prompt_id=prompt_id, error=type(exc).__name__)

    async def _download(self, ref: ImageRef) -> RenderedImage:
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        reply = await self._http("GET", "/view", params=params)
        if reply.status != 200 or not reply.body:
            raise UpstreamError(
                f"ComfyUI /view answered {reply.status} for an output image", details={"status": reply.status}
            )
        mime = reply.content_type if reply.content_type.startswith("image/") else "image/png"
        return RenderedImage(data=reply.body, mime_type=mime)

    async def _http(
        self, method: str, path: str, *, body: bytes | None = None, params: Mapping[str, str] | None = None
    ) -> Reply:
        """One HTTP call bounded by `request_timeout_s`; any status is returned, transport failures raise."""
        deadline = asyncio.get_running_loop().time() + self.cfg.request_timeout_s
        return await self.client.request(method, path, body=body, params=params, deadline=deadline)
