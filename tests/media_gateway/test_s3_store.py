"""The image store in a real S3-compatible server (moto on loopback): put and get, served by the gateway at
the same URLs with ETag and 304, presigned redirects, and a bucket that refuses writes (507)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import msgspec
import pytest

from media_gateway.config import MediaConfig, StoreConfig
from media_gateway.s3_store import S3ImageStore
from service_common.objects import S3Settings, parse_s3_url
from shared_contracts.errors import StorageError
from tests.media_gateway.conftest import SMOKE, gateway_config, running_gateway
from tests.upstreams.s3 import S3Server

pytestmark = pytest.mark.slow


def _settings(server: S3Server) -> S3Settings:
    env = server.client_env()
    return S3Settings(endpoint_url=env["AWS_ENDPOINT_URL"], region=env["AWS_REGION"],
                      access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def _with_bucket(tmp_path: Path, server: S3Server, bucket: str, *, presigned: bool = False) -> MediaConfig:
    config = gateway_config(tmp_path / "store", mode="mock")
    store = StoreConfig(dir=str(tmp_path / "store"), url=f"s3://{bucket}/pdp/images", presigned_urls=presigned,
                        s3=_settings(server))
    return msgspec.structs.replace(config, store=store)


async def test_put_and_get_are_content_addressed(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    from tests.upstreams.test_engines import _png

    store = S3ImageStore(parse_s3_url(f"s3://{s3_bucket}/p"), _settings(s3_server))
    await store.start()
    try:
        data = _png((7, 3))
        stored = await store.put(data)
        assert stored.id == hashlib.sha256(data).hexdigest() and (stored.width, stored.height) == (7, 3)
        assert (await store.put(data)).id == stored.id  # idempotent
        found = await store.get(stored.id)
        assert found is not None and found[1] == data and found[0].mime_type == "image/png"
        assert found[0] == stored
        assert await store.exists(stored.id) and not await store.exists("0" * 64)
        assert await store.get("0" * 64) is None and await store.get("../x") is None
        assert (await store.health()).writable
    finally:
        await store.close()


async def test_gateway_serves_bucket_images_at_the_same_urls_with_etag_and_304(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    async with running_gateway(_with_bucket(tmp_path, s3_server, s3_bucket)) as client:
        status, job, _ = await client.generate(SMOKE)
        assert status == 200, job
        (image,) = job["images"]
        assert image["url"].endswith(f"/api/v1/media/images/{image['id']}")
        status, body, headers = await client.call("GET", f"/api/v1/media/images/{image['id']}")
        assert status == 200 and hashlib.sha256(body).hexdigest() == image["sha256"]
        assert headers["etag"] == f'"{image["sha256"]}"' and headers["content-type"] == "image/png"
        status, body, _ = await client.call("GET", f"/api/v1/media/images/{image['id']}",
                                            headers={"if-none-match": headers["etag"]})
        assert status == 304 and not body
        status, _, _ = await client.call("GET", f"/api/v1/media/images/{'a' * 64}", headers={"if-none-match": "*"})
        assert status == 404
    # Nothing went to the local folder.
    assert not list((tmp_path / "store").rglob("*.png"))


async def test_presigned_urls_redirect_to_the_bucket(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    async with running_gateway(_with_bucket(tmp_path, s3_server, s3_bucket, presigned=True)) as client:
        status, job, _ = await client.generate(SMOKE)
        assert status == 200, job
        (image,) = job["images"]
        async with aiohttp.ClientSession() as session:
            url = client.base + f"/api/v1/media/images/{image['id']}"
            async with session.get(url, allow_redirects=False) as resp:
                assert resp.status == 307
                target = resp.headers["location"]
            assert target.startswith(s3_server.endpoint_url) and "X-Amz-Signature=" in target
            async with session.get(target) as resp:  # no credentials: the signature in the URL is the grant
                assert resp.status == 200 and hashlib.sha256(await resp.read()).hexdigest() == image["sha256"]


async def test_a_bucket_that_does_not_exist_is_a_storage_error(s3_server: S3Server, tmp_path: Path) -> None:
    from tests.upstreams.test_engines import _png

    store = S3ImageStore(parse_s3_url("s3://no-such-bucket-here/p"), _settings(s3_server))
    await store.start()
    try:
        with pytest.raises(StorageError) as caught:
            await store.put(_png((2, 2)))
        assert caught.value.status == 507 and "NoSuchBucket" in caught.value.message
        assert not (await store.health()).writable
    finally:
        await store.close()
