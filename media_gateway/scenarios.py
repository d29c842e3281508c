"""Failure scenarios in mock mode (`X-Mock-Scenario` on `image/generate`): the mock wrapped to fail like ComfyUI.

The job runs through the same runner, deadline, store and metrics as any other; only the render differs:

- `slow=<ms>`: the job is queued, then runs `<ms>` milliseconds reporting `running` progress several
  times (so SSE followers see `progress` events and `DELETE` can cancel it), then renders as usual;
- `exec_error`: it runs a little, then fails as a ComfyUI execution error does (502 `upstream_error`
  naming the node, its type and the exception);
- `unavailable`: the image backend cannot be reached (503 `provider_unavailable`, as with ComfyUI down);
- `timeout`: it never finishes, so it ends 504 `upstream_timeout` at the job's deadline (the mode's job
  timeout, shortened by `X-Request-Timeout`).
"""

from __future__ import annotations

import asyncio

from shared_contracts.errors import ProviderUnavailable
from shared_contracts.scenarios import Scenario

from .providers.base import Capacity, MediaProvider, ProgressCallback, RenderCall, RenderedImage
from .providers.comfyui_errors import execution_failure

__all__ = ["EXEC_ERROR", "ScenarioImages", "progress_steps"]

# What ComfyUI reports when a sampler runs out of GPU memory: the commonest execution error in practice.
EXEC_ERROR = {
    "node_id": "3",
    "node_type": "KSampler",
    "exception_type": "torch.OutOfMemoryError",
    "exception_message": "CUDA out of memory. Tried to allocate 2.50 GiB.",
}
_STEP_MS = 200.0


def progress_steps(ms: float) -> int:
    """How many `running` progress reports a slow job of `ms` milliseconds makes: one per 200 ms, 4 to 50."""
    return max(4, min(50, round(ms / _STEP_MS)))


class ScenarioImages(MediaProvider):
    """The mock image provider doing what `scenario` says before (or instead of) rendering."""

    kind = "mock"

    def __init__(self, inner: MediaProvider, scenario: Scenario) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self.scenario = scenario

    def _note(self) -> str:
        return f"(X-Mock-Scenario: {self.scenario.header})"

    def capacity(self) -> Capacity | None:
        return self.inner.capacity()

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        name = self.scenario.name
        if name == "unavailable":
            raise ProviderUnavailable(
                f"{self.name}: ComfyUI is unreachable, its WebSocket is down {self._note()}",
                details={"provider": self.name, "websocket": "down"},
            )
        progress("queued", 0.0)
        if name == "timeout":
            # Queued and never started, as behind a stuck prompt: the job's deadline ends it.
            await asyncio.Event().wait()
        if name == "exec_error":
            progress("running", 0.25)
            await asyncio.sleep(0)
            error = {**EXEC_ERROR, "exception_message": f"{EXEC_ERROR['exception_message']} {self._note()}"}
            raise execution_failure(error, f"mock-{call.job_id}")
        if name == "slow":
            ms = self.scenario.value or 0.0
            steps = progress_steps(ms)
            for step in range(steps):
                progress("running", round(step / steps * 0.9, 4))
                await asyncio.sleep(ms / steps / 1000)
        return await self.inner.render(call, progress=progress)

    async def health(self, *, deadline: float) -> None:
        await self.inner.health(deadline=deadline)
