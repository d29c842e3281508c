"""The P0 flow: brand → brief → strategist → (copywriter ∥ vision) → reviewer, into one run document."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from orchestrator.agents import (
    Agent,
    AgentInputs,
    AgentOutput,
    BrandAgent,
    BriefAgent,
    CopywriterAgent,
    PromptLibrary,
    ReviewerAgent,
    StrategistAgent,
    VisionGeneratorAgent,
)
from orchestrator.agents.vision import IMAGE_STEP
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig
from orchestrator.runs.images import ImageKeeper, RunImageStore, run_image
from orchestrator.runs.store import new_run_id
from shared_contracts.errors import ErrorBody, GatewayError, InvalidRequest
from shared_contracts.flows import MediaCall, Product, RunDocument, RunImage, RunMode, StepRecord
from shared_contracts.llm import Mode
from shared_contracts.media import Job
from shared_contracts.scenarios import LLM_SCENARIOS, MEDIA_SCENARIOS, parse_scenario

__all__ = [
    "FLOW_NAME",
    "PARALLEL_ROLES",
    "ROLES",
    "SCENARIO_KEYS",
    "OnUpdate",
    "P0ProductDetailFlow",
    "check_scenarios",
    "error_body",
]

FLOW_NAME = "p0-product-detail"
# The steps in flow order, and the two that run at the same time.
ROLES: tuple[str, ...] = tuple(agent.role for agent in (
    BrandAgent, BriefAgent, StrategistAgent, CopywriterAgent, VisionGeneratorAgent, ReviewerAgent
))
PARALLEL_ROLES = frozenset({CopywriterAgent.role, VisionGeneratorAgent.role})
# The gateway calls a run's `scenarios` may address: each step's LLM call by its role, and the vision
# step's Media Gateway call as `vision.image`.
SCENARIO_KEYS: tuple[str, ...] = (*ROLES, IMAGE_STEP)
OnUpdate = Callable[[RunDocument], Awaitable[None]]

_log = structlog.get_logger(component="flow")


def _now() -> datetime:
    return datetime.now(UTC)


def check_scenarios(scenarios: dict[str, str]) -> None:
    """400 for a key that is no gateway call of the flow, or a value its gateway would not take.

    `{"copywriter": "timeout", "vision.image": "exec_error"}` is fine; `{"vision.image": "rejected"}` is not
    (the Media Gateway has no such scenario). Whether the gateways are in mock mode is theirs to say.
    """
    for key, value in scenarios.items():
        if key not in SCENARIO_KEYS:
            raise InvalidRequest(
                f"scenarios: {key!r} is not a step of the flow; use one of {', '.join(SCENARIO_KEYS)}",
                details={"path": f"$.scenarios.{key}", "known": list(SCENARIO_KEYS)},
            )
        try:
            parse_scenario(value, MEDIA_SCENARIOS if key == IMAGE_STEP else LLM_SCENARIOS)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"scenarios.{key}: {exc.message}", details={**exc.details, "path": f"$.scenarios.{key}"}
            ) from None


def error_body(err: GatewayError, request_id: str | None) -> ErrorBody:
    """The gateway's own envelope when the error came from one, else this side's view of the failure."""
    return err.envelope if err.envelope is not None else err.to_body(request_id)


class P0ProductDetailFlow:
    """Runs the six agents in order, copywriter and vision concurrently, and records every step.

    A failed step ends the run as `failed` with that step's name and the gateway's error; outputs of the
    steps that finished are kept, later steps are `skipped`. With an `ImageKeeper`, rendered images are
    copied into the run image store and the document points at the copies.
    """

    def __init__(
        self,
        *,
        brand: BrandAgent,
        brief: BriefAgent,
        strategist: StrategistAgent,
        copywriter: CopywriterAgent,
        vision: VisionGeneratorAgent,
        reviewer: ReviewerAgent,
        keeper: ImageKeeper | None = None,
    ) -> None:
        self.stages: list[Sequence[Agent[Any]]] = [[brand], [brief], [strategist], [copywriter, vision], [reviewer]]
        self.keeper = keeper

    @classmethod
    def build(
        cls,
        llm: LLMGatewayClient,
        media: MediaGatewayClient,
        config: FlowConfig,
        *,
        prompts: PromptLibrary | None = None,
        images: RunImageStore | None = None,
    ) -> P0ProductDetailFlow:
        """Wire the six agents to the two clients; with `images`, run images are kept there."""
        library = prompts or PromptLibrary()
        common: dict[str, Any] = {"prompts": library, "quality": config.quality}
        return cls(
            brand=BrandAgent(llm, **common),
            brief=BriefAgent(llm, **common),
            strategist=StrategistAgent(llm, **common),
            copywriter=CopywriterAgent(llm, **common),
            vision=VisionGeneratorAgent(
                llm, media, image_sizes=config.image_sizes, workflow=config.image_workflow, **common
            ),
            reviewer=ReviewerAgent(llm, **common),
            keeper=ImageKeeper(media, images) if images is not None else None,
        )

    @property
    def agents(self) -> dict[str, Agent[Any]]:
        """Every agent by role, in flow order."""
        return {agent.role: agent for stage in self.stages for agent in stage}

    @property
    def roles(self) -> list[str]:
        """Every step's role, in flow order."""
        return list(self.agents)

    def new_document(
        self,
        product: Product,
        *,
        run_id: str | None = None,
        timeout_s: float | None = None,
        scenarios: dict[str, str] | None = None,
    ) -> RunDocument:
        """A `running` document with every step `pending`; `timeout_s` is the run's budget, when it has one;
        `scenarios` (checked by `check_scenarios`) are sent with the steps' gateway calls."""
        return RunDocument(
            run_id=run_id or new_run_id(),
            flow=FLOW_NAME,
            status="running",
            mode=None,
            product=product,
            outputs={},
            images=[],
            steps={
                agent.role: StepRecord(role=agent.role, task=agent.task, status="pending")
                for stage in self.stages
                for agent in stage
            },
            started_at=_now(),
            finished_at=None,
            duration_ms=None,
            timeout_s=timeout_s,
            scenarios=dict(scenarios or {}),
        )

    async def run(
        self,
        product: Product,
        *,
        run_id: str | None = None,
        request_id: str | None = None,
        on_update: OnUpdate | None = None,
        document: RunDocument | None = None,
        deadline: float | None = None,
    ) -> RunDocument:
        """Run the flow to its end; gateway errors end up in the document, never raised.

        `deadline` (a `loop.time()`) bounds every gateway call of the run; without it each call has the
        clients' own bound. A `document` whose steps already finished (a run resumed after a restart) keeps
        them: succeeded steps are not run again, their outputs feed the later steps.
        """
        doc = document or self.new_document(product, run_id=run_id)
        state = _RunState(doc, request_id or doc.run_id, on_update, deadline, self.keeper)
        await state.publish()
        # A resumed run's duration counts from its start, not from this process's pick-up.
        started = time.monotonic() - ((_now() - doc.started_at).total_seconds() if doc.resumed_at else 0.0)
        outputs = self._finished_outputs(doc)
        for stage in self.stages:
            inputs = AgentInputs(product=product, outputs=dict(outputs), run_id=doc.run_id, scenarios=doc.scenarios)
            # A resumed run: what succeeded is not asked again, a failure stands (and ends the run below).
            todo = [a for a in stage if a.role not in outputs and doc.steps[a.role].status != "failed"]
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(state.step(agent, inputs)) for agent in todo]
            for agent, task in zip(todo, tasks, strict=True):
                output = task.result()
                if output is not None:
                    outputs[agent.role] = output
            failed = [agent.role for agent in stage if doc.steps[agent.role].status == "failed"]
            if failed:
                doc.status = "failed"
                doc.failed_step = failed[0]
                doc.error = doc.steps[failed[0]].error
                break
        else:
            doc.status = "succeeded"
        # Concurrent steps finish in any order; the document lists outputs in flow order.
        doc.outputs = {role: doc.outputs[role] for role in self.roles if role in doc.outputs}
        for role, record in doc.steps.items():
            if record.status == "pending":
                doc.steps[role] = msgspec.structs.replace(record, status="skipped")
        doc.finished_at = _now()
        doc.duration_ms = round((time.monotonic() - started) * 1000, 1)
        _log.info("flow_finished", run_id=doc.run_id, status=doc.status, duration_ms=doc.duration_ms)
        await state.publish()
        return doc

    def _finished_outputs(self, doc: RunDocument) -> dict[str, AgentOutput]:
        """Outputs of steps that already succeeded, typed again; one that no longer decodes is run again."""
        outputs: dict[str, AgentOutput] = {}
        for role, agent in self.agents.items():
            if doc.steps[role].status == "succeeded" and role in doc.outputs:
                try:
                    outputs[role] = msgspec.convert(doc.outputs[role], agent.output_type)
                except msgspec.ValidationError:
                    _log.warning("resume_output_unreadable", run_id=doc.run_id, role=role)
        return outputs


class _RunState:
    """One run's mutable bookkeeping: the document, the modes seen, serialised publishing."""

    def __init__(
        self,
        doc: RunDocument,
        request_id: str,
        on_update: OnUpdate | None,
        deadline: float | None,
        keeper: ImageKeeper | None,
    ) -> None:
        self.doc = doc
        self.request_id = request_id
        self.on_update = on_update
        self.deadline = deadline
        self.keeper = keeper
        # A resumed run keeps the modes its finished steps saw ("mixed" stands for at least two).
        self.modes: set[str] = {"mock", "live"} if doc.mode == "mixed" else ({doc.mode} if doc.mode else set())
        # Copywriter and vision finish concurrently; their snapshots must not be written out of order.
        self._lock = asyncio.Lock()

    async def publish(self) -> None:
        if self.on_update is not None:
            async with self._lock:
                await self.on_update(self.doc)

    def _note_mode(self, mode: Mode) -> None:
        self.modes.add(mode)
        value: RunMode = "mixed" if len(self.modes) > 1 else mode
        self.doc.mode = value

    async def step(self, agent: Agent[Any], inputs: AgentInputs) -> AgentOutput | None:
        """Run one agent and record it; a gateway error marks the step failed and returns None."""
        role = agent.role
        record = msgspec.structs.replace(self.doc.steps[role], status="running", started_at=_now())
        self.doc.steps[role] = record
        await self.publish()  # followers see the step start, not only its end
        started = time.monotonic()
        try:
            result = await agent.run(inputs, request_id=self.request_id, deadline=self.deadline)
            images = await self._images(result.job)
        except GatewayError as err:
            self.doc.steps[role] = msgspec.structs.replace(
                record,
                status="failed",
                finished_at=_now(),
                latency_ms=_ms_since(started),
                error=error_body(err, self.request_id),
            )
            _log.warning("step_failed", run_id=self.doc.run_id, role=role, code=err.code)
            await self.publish()
            return None
        response = result.generated.response
        self._note_mode(response.mode)
        media = None
        output = msgspec.to_builtins(result.output)
        if result.job is not None:
            self._note_mode(result.job.mode)
            job = result.job
            media = MediaCall(job_id=job.id, provider=job.provider, workflow=job.workflow, latency_ms=job.latency_ms)
            self.doc.images.extend(images)
            if isinstance(output, dict) and "images" in output:
                # The step's output lists the same images: it points at the kept copies too.
                output["images"] = msgspec.to_builtins(images)
        self.doc.steps[role] = msgspec.structs.replace(
            record,
            status="succeeded",
            provider=response.provider,
            model=response.model,
            latency_ms=_ms_since(started),
            attempts=response.attempts,
            media=media,
            finished_at=_now(),
        )
        self.doc.outputs[role] = output
        _log.info(
            "step_succeeded", run_id=self.doc.run_id, role=role, provider=response.provider,
            model=response.model, latency_ms=self.doc.steps[role].latency_ms,
        )
        await self.publish()
        typed: AgentOutput = result.output
        return typed

    async def _images(self, job: Job | None) -> list[RunImage]:
        """The job's images as run images: kept with the run when there is a keeper."""
        if job is None:
            return []
        if self.keeper is None:
            return [run_image(image) for image in job.images]
        return await self.keeper.keep(
            self.doc.run_id, job.images, request_id=self.request_id, deadline=self.deadline
        )


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
