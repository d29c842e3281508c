"""The media service: turn an image request into a job on the right workflow and provider, store its images."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from service_common.modes import answering_mode, requested_mode
from shared_contracts.errors import InvalidRequest, Overloaded, UpstreamError, UpstreamTimeout
from shared_contracts.llm import Mode
from shared_contracts.media import ImageInfo, ImageRequest, Job, JobStatus, WorkflowInfo
from shared_contracts.scenarios import Scenario

from .config import MediaConfig
from .fixtures import MediaFixtures, routed
from .jobs import JobRegistry, JobRunner, JobTicket, Work
from .providers.base import MediaProvider, RenderCall, UpstreamRef
from .routing import WorkflowRouter
from .scenarios import ScenarioImages
from .store import ImageStore
from .workflows import Workflow

__all__ = ["IMAGES_PATH", "MediaService"]

IMAGES_PATH = "/api/v1/media/images/"
_SEED_SPACE = 2**32
_Progress = Callable[[JobStatus, float], None]
_log = structlog.get_logger(component="media_service")


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
        registry: JobRegistry | None = None,
        fixtures: MediaFixtures | None = None,
    ) -> None:
        self.config = config
        # Replay answers from these; in record mode every finished live job is saved to them.
        self.fixtures = fixtures
        self.mode: Mode = answering_mode(config.mode)
        self.workflows = workflows
        self.providers = providers
        self.store = store
        self.runner = runner
        self.registry = registry if registry is not None else runner.registry
        self.slots = self.registry.slots
        self.router = WorkflowRouter(config.routing, workflows)

    def mode_for(self, headers: Mapping[str, str]) -> Mode:
        """The service's mode, or the `X-Generator-Mode` header's when the YAML allows it."""
        return requested_mode(headers, allowed=self.config.allow_mode_header) or self.mode

    def timeout_for(self, mode: Mode) -> float:
        """The mode's job timeout in seconds (replay answers as fast as the mock: the mock's)."""
        return self.config.timeouts.live if mode == "live" else self.config.timeouts.mock

    def workflow_infos(self) -> list[WorkflowInfo]:
        """Every configured workflow, described for clients."""
        return [wf.info() for wf in self.workflows.values()]

    def held(self) -> dict[str, int]:
        """Jobs each provider holds now (rendering or waiting for a slot), from this process's runner."""
        counts = dict.fromkeys(self.providers, 0)
        for job in self.runner.active():
            counts[job.provider] = counts.get(job.provider, 0) + 1
        return counts

    async def submit(
        self,
        request: ImageRequest,
        *,
        mode: Mode,
        request_id: str | None,
        timeout: float | None = None,
        scenario: Scenario | None = None,
    ) -> Job:
        """Validate and start a job; parameter problems (and, replaying, a missing fixture) raise before
        anything is queued.

        `timeout` (seconds, covering queueing and rendering) defaults to the mode's; a full provider
        queue raises 429 `overloaded` with `Retry-After`. `scenario` (mock mode) makes the mock fail or
        run slowly as `X-Mock-Scenario` asked.
        """
        workflow = self.router.workflow_for(request)
        seed = request.seed if request.seed is not None else self._seed(request, mode)
        values = workflow.resolve(request, seed=seed)
        provider_name = self.config.mock_provider if mode == "mock" else workflow.spec.provider
        provider = self.providers[provider_name]
        replaying = mode == "replay"
        if replaying:
            fixture = self._fixtures().find(workflow.name, values, request)
            provider, provider_name, seed = self._fixtures().replaying(fixture), fixture.provider, fixture.seed
        else:
            await self._admit(provider_name, provider)
        if scenario is not None:
            provider = ScenarioImages(provider, scenario)
        if mode == "live" and self.config.mode == "record":
            provider = self._fixtures().recording(
                provider, routed(workflow.name, values, request), role=request.role, task=request.task, seed=seed
            )
        job_id = uuid.uuid4().hex
        graph = workflow.inject(values)
        call = self._call(job_id, workflow.name, values, graph, workflow.spec.outputs, workflow.spec.options)
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

        budget = self.timeout_for(mode) if timeout is None else timeout
        ticket = JobTicket(
            provider=provider_name,
            workflow=workflow.name,
            params=dict(values),
            graph=graph,
            output_nodes=list(workflow.spec.outputs),
            options=dict(workflow.spec.options),
            deadline_at=time.time() + budget,
            request_id=request_id,
        )
        deadline = asyncio.get_running_loop().time() + budget
        # A replayed job has no ticket: after a restart it is failed, never resumed by a live provider.
        await self.runner.start(
            job, self._work(provider, call, None), deadline=deadline, request_id=request_id,
            ticket=None if replaying else ticket,
        )
        return job

    def _fixtures(self) -> MediaFixtures:
        if self.fixtures is None:
            raise InvalidRequest("record and replay need a fixtures folder (fixtures_dir)")
        return self.fixtures

    def _call(
        self,
        job_id: str,
        workflow: str,
        params: Mapping[str, Any],
        graph: Mapping[str, Any] | None,
        outputs: Sequence[str],
        options: Mapping[str, Any],
    ) -> RenderCall:
        return RenderCall(
            job_id=job_id,
            workflow=workflow,
            params=params,
            graph=graph,
            output_nodes=tuple(outputs),
            options=options,
            on_accepted=functools.partial(self.runner.note_upstream, job_id),
            keep_upstream=functools.partial(self.runner.keeps_upstream, job_id),
            on_bind=functools.partial(self.runner.bind, job_id),
            slots=self.slots,
        )

    async def recover(self, registry: JobRegistry) -> int:
        """Pick up the jobs nobody drives (left by an earlier process or a dead replica); returns how many.

        A job whose work reached the upstream is followed again (ComfyUI: finished → its images are fetched;
        still queued or running → followed; unknown → failed); one recorded but maybe never submitted is
        looked up there by its id and submitted only when absent. A job still waiting here is submitted.
        Each keeps its original deadline; one past it, or whose provider is gone, ends failed.
        """
        found = await registry.adopt()
        for job, ticket in found:
            provider = self.providers.get(ticket.provider) if ticket is not None else None
            if ticket is None or provider is None:
                await self.runner.end(job, UpstreamError(
                    "the media gateway restarted and cannot resume this job; submit it again",
                    details={"job_id": job.id},
                ))
                continue
            left = ticket.deadline_at - time.time()
            if left <= 0 and ticket.upstream_id is None:
                await self.runner.end(job, UpstreamTimeout(
                    "the job's deadline passed while the media gateway was down", details={"job_id": job.id}
                ))
                continue
            call = self._call(job.id, ticket.workflow, ticket.params, ticket.graph, ticket.output_nodes, ticket.options)
            # A job past its deadline upstream still runs once: the timeout fires at once and releases it there.
            deadline = asyncio.get_running_loop().time() + max(0.0, left)
            upstream = None
            if ticket.upstream_id is not None:
                upstream = UpstreamRef(ticket.upstream_id, ticket.instance, ticket.accepted)
            work = self._work(provider, call, upstream)
            await self.runner.start(job, work, deadline=deadline, request_id=ticket.request_id)
            _log.info("job_resumed", job_id=job.id, provider=ticket.provider, upstream=ticket.upstream_id is not None)
        return len(found)

    async def _admit(self, name: str, provider: MediaProvider) -> None:
        capacity = provider.capacity()
        if capacity is None:
            return
        # A shared job store counts every replica's jobs; otherwise this process's own.
        held = await self.registry.unfinished_count(name)
        if held is None:
            held = sum(1 for job in self.runner.active() if job.provider == name)
        if held >= capacity.max_jobs:
            raise Overloaded(
                f"{name}: {held} jobs already running or waiting; try again later",
                details={"provider": name, "jobs": held, "max_jobs": capacity.max_jobs},
                retry_after=capacity.retry_after_s,
            )

    def _work(self, provider: MediaProvider, call: RenderCall, upstream: UpstreamRef | None) -> Work:
        async def work(progress: _Progress) -> list[ImageInfo]:
            if upstream is None:
                rendered = await provider.render(call, progress=progress)
            else:
                rendered = await provider.resume(call, upstream, progress=progress)
            return [await self._store(image.data) for image in rendered]

        return work

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
