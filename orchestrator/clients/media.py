"""Client of the Media Gateway: render an image and wait for the finished job."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from orchestrator.clients._gateway import GatewayClient
from shared_contracts.errors import GatewayError, UpstreamError, error_from_body
from shared_contracts.media import ImageInfo, ImageRequest, Job

__all__ = ["MediaGatewayClient"]

_GENERATE_PATH = "/api/v1/media/image/generate"
_IMAGES_PATH = "/api/v1/media/images/"
_encode = msgspec.json.Encoder().encode
_decode_job = msgspec.json.Decoder(Job)


class MediaGatewayClient(GatewayClient):
    """Talks to `POST /api/v1/media/image/generate` with `wait: true`; returns the succeeded job."""

    gateway = "media"

    async def generate_image(
        self,
        *,
        role: str,
        task: str,
        prompt: str,
        negative_prompt: str = "",
        width: int = 1024,
        height: int = 1024,
        workflow: str | None = None,
        seed: int | None = None,
        count: int = 1,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
        deadline: float | None = None,
        scenario: str | None = None,
    ) -> Job:
        """Render and wait; a job that did not succeed raises its own error, typed. `scenario`: X-Mock-Scenario."""
        request = ImageRequest(
            role=role,
            task=task,
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            workflow=workflow,
            seed=seed,
            count=count,
            params=dict(params or {}),
            wait=True,
            metadata=dict(metadata or {}),
        )
        reply = await self.call(
            "POST", _GENERATE_PATH, body=_encode(request), request_id=request_id, deadline=deadline, scenario=scenario
        )
        try:
            job = _decode_job.decode(reply.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(
                "media gateway answered with an unreadable job", details={"gateway": "media", "error": str(exc)}
            ) from exc
        if job.status != "succeeded" or not job.images:
            raise _job_error(job)
        return job

    async def image_bytes(
        self, image: ImageInfo, *, request_id: str | None = None, deadline: float | None = None
    ) -> bytes:
        """A stored image's bytes, fetched by id from this client's base URL (the image's own URL may be a
        public one this process cannot reach) and checked against the job's sha256 and size."""
        reply = await self.call("GET", _IMAGES_PATH + quote(image.id, safe=""), request_id=request_id,
                                deadline=deadline)
        if len(reply.body) != image.bytes or hashlib.sha256(reply.body).hexdigest() != image.sha256:
            raise UpstreamError(
                f"media gateway image {image.id} does not match its job's size and sha256",
                details={"gateway": "media", "image_id": image.id, "bytes": len(reply.body)},
            )
        return reply.body


def _job_error(job: Job) -> GatewayError:
    if job.error is not None:
        return error_from_body(job.error)
    return UpstreamError(
        f"media job {job.id} ended {job.status} without images",
        details={"gateway": "media", "job_id": job.id, "status": job.status},
    )
