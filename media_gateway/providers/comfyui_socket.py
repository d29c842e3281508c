"""ComfyUI's event WebSocket: one long-lived connection per provider, frames routed to prompts by id.

ComfyUI sends execution events only to the `clientId` named in `POST /prompt`, and they can arrive
before that POST returns; so the socket is connected first and frames are buffered per `prompt_id`
until the prompt's follower picks them up. When the socket drops, every follower gets `DISCONNECTED`
(it then polls `/history`), and after the reconnect `RECONNECTED` (it reconciles once with `/history`).

The socket is also the provider's health gate: `ready()` answers at once from the last connection
attempt (a job fails fast while ComfyUI is unreachable), and a caller that finds it down starts the
next attempt now instead of waiting out the reconnect backoff (a restarted ComfyUI is used at once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from typing import Any, Final, Literal

import aiohttp
import msgspec
import structlog

from service_common.client import HttpClient
from shared_contracts.errors import GatewayError, UpstreamTimeout

__all__ = ["DISCONNECTED", "RECONNECTED", "ComfyUISocket", "Frame", "Marker", "SocketState"]

SocketState = Literal["idle", "connecting", "connected", "down"]
"""`idle`: never needed yet (mock mode); `down`: the last attempt failed; `connecting`: an attempt is under way."""

_log = structlog.get_logger(component="comfyui.socket")


class Frame(msgspec.Struct):
    """One JSON event: `{"type": ..., "data": {...}}`; unknown fields and types are tolerated."""

    type: str
    data: dict[str, Any] = {}


class Marker:
    """A connection-state notice put in every follower's queue."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


DISCONNECTED: Final = Marker("disconnected")
RECONNECTED: Final = Marker("reconnected")

_decode_frame = msgspec.json.Decoder(Frame)
# Ids of prompts already followed to the end; late frames for them are dropped instead of buffered.
_FINISHED_MEMORY = 1024


class ComfyUISocket:
    """Owns the `ws://host/ws?clientId=<id>` connection and reconnects it for as long as it runs."""

    def __init__(
        self,
        client: HttpClient,
        url: str,
        *,
        reconnect_min_s: float,
        reconnect_max_s: float,
        handshake_timeout_s: float = 10.0,
        recheck_s: float = 1.0,
    ) -> None:
        self._client = client
        self._url = url
        self._min, self._max = reconnect_min_s, reconnect_max_s
        self._handshake = handshake_timeout_s
        self._recheck = recheck_s
        self.connected = asyncio.Event()
        # Counts successful connects: a follower that sees it change knows frames may have been missed.
        self.generation = 0
        self._queues: dict[str, asyncio.Queue[Frame | Marker]] = {}
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.state: SocketState = "idle"
        # Why the last attempt failed (an exception's class name), and when (loop time); None once connected.
        self.last_error: str | None = None
        self._failed_at: float | None = None
        # Counts finished connection attempts, so a waiter learns the outcome of the one it asked for.
        self._attempts = 0
        self._changed = asyncio.Condition()
        # Set to cut the backoff short: someone needs the socket now, and waits for attempt number `_wanted`.
        self._wake = asyncio.Event()
        self._wanted = 0
        # Prompts queued or running in ComfyUI (all clients'), from its last `status` frame: a pool's load.
        self.queue_remaining = 0

    def ensure_started(self) -> None:
        """Start the connection loop on first use, so a gateway in mock mode never dials ComfyUI."""
        if self._task is None:
            # A fresh context: the loop outlives the request that started it, so it must not log its ids.
            self._task = asyncio.create_task(self._run(), name="comfyui-socket", context=contextvars.Context())

    async def close(self) -> None:
        """Stop the loop and drop the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected.clear()
        self.state = "idle"

    async def ready(self, timeout: float) -> bool:
        """True when connected; else the outcome of one connection attempt made now, bounded by `timeout`.

        Callers that arrive during an attempt share its outcome. A refused connection costs nothing, so it
        is tried again on demand (a restarted ComfyUI is used at once); an attempt that ran into its
        timeout (an unreachable host) is taken as the answer for `recheck_s`, so a burst of jobs fails at
        once instead of each waiting for a connect timeout.
        """
        self.ensure_started()
        if self.connected.is_set():
            return True
        loop = asyncio.get_running_loop()
        if self.state == "down" and self._failed_at is not None and loop.time() - self._failed_at < self._recheck:
            return False
        start = self._attempts
        self._wanted = max(self._wanted, start + 1)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.connected.is_set() or self._attempts > start)
        except TimeoutError:
            return False
        return self.connected.is_set()

    async def _settled(self, state: SocketState, error: str | None = None, *, slow: bool = False) -> None:
        """One attempt is over (or a connection dropped): record it and wake the waiters of `ready()`.

        `slow`: the attempt failed by running into its timeout; only such a failure is reused by `ready()`.
        """
        self.state = state
        self.last_error = error
        self._failed_at = asyncio.get_running_loop().time() if state == "down" and slow else None
        async with self._changed:
            self._attempts += 1
            self._changed.notify_all()

    async def wait_connected(self, timeout: float) -> bool:
        """True once connected; False when `timeout` passes first."""
        self.ensure_started()
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        except TimeoutError:
            return False
        return True

    def watch(self, prompt_id: str) -> asyncio.Queue[Frame | Marker]:
        """The queue of `prompt_id`'s frames, including any that arrived before the POST returned."""
        return self._queues.setdefault(prompt_id, asyncio.Queue())

    def forget(self, prompt_id: str) -> None:
        """Stop buffering for a prompt that has been followed to its end."""
        self._queues.pop(prompt_id, None)
        self._finished[prompt_id] = None
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _broadcast(self, marker: Marker) -> None:
        for queue in self._queues.values():
            queue.put_nowait(marker)

    def _dispatch(self, text: str) -> None:
        try:
            frame = _decode_frame.decode(text)
        except (msgspec.DecodeError, RecursionError):
            _log.warning("comfyui_bad_frame", size=len(text))
            return
        prompt_id = frame.data.get("prompt_id")
        if frame.type == "status":
            self._note_queue(frame.data)
        # `status` frames (queue size, other clients' work) carry no prompt id and need no follower.
        if isinstance(prompt_id, str) and prompt_id not in self._finished:
            self.watch(prompt_id).put_nowait(frame)

    def _note_queue(self, data: dict[str, Any]) -> None:
        status = data.get("status")
        info = status.get("exec_info") if isinstance(status, dict) else None
        remaining = info.get("queue_remaining") if isinstance(info, dict) else None
        if isinstance(remaining, int) and not isinstance(remaining, bool) and remaining >= 0:
            self.queue_remaining = remaining

    async def _run(self) -> None:
        delay = self._min
        while True:
            self.state = "connecting"
            try:
                # A server that accepts the connection and never answers the upgrade would hold this loop for
                # ever without this bound.
                handshake_deadline = asyncio.get_running_loop().time() + self._handshake
                ws = await self._client.websocket(self._url, deadline=handshake_deadline, heartbeat=20.0)
                async with ws:
                    self.generation += 1
                    self.connected.set()
                    delay = self._min
                    await self._settled("connected")
                    _log.info("comfyui_socket_connected")
                    # Frames missed while down are gone: each follower reconciles with /history once.
                    self._broadcast(RECONNECTED)
                    async for message in ws:
                        if message.type is aiohttp.WSMsgType.TEXT:
                            self._dispatch(message.data)
                        elif message.type is aiohttp.WSMsgType.ERROR:
                            break
                        # BINARY frames are latent previews, never outputs.
            except (GatewayError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                _log.warning("comfyui_socket_failed", error=type(exc).__name__, retry_in_s=delay)
                if not self.connected.is_set():
                    slow = isinstance(exc, TimeoutError | UpstreamTimeout)
                    await self._settled("down", type(exc).__name__, slow=slow)
            if self.connected.is_set():
                self.connected.clear()
                _log.warning("comfyui_socket_dropped")
                self._broadcast(DISCONNECTED)
                # A drop is no failed attempt: the next `ready()` asks for a new one at once.
                await self._settled("connecting")
            # A caller of `ready()` that arrived during the attempt got its outcome; one that came after waits.
            if self._wanted <= self._attempts:
                self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            delay = min(delay * 2, self._max)
