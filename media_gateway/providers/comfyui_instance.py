"""One ComfyUI instance of a provider's pool: its HTTP client, its event socket, and the calls made to it.

Its `name` is its base URL, the key every replica records a job's binding under (so all must configure
the same URLs). Prompts are posted with an id chosen here (`prompt_id` in `POST /prompt`, which ComfyUI
honours), so the id can be recorded before the POST and a job adopted after a crash is found again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from service_common.client import HttpClient, Reply
from shared_contracts.errors import GatewayError, NotReady, UpstreamError

from .base import RenderedImage
from .comfyui_errors import without_paths
from .comfyui_socket import ComfyUISocket
from .comfyui_wire import HistoryEntry, ImageRef, decode_accepted, decode_history, decode_queue, rejection

__all__ = ["ComfyUIInstance", "split_urls"]


def split_urls(value: str, more: list[str]) -> list[str]:
    """`base_url` (one URL, or several separated by commas) plus `base_urls`, trailing slashes dropped."""
    urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
    urls += [url.strip().rstrip("/") for url in more if url.strip()]
    seen: list[str] = []
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: {url!r} must start with http:// or https://")
        if url not in seen:
            seen.append(url)
    if not seen:
        raise ValueError("base_url: at least one ComfyUI URL is required")
    return seen


class ComfyUIInstance:
    """The HTTP calls and the WebSocket of one ComfyUI server."""

    def __init__(
        self,
        provider: str,
        url: str,
        *,
        connect_timeout_s: float,
        request_timeout_s: float,
        reconnect_min_s: float,
        reconnect_max_s: float,
        recheck_s: float,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = url
        self.url = url
        self.client_id = uuid.uuid4().hex
        self._request_timeout = request_timeout_s
        # Every HTTP call sets its own deadline; the WebSocket on the same pool lives for hours.
        self.client = HttpClient(provider, base_url=url, connect_timeout=connect_timeout_s, details=details)
        self.socket = ComfyUISocket(
            self.client,
            f"{url.replace('http', 'ws', 1)}/ws?clientId={self.client_id}",
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            handshake_timeout_s=connect_timeout_s,
            recheck_s=recheck_s,
        )
        self.provider = provider

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.socket.close()
        await self.client.close()

    async def health(self, *, deadline: float, connect_timeout_s: float) -> None:
        """Ready when `/system_stats` answers and the event socket is connected (jobs need both)."""
        try:
            reply = await self.client.request("GET", "/system_stats", deadline=deadline)
        except GatewayError as exc:
            raise NotReady(f"{self.provider}: ComfyUI does not answer", details=self.state()) from exc
        if reply.status != 200:
            raise NotReady(f"{self.provider}: /system_stats answered {reply.status}", details=self.state())
        budget = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await self.socket.ready(min(budget, connect_timeout_s)):
            raise NotReady(f"{self.provider}: the ComfyUI WebSocket is not connected", details=self.state())

    def state(self) -> dict[str, str | None]:
        """The provider, instance and socket state, for errors and `/readyz`."""
        return {"provider": self.provider, "instance": self.name, "websocket": self.socket.state,
                "error": self.socket.last_error}

    async def submit(self, graph: Mapping[str, Any], prompt_id: str | None = None) -> str:
        """`POST /prompt` (under `prompt_id` when given); ComfyUI's id for it, or the mapped error."""
        body: dict[str, Any] = {"prompt": graph, "client_id": self.client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        reply = await self.http("POST", "/prompt", body=msgspec.json.encode(body))
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

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        reply = await self.http("GET", f"/history/{prompt_id}")
        if reply.status != 200:
            raise UpstreamError(f"ComfyUI answered {reply.status} to GET /history", details={"status": reply.status})
        try:
            return decode_history.decode(reply.body).get(prompt_id)
        except msgspec.DecodeError as exc:
            raise UpstreamError("ComfyUI sent unreadable history") from exc

    async def queue_position(self, prompt_id: str) -> Literal["running", "queued"] | None:
        reply = await self.http("GET", "/queue")
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

    async def known(self, prompt_id: str) -> bool:
        """Whether ComfyUI has the prompt: queued, running, or in its history."""
        return await self.queue_position(prompt_id) is not None or await self.history(prompt_id) is not None

    async def release(self, prompt_id: str, *, timeout_s: float) -> None:
        """Delete a queued prompt or interrupt it by id when running; best effort within `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            where = await self.queue_position(prompt_id)
            if where == "queued":
                await self.http("POST", "/queue", body=msgspec.json.encode({"delete": [prompt_id]}))
                where = await self.queue_position(prompt_id)
            if where == "running":
                await self.http("POST", "/interrupt", body=msgspec.json.encode({"prompt_id": prompt_id}))

    async def download(self, ref: ImageRef) -> RenderedImage:
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        reply = await self.http("GET", "/view", params=params)
        if reply.status != 200 or not reply.body:
            raise UpstreamError(
                f"ComfyUI /view answered {reply.status} for an output image", details={"status": reply.status}
            )
        mime = reply.content_type if reply.content_type.startswith("image/") else "image/png"
        return RenderedImage(data=reply.body, mime_type=mime)

    async def http(
        self, method: str, path: str, *, body: bytes | None = None, params: Mapping[str, str] | None = None
    ) -> Reply:
        """One HTTP call bounded by `request_timeout_s`; any status is returned, transport failures raise."""
        deadline = asyncio.get_running_loop().time() + self._request_timeout
        return await self.client.request(method, path, body=body, params=params, deadline=deadline)
