"""The media service: turn an image request into a job on the right workflow and provider, store its images."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import msgspec

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import Mode
from shared_contracts.media import ImageInfo, ImageRequest, Job, JobStatus, WorkflowInfo

from .config import MediaConfig
from .jobs import JobRunner
from .providers.base import MediaProvider, RenderCall
from .routing import Router
from .store import ImageStore
from .workflows import Workflow

__all__ = ["IMAGES_PATH", "MediaService"]

IMAGES_PATH = "/api/v1/media/images/"
_SEED_SPACE = 2**32
_Progress = Callable[[JobStatus, float], None]


class MediaService:
    """Resolves workflow, parameters, seed and provider; hands the work to the job runner."""

    def __init__(
        self,
        config: MediaConfig,
        *,
        workflows: Mapping[str, Workflow],
        providers: Mapping[str, MediaProvider],
        store: ImageStore,
        runner: JobRunner,
    ) -> None:
        self.config = config
        self.workflows = workflows
        self.providers = providers
        self.store = store
        self.runner = runner
        self.router = Router(config.routing, workflows)

    def mode_for(self, header: str | None) -> Mode:
        """The service's mode, or the `X-Generator-Mode` header's when the YAML allows it."""
        if header is None or not self.config.allow_mode_header:
            return self.config.mode
        if header not in ("mock", "live"):
            raise InvalidRequest("X-Generator-Mode must be 'mock' or 'live'", details={"header": header})
        return "mock" if header == "mock" else "live"

    def timeout_for(self, mode: Mode) -> float:
        """The mode's job timeout in seconds."""
        return self.config.timeouts.mock if mode == "mock" else self.config.timeouts.live

    def workflow_infos(self) -> list[WorkflowInfo]:
        """Every configured workflow, described for clients."""
        return [wf.info() for wf in self.workflows.values()]

    async def submit(self, request: ImageRequest, *, mode: Mode, request_id: str | None) -> Job:
        """Validate and start a job; parameter problems raise before anything is queued."""
        workflow = self.router.workflow_for(request)
        seed = request.seed if request.seed is not None else self._seed(request, mode)
        values = workflow.resolve(request, seed=seed)
        provider_name = self.config.mock_provider if mode == "mock" else workflow.spec.provider
        provider = self.providers[provider_name]
        job_id = uuid.uuid4().hex
        call = RenderCall(
            job_id=job_id,
            workflow=workflow.name,
            params=values,
            graph=workflow.inject(values),
            output_nodes=tuple(workflow.spec.outputs),
            options=workflow.spec.options,
        )
        job = Job(
            id=job_id,
            status="queued",
            mode=mode,
            provider=provider_name,
            workflow=workflow.name,
            progress=0.0,
            images=[],
            seed=seed,
            error=None,
            created_at=datetime.now(UTC),
            started_at=None,
            finished_at=None,
            latency_ms=None,
        )

        async def work(progress: _Progress) -> list[ImageInfo]:
            rendered = await provider.render(call, progress=progress)
            return [await self._store(image.data) for image in rendered]

        deadline = asyncio.get_running_loop().time() + self.timeout_for(mode)
        await self.runner.start(job, work, deadline=deadline, request_id=request_id)
        return job

    async def _store(self, data: bytes) -> ImageInfo:
        stored = await self.store.put(data)
        return ImageInfo(
            id=stored.id,
            url=IMAGES_PATH + stored.id,
            mime_type=stored.mime_type,
            width=stored.width,
            height=stored.height,
            bytes=stored.bytes,
            sha256=stored.sha256,
        )

    @staticmethod
    def _seed(request: ImageRequest, mode: Mode) -> int:
        # Mock output must be the same for the same request, so its seed comes from the request itself.
        if mode == "mock":
            key = msgspec.json.encode(msgspec.structs.replace(request, wait=True, metadata={}))
            return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % _SEED_SPACE
        return secrets.randbelow(_SEED_SPACE)
