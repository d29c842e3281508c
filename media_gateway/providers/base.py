"""The media provider interface: every image backend (ComfyUI, mock, a cloud image API) is one subclass.

YAML names the class by import path (`class: "media_gateway.providers.comfyui:ComfyUIProvider"`); the
gateway builds it with `cls(name, settings)`, `settings` being the rest of that YAML section converted to
the class's own `Settings` Struct. Adding a provider is one module plus YAML; no gateway code changes.

Lifecycle: `start()` once in the app's lifespan (open the pooled aiohttp session), `render()` per job,
`health()` for `/readyz`, `close()` on shutdown.

Restarts: a provider whose upstream keeps queued work (ComfyUI) reports the upstream's id for a job
through `call.on_accepted`, and implements `resume()` so a restarted gateway can pick the job up again.

Cancelling and timeouts are plain asyncio task cancellation: the gateway runs `render()` inside
`asyncio.timeout_at(deadline)` and cancels the task on `DELETE /jobs/{id}`. A provider that holds work
upstream (a queued prompt) must release it when `CancelledError` reaches it, then re-raise; except when
`call.keep_upstream()` says the gateway is shutting down and a restarted one resumes the job.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from service_common.providers import ProviderSettings
from shared_contracts.errors import UpstreamError

from ..slots import SlotLedger

__all__ = [
    "Capacity", "MediaProvider", "ProgressCallback", "ProviderSettings", "RenderCall", "RenderedImage", "UpstreamRef",
]

ProgressCallback = Callable[[Literal["queued", "running"], float], None]
"""`progress(status, fraction)`: report `queued` while waiting upstream, `running` with 0..1 as work advances."""


@dataclass(frozen=True, slots=True)
class RenderCall:
    """One job for one provider: resolved parameters, and the injected graph for graph backends.

    `params` always holds `prompt`, `negative_prompt`, `width`, `height`, `seed` and `count`, plus the
    workflow's extra parameters with YAML defaults applied. Cloud providers read `params` (and their
    `options`, e.g. a model name from YAML) and ignore `graph`.
    """

    job_id: str
    workflow: str
    params: Mapping[str, Any]
    # ComfyUI API-format graph with `params` already written in; None for workflows without a graph file.
    graph: Mapping[str, Any] | None = None
    # Node ids whose images are the result; empty means every saved output image.
    output_nodes: tuple[str, ...] = ()
    # The workflow's provider-specific `options` from YAML; never from a client.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Told the upstream's own id for this work once it has accepted it (kept so a restart can resume).
    on_accepted: Callable[[str], None] | None = None
    # Asked when the render is cancelled: True means the gateway is shutting down and the next process
    # resumes this job, so the upstream work must be left running instead of released.
    keep_upstream: Callable[[], bool] | None = None
    # Awaited before the work is submitted, with the instance it goes to and the id it is submitted under,
    # so a replica that adopts the job after a crash finds it there instead of submitting it twice.
    on_bind: Callable[[str | None, str], Awaitable[None]] | None = None
    # Where per-instance slots are counted (shared by replicas with a PostgreSQL job store); None: the
    # provider's own ledger.
    slots: SlotLedger | None = None


@dataclass(frozen=True, slots=True)
class UpstreamRef:
    """Where an unfinished job's work is: the upstream's id for it, the instance, and whether it was accepted.

    `accepted` False: the id was recorded before submitting and the process stopped before the answer, so
    the upstream may or may not have it.
    """

    id: str
    instance: str | None = None
    accepted: bool = True


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many jobs a provider holds at once (rendering plus waiting), and the `Retry-After` when full."""

    max_jobs: int
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class RenderedImage:
    """One finished image as encoded bytes (PNG, JPEG or WebP) and its MIME type."""

    data: bytes
    mime_type: str


class MediaProvider(abc.ABC):
    """Abstract image provider. Implementations raise only `shared_contracts.errors` classes."""

    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    # `live` providers talk to a real upstream; the `mock` one draws images locally.
    kind: ClassVar[Literal["live", "mock"]] = "live"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings

    async def start(self) -> None:
        """Open resources (the pooled aiohttp session). Called once in the app's lifespan."""

    async def close(self) -> None:
        """Release resources. Called once on shutdown."""

    @abc.abstractmethod
    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        """Produce the job's images (`params["count"]` of them when the backend can), reporting progress."""

    def capacity(self) -> Capacity | None:
        """The bound on jobs this provider accepts at once; None means unbounded."""
        return None

    async def resume(
        self, call: RenderCall, upstream: UpstreamRef, *, progress: ProgressCallback
    ) -> list[RenderedImage]:
        """Finish a job whose work an earlier process (or another replica) handed to the upstream."""
        raise UpstreamError(
            f"{self.name} cannot resume a job after a gateway restart", details={"upstream_id": upstream.id}
        )

    def instances(self) -> dict[str, dict[str, Any]]:
        """Each upstream instance's state for `/readyz` and `/metrics` (a pool's); empty for single upstreams."""
        return {}

    async def health(self, *, deadline: float) -> None:
        """Return when the upstream answers before `deadline` (a `loop.time()`); raise a GatewayError otherwise."""

    def status(self) -> dict[str, str]:
        """Connection states `/readyz` shows for this provider (ComfyUI: its WebSocket); empty when none."""
        return {}
