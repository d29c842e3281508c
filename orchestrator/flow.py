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
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig
from orchestrator.runs.store import new_run_id
from shared_contracts.errors import ErrorBody, GatewayError
from shared_contracts.flows import MediaCall, Product, RunDocument, RunMode, StepRecord

__all__ = ["FLOW_NAME", "OnUpdate", "P0ProductDetailFlow", "error_body"]

FLOW_NAME = "p0-product-detail"
OnUpdate = Callable[[RunDocument], Awaitable[None]]

_log = structlog.get_logger(component="flow")


def _now() -> datetime:
    return datetime.now(UTC)


def error_body(err: GatewayError, request_id: str | None) -> ErrorBody:
    """The gateway's own envelope when the error came from one, else this side's view of the failure."""
    return err.envelope if err.envelope is not None else err.to_body(request_id)


class P0ProductDetailFlow:
    """Runs the six agents in order, copywriter and vision concurrently, and records every step.

    A failed step ends the run as `failed` with that step's name and the gateway's error; outputs of the
    steps that finished are kept, later steps are `skipped`.
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
    ) -> None:
        self.stages: list[Sequence[Agent[Any]]] = [[brand], [brief], [strategist], [copywriter, vision], [reviewer]]

    @classmethod
    def build(
        cls,
        llm: LLMGatewayClient,
        media: MediaGatewayClient,
        config: FlowConfig,
        *,
        prompts: PromptLibrary | None = None,
    ) -> P0ProductDetailFlow:
        """Wire the six agents to the two clients."""
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
        )

    @property
    def agents(self) -> dict[str, Agent[Any]]:
        """Every agent by role, in flow order."""
        return {agent.role: agent for stage in self.stages for agent in stage}

    @property
    def roles(self) -> list[str]:
        """Every step's role, in flow order."""
        return list(self.agents)

    def new_document(self, product: Product, *, run_id: str | None = None) -> RunDocument:
        """A `running` document with every step `pending`."""
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
        clients' own bound.
        """
        doc = document or self.new_document(product, run_id=run_id)
        state = _RunState(doc, request_id or doc.run_id, on_update, deadline)
        await state.publish()
        started = time.monotonic()
        outputs: dict[str, AgentOutput] = {}
        for stage in self.stages:
            inputs = AgentInputs(product=product, outputs=dict(outputs), run_id=doc.run_id)
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(state.step(agent, inputs)) for agent in stage]
            for agent, task in zip(stage, tasks, strict=True):
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


class _RunState:
    """One run's mutable bookkeeping: the document, the modes seen, serialised publishing."""

    def __init__(self, doc: RunDocument, request_id: str, on_update: OnUpdate | None, deadline: float | None) -> None:
        self.doc = doc
        self.request_id = request_id
        self.on_update = on_update
        self.deadline = deadline
        self.modes: set[str] = set()
        # Copywriter and vision finish concurrently; their snapshots must not be written out of order.
        self._lock = asyncio.Lock()

    async def publish(self) -> None:
        if self.on_update is not None:
            async with self._lock:
                await self.on_update(self.doc)

    def _note_mode(self, mode: str) -> None:
        self.modes.add(mode)
        value: RunMode = "mixed" if len(self.modes) > 1 else ("live" if mode == "live" else "mock")
        self.doc.mode = value

    async def step(self, agent: Agent[Any], inputs: AgentInputs) -> AgentOutput | None:
        """Run one agent and record it; a gateway error marks the step failed and returns None."""
        role = agent.role
        record = msgspec.structs.replace(self.doc.steps[role], status="running", started_at=_now())
        self.doc.steps[role] = record
        started = time.monotonic()
        try:
            result = await agent.run(inputs, request_id=self.request_id, deadline=self.deadline)
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
        if result.job is not None:
            self._note_mode(result.job.mode)
            job = result.job
            media = MediaCall(job_id=job.id, provider=job.provider, workflow=job.workflow, latency_ms=job.latency_ms)
            self.doc.images.extend(job.images)
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
        self.doc.outputs[role] = msgspec.to_builtins(result.output)
        _log.info(
            "step_succeeded", run_id=self.doc.run_id, role=role, provider=response.provider,
            model=response.model, latency_ms=self.doc.steps[role].latency_ms,
        )
        await self.publish()
        output: AgentOutput = result.output
        return output


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
