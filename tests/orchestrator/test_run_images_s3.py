"""Run images in a real S3-compatible bucket (moto on loopback), through the same store abstraction."""

from __future__ import annotations

import hashlib

import pytest

from orchestrator.runs.images import S3RunImageStore
from service_common.objects import S3Settings, parse_s3_url
from tests.upstreams.s3 import S3Server

pytestmark = pytest.mark.slow


async def test_run_images_round_trip_through_the_bucket(s3_server: S3Server, s3_bucket: str) -> None:
    env = s3_server.client_env()
    settings = S3Settings(endpoint_url=env["AWS_ENDPOINT_URL"], region=env["AWS_REGION"],
                          access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    store = S3RunImageStore(parse_s3_url(f"s3://{s3_bucket}/runs"), settings)
    await store.start()
    try:
        data = b"\x89PNG not really, any bytes"
        digest = hashlib.sha256(data).hexdigest()
        await store.put(data, sha256=digest)
        assert await store.get(digest) == data
        assert await store.get("f" * 64) is None and await store.get("../etc") is None
        with pytest.raises(ValueError):
            await store.put(b"other bytes", sha256=digest)
    finally:
        await store.close()
