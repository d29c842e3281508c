"""The ComfyUI provider: submit an API-format graph, follow it over the WebSocket, download its outputs.

Protocol facts this module relies on (measured on a real server):
- events reach only the `client_id` given in `POST /prompt`, so the socket is connected first;
- a prompt ends with `executing {"node": null}`; only then is `/history/{id}` certain to be written;
- `/history/{id}` answers `200 {}` for unknown AND unfinished prompts, so `/queue` tells them apart;
- an identical resubmission is served from cache and `executed` names the old file, which is still valid;
- `/interrupt` is sent only with this prompt's id and only while `/queue` says it runs; never a global one.
- events of a prompt posted by an earlier process went to that process's `client_id`, so a resumed
  prompt is followed by polling `/history` and `/queue`;
- `POST /prompt` takes the prompt's id from the body when given, so it is chosen and recorded first.

A pool: `base_url` may list several instances (comma-separated, or `base_urls:`). Each job takes a slot
on the least-loaded connected instance under its `max_in_flight` (see `media_gateway/slots.py`; with a
PostgreSQL job store the count is shared by every replica), and stays bound to that instance: its cancel,
interrupt, history and resume go there. An instance whose socket is down gets no new work until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any

import msgspec
import structlog

from shared_contracts.errors import GatewayError, InvalidWorkflow, ProviderUnavailable, UpstreamError

from ..slots import LocalSlots, SlotLedger, SlotOffer
from .base import Capacity, MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage, UpstreamRef
from .comfyui_errors import execution_failure
from .comfyui_instance import ComfyUIInstance, split_urls
from .comfyui_socket import DISCONNECTED, RECONNECTED, Frame, Marker
from .comfyui_wire import PromptRun

__all__ = ["ComfyUIProvider", "ComfyUISettings"]

_log = structlog.get_logger(component="comfyui")
Positive = Annotated[float, msgspec.Meta(gt=0)]


class ComfyUISettings(ProviderSettings, frozen=True):
    """One ComfyUI instance, or a pool of them (every instance gets the same caps)."""

    # One URL, or several separated by commas (e.g. from COMFYUI_BASE_URL); `base_urls` may add more.
    base_url: str
    base_urls: list[str] = []
    # Prompts one instance holds at once (ComfyUI runs one queue); more wait in the gateway as `queued`.
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
    """Renders API-format graphs on a pool of ComfyUI instances, each over HTTP plus one shared WebSocket."""

    Settings = ComfyUISettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, ComfyUISettings):
            raise TypeError(f"{type(self).__name__} needs ComfyUISettings, got {type(settings).__name__}")
        self.cfg = settings
        urls = split_urls(settings.base_url, settings.base_urls)
        self.pool = [
            ComfyUIInstance(
                name, url,
                connect_timeout_s=settings.connect_timeout_s, request_timeout_s=settings.request_timeout_s,
                reconnect_min_s=settings.reconnect_min_s, reconnect_max_s=settings.reconnect_max_s,
                recheck_s=settings.recheck_s,
                details={"provider": name, "instance": url} if len(urls) > 1 else None,
            )
            for url in urls
        ]
        self.base_url = self.pool[0].url
        # Slots of this process, used when the job store counts none (tests calling render directly).
        self._own_slots = LocalSlots()

    async def start(self) -> None:
        for instance in self.pool:
            await instance.start()

    async def close(self) -> None:
        for instance in self.pool:
            await instance.close()

    async def health(self, *, deadline: float) -> None:
        """Ready when at least one instance answers and has its event socket connected."""
        problems: list[GatewayError] = []
        for instance in self.pool:
            try:
                await instance.health(deadline=deadline, connect_timeout_s=self.cfg.connect_timeout_s)
            except GatewayError as exc:
                problems.append(exc)
            else:
                return
        raise problems[0]

    def status(self) -> dict[str, str]:
        states = [instance.socket.state for instance in self.pool]
        return {"websocket": "connected" if "connected" in states else states[0]}

    def instances(self) -> dict[str, dict[str, Any]]:
        return {
            instance.name: {"websocket": instance.socket.state, "queue": instance.socket.queue_remaining,
                            "max_in_flight": self.cfg.max_in_flight}
            for instance in self.pool
        }

    def capacity(self) -> Capacity:
        return Capacity(max_jobs=self.cfg.max_in_flight * len(self.pool) + self.cfg.max_queue,
                        retry_after_s=self.cfg.retry_after_s)

    def _instance(self, name: str | None) -> ComfyUIInstance:
        if name is None:
            return self.pool[0]
        for instance in self.pool:
            if instance.name == name:
                return instance
        raise UpstreamError(
            f"{self.name}: the job's ComfyUI instance {name} is no longer configured",
            details={"provider": self.name, "instance": name},
        )

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        if call.graph is None:
            raise InvalidWorkflow(f"workflow {call.workflow!r} has no graph file, which {self.name} needs")
        self._require_started()
        progress("queued", 0.0)
        slots = call.slots or self._own_slots
        instance = await self._take_slot(call.job_id, slots)
        kept = False
        try:
            socket = instance.socket
            generation = socket.generation
            prompt_id = str(uuid.uuid4())
            if call.on_bind is not None:
                await call.on_bind(instance.name, prompt_id)
            # ComfyUI answers with the id it queued the prompt under: ours (an old server would pick its own).
            prompt_id = await self._submit_shielded(instance, call, prompt_id)
            # A reconnect while the POST was in flight may have lost this prompt's frames (even its end),
            # and the markers went only to prompts already known: so ask /history once.
            return await self._outcome(
                instance, call, prompt_id, progress, resumed=False, reconcile=socket.generation != generation
            )
        except asyncio.CancelledError:
            kept = call.keep_upstream is not None and call.keep_upstream()
            raise
        finally:
            # A job left to another process keeps its slot: its prompt is still on that instance.
            if not kept:
                await slots.release(call.job_id)

    async def resume(
        self, call: RenderCall, upstream: UpstreamRef, *, progress: ProgressCallback
    ) -> list[RenderedImage]:
        self._require_started()
        instance = self._instance(upstream.instance)
        slots = call.slots or self._own_slots
        await slots.keep(call.job_id, self.name, instance.name)
        kept = False
        try:
            await self._connected(instance)
            if not upstream.accepted and not await instance.known(upstream.id):
                # Recorded but never taken (the process stopped before or during the POST): submit it now,
                # under the same id, so it is in ComfyUI exactly once.
                _log.info("comfyui_prompt_submitted_on_resume", prompt_id=upstream.id, job_id=call.job_id)
                prompt_id = await self._submit_shielded(instance, call, upstream.id)
                return await self._outcome(instance, call, prompt_id, progress, resumed=True, reconcile=True,
                                           announce=True)
            _log.info("comfyui_prompt_resumed", prompt_id=upstream.id, job_id=call.job_id, instance=instance.name)
            if not upstream.accepted and call.on_accepted is not None:
                call.on_accepted(upstream.id)
            return await self._outcome(instance, call, upstream.id, progress, resumed=True, reconcile=True)
        except asyncio.CancelledError:
            kept = call.keep_upstream is not None and call.keep_upstream()
            raise
        finally:
            if not kept:
                await slots.release(call.job_id)

    async def _take_slot(self, job_id: str, slots: SlotLedger) -> ComfyUIInstance:
        """A slot on the least-loaded connected instance under its cap; waits (queued) while all are full."""
        while True:
            ready = [instance for instance in self.pool if instance.socket.connected.is_set()]
            if not ready:
                # None connected: one connection attempt each (shared with the other jobs arriving now).
                states = await asyncio.gather(*(self._probe(instance) for instance in self.pool))
                ready = [instance for instance, state in zip(self.pool, states, strict=True) if state is None]
                if not ready:
                    raise self._unreachable(states[0] or "down")
            offers = [SlotOffer(i.name, self.cfg.max_in_flight, i.socket.queue_remaining) for i in ready]
            chosen = await slots.take(job_id, self.name, offers)
            if chosen is not None:
                return self._instance(chosen)
            await slots.freed(self.cfg.poll_interval_s)

    async def _probe(self, instance: ComfyUIInstance) -> str | None:
        """None when the instance's socket is (or gets) connected; else its state right after the attempt."""
        if await instance.socket.ready(self.cfg.connect_timeout_s):
            return None
        return instance.socket.state

    def _unreachable(self, state: str) -> ProviderUnavailable:
        first = self.pool[0].socket
        reason = f" ({first.last_error})" if first.last_error else ""
        where = "every ComfyUI instance is" if len(self.pool) > 1 else "ComfyUI is"
        return ProviderUnavailable(
            f"{self.name}: {where} unreachable, its WebSocket is {state}{reason}",
            details={"provider": self.name, "websocket": state},
        )

    async def _connected(self, instance: ComfyUIInstance) -> None:
        if not await instance.socket.ready(self.cfg.connect_timeout_s):
            socket = instance.socket
            reason = f" ({socket.last_error})" if socket.last_error else ""
            raise ProviderUnavailable(
                f"{self.name}: ComfyUI is unreachable, its WebSocket is {socket.state}{reason}",
                details={"provider": self.name, "websocket": socket.state},
            )

    async def _outcome(
        self,
        instance: ComfyUIInstance,
        call: RenderCall,
        prompt_id: str,
        progress: ProgressCallback,
        *,
        resumed: bool,
        reconcile: bool,
        announce: bool | None = None,
    ) -> list[RenderedImage]:
        """Follow `prompt_id` to its end and download its images; a cancel releases it upstream.

        `reconcile` starts from what `/history` and `/queue` know (a resumed prompt's frames went to an
        earlier client; frames sent during a reconnect are gone).
        """
        socket = instance.socket
        total = len(call.graph) if call.graph is not None else 1
        run = PromptRun(prompt_id=prompt_id, total_nodes=total, output_nodes=call.output_nodes)
        if reconcile:
            socket.watch(prompt_id).put_nowait(RECONNECTED)
        try:
            if announce if announce is not None else not resumed:
                if call.on_accepted is not None:
                    call.on_accepted(prompt_id)
                _log.info("comfyui_prompt_queued", prompt_id=prompt_id, job_id=call.job_id)
            await self._follow(instance, run, progress, poll=resumed)
        except asyncio.CancelledError:
            if call.keep_upstream is not None and call.keep_upstream():
                # Shutting down: the prompt runs on in ComfyUI and the next process follows it (as after a crash).
                _log.info("comfyui_prompt_kept", prompt_id=prompt_id, job_id=call.job_id)
            else:
                _log.info("comfyui_prompt_released", prompt_id=prompt_id, job_id=call.job_id)
                await self._release(instance, prompt_id)
            raise
        finally:
            socket.forget(prompt_id)
        if run.error is not None:
            raise execution_failure(run.error, prompt_id)
        if run.interrupted:
            raise UpstreamError(f"ComfyUI interrupted prompt {prompt_id}", details={"prompt_id": prompt_id})
        if not run.images:
            raise UpstreamError(f"ComfyUI finished prompt {prompt_id} without output images")
        return [await instance.download(ref) for ref in run.images]

    def _require_started(self) -> None:
        if not self.pool[0].client.started:
            raise ProviderUnavailable(f"{self.name}: provider not started")

    async def _submit_shielded(self, instance: ComfyUIInstance, call: RenderCall, prompt_id: str) -> str:
        # A cancel during the POST must not leave an orphan prompt: let the POST finish, then release it, or
        # (shutting down) record it so the next process follows it.
        assert call.graph is not None
        task = asyncio.ensure_future(instance.submit(call.graph, prompt_id))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(GatewayError, TimeoutError):
                async with asyncio.timeout(self.cfg.cancel_timeout_s):
                    accepted = await task
                    if call.keep_upstream is not None and call.keep_upstream() and call.on_accepted is not None:
                        call.on_accepted(accepted)
                    else:
                        await self._release(instance, accepted)
            raise

    async def _follow(
        self, instance: ComfyUIInstance, run: PromptRun, progress: ProgressCallback, *, poll: bool
    ) -> None:
        socket = instance.socket
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
                        await self._reconcile(instance, run, progress)
                    return
                continue
            # A poll tick while down, or a reconnect: what the socket missed is in /history or /queue.
            if await self._reconcile(instance, run, progress):
                return

    async def _reconcile(self, instance: ComfyUIInstance, run: PromptRun, progress: ProgressCallback) -> bool:
        """True when `/history` shows the prompt finished (and `run` now holds its outcome)."""
        entry = await instance.history(run.prompt_id)
        if entry is None:
            where = await instance.queue_position(run.prompt_id)
            if where is not None:
                progress(where, run.fraction())
                return False
            # Neither queued nor running nor in history: maybe it finished between the two reads.
            entry = await instance.history(run.prompt_id)
            if entry is None:
                raise UpstreamError(
                    f"ComfyUI lost prompt {run.prompt_id} (restarted?)", details={"prompt_id": run.prompt_id}
                )
        run.from_history(entry)
        return True

    async def _release(self, instance: ComfyUIInstance, prompt_id: str) -> None:
        """Delete a queued prompt or interrupt it by id when running; best effort within the cancel budget."""
        try:
            await instance.release(prompt_id, timeout_s=self.cfg.cancel_timeout_s)
        except (GatewayError, TimeoutError) as exc:
            _log.warning("comfyui_release_failed", prompt_id=prompt_id, error=type(exc).__name__)
