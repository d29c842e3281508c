"""Wire types of the Media Gateway: image requests, jobs and stored images."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ._base import Inbound, Outbound
from .errors import ErrorBody
from .llm import Mode, NonEmpty

__all__ = ["ImageInfo", "ImageRequest", "Job", "JobStatus"]

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]

Side = Annotated[int, msgspec.Meta(ge=64, le=2048, multiple_of=8)]


class ImageRequest(Inbound):
    """What an agent sends to render images; `workflow` absent means YAML routes by role/task."""

    role: NonEmpty
    task: NonEmpty
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=8_000)]
    workflow: NonEmpty | None = None
    negative_prompt: Annotated[str, msgspec.Meta(max_length=8_000)] = ""
    width: Side = 1024
    height: Side = 1024
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1
    params: dict[str, Any] = {}
    wait: bool = True
    metadata: dict[str, str] = {}


class ImageInfo(Outbound):
    """One stored image, served by the gateway at `url`."""

    id: str
    url: str
    mime_type: str
    width: int
    height: int
    bytes: int
    sha256: str


class Job(Outbound):
    """An image job's whole state; identical shape in mock and live mode."""

    id: str
    status: JobStatus
    mode: Mode
    provider: str
    workflow: str
    progress: float
    images: list[ImageInfo]
    seed: int
    error: ErrorBody | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    latency_ms: float | None


class WorkflowParam(Outbound):
    """One named input a client may set for a workflow (via the request's fields or `params`)."""

    name: str
    default: Any
    description: str = ""
    # The rule a value must meet (workflow YAML): int, float, bool, string or filename, and its bounds.
    type: str | None = None
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None


class WorkflowInfo(Outbound):
    """A workflow the gateway can run: `GET /api/v1/media/workflows` lists these."""

    name: str
    description: str
    provider: str
    params: list[WorkflowParam]


class JobEvent(Outbound):
    """Data of a `progress` Server-Sent Event on `/api/v1/media/jobs/{id}/events`."""

    id: str
    status: JobStatus
    progress: float


__all__ += ["JobEvent", "WorkflowInfo", "WorkflowParam"]
