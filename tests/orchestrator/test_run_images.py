"""Run images kept with the run: the content-addressed store, the keeper, and pages that outlive the Media Gateway."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aioresponses import aioresponses

from orchestrator.app import create_app
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig, OrchestratorConfig, RunsConfig
from orchestrator.flow import P0ProductDetailFlow
from orchestrator.runs import FileRunImageStore, FileRunStore, ImageKeeper, run_image_url
from shared_contracts.errors import StorageError, UpstreamError
from shared_contracts.flows import Product
from shared_contracts.media import ImageInfo
from tests.orchestrator.answers import MEDIA_URL, PRODUCT, media_job_of, png
from tests.orchestrator.conftest import client_config
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"


RUN_ID = "20250101T000000Z-0a0b0c0d"


async def test_the_store_keeps_bytes_under_their_digest_once(tmp_path: Path) -> None:
    store = FileRunImageStore(tmp_path)
    data = png()
    digest = hashlib.sha256(data).hexdigest()
    await store.put(data, sha256=digest)
    await store.put(data, sha256=digest)  # the same picture in a second run is not stored twice
    assert await store.get(digest) == data
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [digest]
    assert await store.get("0" * 64) is None


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab", "A" * 64, ""])
async def test_only_a_digest_names_a_stored_image(tmp_path: Path, key: str) -> None:
    store = FileRunImageStore(tmp_path)
    assert await store.get(key) is None
    with pytest.raises(ValueError):
        await store.put(b"x", sha256=key)


async def test_bytes_that_do_not_match_their_digest_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await FileRunImageStore(tmp_path).put(png(), sha256=hashlib.sha256(b"other").hexdigest())


async def test_a_store_that_cannot_write_raises_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "images"
    blocker.write_text("a file where the folder should be")
    data = png()
    with pytest.raises(StorageError) as caught:
        await FileRunImageStore(blocker).put(data, sha256=hashlib.sha256(data).hexdigest())
    assert caught.value.status == 507


async def test_the_keeper_fetches_checks_and_points_at_the_copy(
    tmp_path: Path, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    data = png()
    info = msgspec.convert(media_job_of(data)["images"][0], ImageInfo)
    upstream.get(f"{MEDIA_URL}/api/v1/media/images/{info.id}", body=data, content_type="image/png")
    store = FileRunImageStore(tmp_path)
    [kept] = await ImageKeeper(media, store).keep(RUN_ID, [info])
    assert kept.url == f"/runs/{RUN_ID}/images/{info.id}" == run_image_url(RUN_ID, info.id)
    assert kept.source_url == info.url and kept.sha256 == info.sha256
    assert await store.get(info.sha256) == data


async def test_the_keeper_refuses_bytes_that_are_not_the_jobs_image(
    tmp_path: Path, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    info = msgspec.convert(media_job_of(png())["images"][0], ImageInfo)
    upstream.get(f"{MEDIA_URL}/api/v1/media/images/{info.id}", body=png(8, 8), content_type="image/png")
    store = FileRunImageStore(tmp_path)
    with pytest.raises(UpstreamError, match="does not match"):
        await ImageKeeper(media, store).keep(RUN_ID, [info])
    assert await store.get(info.sha256) is None


async def test_a_flow_without_a_store_keeps_the_gateway_url_as_both(
    real_gateways: tuple[LLMGatewayClient, MediaGatewayClient]
) -> None:
    llm, media = real_gateways
    doc = await P0ProductDetailFlow.build(llm, media, FlowConfig()).run(msgspec.convert(PRODUCT, Product))
    [image] = doc.images
    assert image.url == image.source_url and image.url.startswith(media.http.base_url)


async def test_a_failed_copy_fails_the_vision_step_with_its_error(tmp_path: Path) -> None:
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    async with (
        serve_app(llm_app) as llm_url, serve_app(media_app) as media_url,
        LLMGatewayClient.from_config(client_config(llm_url)) as llm,
        MediaGatewayClient.from_config(client_config(media_url)) as media,
    ):
        flow = P0ProductDetailFlow.build(llm, media, FlowConfig(), images=FileRunImageStore(blocker))
        doc = await flow.run(msgspec.convert(PRODUCT, Product))
    assert doc.status == "failed" and doc.failed_step == "vision"
    assert doc.error is not None and doc.error.code == "storage_error"
    assert doc.steps["copywriter"].status == "succeeded" and doc.steps["reviewer"].status == "skipped"


async def test_pages_and_images_keep_working_after_the_media_gateway_is_gone(tmp_path: Path) -> None:
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    runs = tmp_path / "runs"
    async with serve_app(llm_app) as llm_url:
        async with serve_app(media_app) as media_url:
            config = OrchestratorConfig(
                llm_gateway=client_config(llm_url), media_gateway=client_config(media_url),
                runs=RunsConfig(dir=str(runs)),
            )
            async with serve_app(create_app(config)) as url, aiohttp.ClientSession() as session:
                async with session.post(url + RUNS, json={"product": PRODUCT}) as resp:
                    doc = await resp.json()
                [image] = doc["images"]
                async with session.get(image["source_url"]) as resp:
                    original = await resp.read()
        # The Media Gateway has stopped (its port is closed); a new orchestrator process on the same runs folder.
        async with serve_app(create_app(config)) as url, aiohttp.ClientSession() as session:
            async with session.get(url + image["url"]) as resp:
                kept = await resp.read()
                assert resp.status == 200 and resp.content_type == "image/png"
                assert resp.headers["etag"] == f'"{image["sha256"]}"'
                assert resp.headers["x-content-type-options"] == "nosniff"
            async with session.get(url + image["url"], headers={"if-none-match": f'"{image["sha256"]}"'}) as resp:
                assert resp.status == 304
            async with session.get(f"{url}/runs/{doc['run_id']}", headers={"accept": "text/html"}) as resp:
                page = await resp.text()
                assert resp.status == 200 and f'src="{image["url"]}"' in page
            async with session.get(f"{url}/runs/{doc['run_id']}/images/{'0' * 64}") as resp:
                assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert kept == original and hashlib.sha256(kept).hexdigest() == image["sha256"]


async def test_an_image_not_kept_yet_is_fetched_once_and_kept(tmp_path: Path) -> None:
    """Runs stored before images were kept (or by the P0 script without a store) point at the Media Gateway."""
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        async with (
            LLMGatewayClient.from_config(client_config(llm_url)) as llm,
            MediaGatewayClient.from_config(client_config(media_url)) as media,
        ):
            doc = await P0ProductDetailFlow.build(llm, media, FlowConfig()).run(msgspec.convert(PRODUCT, Product))
        config = OrchestratorConfig(
            llm_gateway=client_config(llm_url), media_gateway=client_config(media_url),
            runs=RunsConfig(dir=str(tmp_path / "runs")),
        )
        await FileRunStore(tmp_path / "runs").save(doc)
        [image] = doc.images
        async with serve_app(create_app(config)) as url, aiohttp.ClientSession() as session:
            async with session.get(url + run_image_url(doc.run_id, image.id)) as resp:
                assert resp.status == 200
                data = await resp.read()
    assert hashlib.sha256(data).hexdigest() == image.sha256
    assert (tmp_path / "runs" / "images" / image.sha256[:2] / image.sha256).read_bytes() == data
