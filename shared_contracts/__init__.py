"""Types that cross a service boundary. Imports nothing from the services."""

from __future__ import annotations

from ._base import Inbound, Outbound
from .errors import ErrorBody, ErrorEnvelope, GatewayError
from .flows import (
    MediaCall,
    Product,
    RunDocument,
    RunList,
    RunMode,
    RunRequest,
    RunStatus,
    RunSummary,
    StepRecord,
    StepStatus,
)
from .llm import Attempt, GenerateOptions, GenerateRequest, GenerateResponse, Message, Mode, StreamDelta, Usage
from .media import ImageInfo, ImageRequest, Job, JobStatus

__all__ = [
    "Attempt",
    "ErrorBody",
    "ErrorEnvelope",
    "GatewayError",
    "GenerateOptions",
    "GenerateRequest",
    "GenerateResponse",
    "ImageInfo",
    "ImageRequest",
    "Inbound",
    "Job",
    "JobStatus",
    "MediaCall",
    "Message",
    "Mode",
    "Outbound",
    "Product",
    "RunDocument",
    "RunList",
    "RunMode",
    "RunRequest",
    "RunStatus",
    "RunSummary",
    "StepRecord",
    "StepStatus",
    "StreamDelta",
    "Usage",
]
