"""Wire types of the Orchestrator: the product a flow starts from and the run document it produces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ._base import Inbound, Outbound
from .errors import ErrorBody
from .llm import Attempt
from .media import ImageInfo

__all__ = [
    "RUN_EVENT_TYPES",
    "MediaCall",
    "Product",
    "RunDocument",
    "RunEventType",
    "RunFinishedEvent",
    "RunImage",
    "RunList",
    "RunMode",
    "RunRequest",
    "RunStatus",
    "RunSummary",
    "StepEvent",
    "StepRecord",
    "StepStatus",
]

RunStatus = Literal["running", "succeeded", "failed"]
StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]
# "mixed" when the two gateways report different modes, so a half-mocked run is never mistaken for a real one.
RunMode = Literal["mock", "live", "replay", "mixed"]

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Feature = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class Product(Inbound):
    """The product a detail page is written for; `language` is the page's language (BCP 47, default Korean)."""

    name: ShortText
    category: ShortText
    price: Annotated[float, msgspec.Meta(ge=0)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    key_features: Annotated[list[Feature], msgspec.Meta(min_length=1, max_length=12)]
    target_customer: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    brand_name: ShortText
    brand_voice: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    language: Annotated[str, msgspec.Meta(pattern="^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = "ko"
    notes: Annotated[str, msgspec.Meta(max_length=2_000)] | None = None


class RunRequest(Inbound):
    """Body of `POST /api/v1/flows/p0-product-detail/runs`: `wait` false answers 202 at once."""

    product: Product
    wait: bool = True
    # Mock-mode failure scenarios per step: role -> `X-Mock-Scenario` value sent with that step's gateway call
    # (`vision` is the vision step's LLM call, `vision.image` its Media Gateway call). Mock mode only.
    scenarios: dict[str, str] = {}


class MediaCall(Outbound):
    """The Media Gateway half of a step (the vision step renders an image after its LLM call)."""

    job_id: str
    provider: str
    workflow: str
    latency_ms: float | None


class StepRecord(Outbound):
    """How one agent's step went: who answered, how long it took, every attempt the gateway made."""

    role: str
    task: str
    status: StepStatus
    provider: str | None = None
    model: str | None = None
    latency_ms: float | None = None
    attempts: list[Attempt] = []
    media: MediaCall | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: ErrorBody | None = None


class RunImage(ImageInfo):
    """An image of a run. `url` is where to fetch it now: the orchestrator's copy kept with the run
    (`/runs/{run_id}/images/{id}`, a path on the orchestrator) once kept; `source_url` is the Media
    Gateway's original URL, which may stop answering when the gateway restarts or forgets the job."""

    source_url: str | None = None


class RunDocument(Outbound):
    """The result of one flow run: the six outputs keyed by role, the images, and per-step timing.

    A failed run names its `failed_step` and carries the gateway's `error`; outputs of earlier steps are kept.
    `timeout_s` is the run's whole budget from `started_at`; `resumed_at` is set when a new orchestrator
    process picked the run up after the one running it stopped (finished steps are not run again).
    """

    run_id: str
    flow: str
    status: RunStatus
    mode: RunMode | None
    product: Product
    outputs: dict[str, Any]
    images: list[RunImage]
    steps: dict[str, StepRecord]
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    failed_step: str | None = None
    error: ErrorBody | None = None
    timeout_s: float | None = None
    resumed_at: datetime | None = None
    # The failure scenarios the run was started with (a resumed run keeps them); empty for a normal run.
    scenarios: dict[str, str] = {}


class RunSummary(Outbound):
    """One line of `GET /api/v1/runs`."""

    run_id: str
    flow: str
    status: RunStatus
    mode: RunMode | None
    product_name: str
    started_at: datetime
    duration_ms: float | None


class RunList(Outbound):
    """Body of `GET /api/v1/runs`: most recent first."""

    runs: list[RunSummary]


RunEventType = Literal["step_started", "step_finished", "run_finished"]
RUN_EVENT_TYPES: tuple[RunEventType, ...] = ("step_started", "step_finished", "run_finished")


class StepEvent(Outbound):
    """Data of `step_started` and `step_finished` on `GET /api/v1/runs/{run_id}/events`: the step as recorded.

    A step that never ran because an earlier one failed gets only `step_finished`, with status `skipped`.
    """

    run_id: str
    step: StepRecord


class RunFinishedEvent(Outbound):
    """Data of the last event, `run_finished`: how the run ended (the stream closes after it)."""

    run_id: str
    status: RunStatus
    mode: RunMode | None
    duration_ms: float | None
    failed_step: str | None
    error: ErrorBody | None
