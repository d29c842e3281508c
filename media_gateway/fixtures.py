"""Record and replay for the Media Gateway: live jobs kept as fixture files and answered from them offline.

GENERATOR_MODE=record renders on the live provider and saves each finished job; GENERATOR_MODE=replay
answers only from the saved files (no upstream contact). A fixture's key is the SHA-256 of what was
routed: the workflow and its resolved parameters (prompt, negative prompt, size, count, the workflow's
own parameters with their defaults) with the seed the client sent (none: `null`, so a live job's random
seed does not make every key unique). Files under `<fixtures_dir>`:

    jobs/<workflow>-<key[:16]>.json    the routed request, the provider and seed that answered, the images
    images/<sha256>.<png|jpg|webp>     each image's bytes, named by their SHA-256 (shared by equal images)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import structlog

from service_common.files import write_atomically
from service_common.fixtures import (
    FixtureFiles,
    canonical_key,
    differences,
    opened_fixtures,
    pretty,
    read_fixture,
    redact,
    secrets_of,
    slug,
)
from shared_contracts.errors import FixtureMissing, StorageError
from shared_contracts.media import ImageRequest

from .config import MediaConfig
from .providers.base import Capacity, MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage

__all__ = ["FORMAT", "MediaFixture", "MediaFixtures", "RecordedImage", "build_fixtures", "routed"]

FORMAT = 1
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_log = structlog.get_logger(component="media_fixtures")


class RecordedImage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One image of a recorded job: its file under `images/` and what it must hash to."""

    file: str
    sha256: str
    mime_type: str
    bytes: int


class MediaFixture(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One recorded job: the routed request, who rendered it with which seed, and its images in order."""

    format: int = FORMAT
    key: str
    request: dict[str, Any]
    role: str
    task: str
    provider: str
    seed: int
    images: list[RecordedImage]


_decode_fixture = msgspec.json.Decoder(MediaFixture)


def routed(workflow: str, values: Mapping[str, Any], request: ImageRequest) -> dict[str, Any]:
    """What a media fixture is keyed on: the workflow and its resolved parameters, with the client's seed."""
    params = {**values, "seed": request.seed}
    return {"workflow": workflow, "params": msgspec.to_builtins(params)}


class MediaFixtures:
    """The recorded jobs under one folder, indexed by key at start-up; recording adds to them."""

    def __init__(self, root: Path, *, secrets: Sequence[str] = ()) -> None:
        self.files = FixtureFiles(root)
        self.secrets = tuple(secrets)
        self._index: dict[str, tuple[Path, MediaFixture]] = {}

    @property
    def root(self) -> Path:
        """The folder."""
        return self.files.root

    def __len__(self) -> int:
        return len(self._index)

    def load(self) -> None:
        """Read every job file; a broken one (or one naming a missing image) raises ValueError naming it."""
        index: dict[str, tuple[Path, MediaFixture]] = {}
        jobs = FixtureFiles(self.root / "jobs")
        for path in jobs.files(".json"):
            fixture = read_fixture(path, _decode_fixture)
            for image in fixture.images:
                if not self._image_path(image).is_file():
                    raise ValueError(f"fixture {path}: image {image.file} is missing")
            index[fixture.key] = (path, fixture)
        self._index = index

    def _image_path(self, image: RecordedImage) -> Path:
        return self.files.path("images", image.file)

    def find(self, workflow: str, values: Mapping[str, Any], request: ImageRequest) -> MediaFixture:
        """The recorded job for this request; a miss is 404 `fixture_missing` naming the key and the closest."""
        parts = routed(workflow, values, request)
        key = canonical_key(parts)
        found = self._index.get(key)
        if found is not None:
            return found[1]
        same = [(path, f) for path, f in self._index.values() if f.request.get("workflow") == workflow]
        details: dict[str, Any] = {
            "key": key, "role": request.role, "task": request.task, "workflow": workflow,
            "fixtures_dir": str(self.root), "closest": None,
        }
        if not same:
            raise FixtureMissing(f"no fixture recorded for workflow {workflow!r} (key {key[:16]})", details=details)

        def rank(item: tuple[Path, MediaFixture]) -> tuple[bool, int]:
            fixture = item[1]
            other_route = (fixture.role, fixture.task) != (request.role, request.task)
            return other_route, len(differences(fixture.request["params"], parts["params"]))

        path, closest = min(same, key=rank)
        differs = [f"params.{name}" for name in differences(closest.request["params"], parts["params"])]
        details["closest"] = {"key": closest.key, "file": str(path.relative_to(self.root)), "differs_in": differs}
        raise FixtureMissing(
            f"no fixture recorded for this {workflow} job (key {key[:16]}); the closest, {closest.key[:16]}, "
            f"differs in {', '.join(differs)}",
            details=details,
        )

    async def images_of(self, fixture: MediaFixture) -> list[RenderedImage]:
        """The recorded images' bytes, each checked against its SHA-256."""
        images = []
        for image in fixture.images:
            data = await asyncio.to_thread(self._image_path(image).read_bytes)
            if hashlib.sha256(data).hexdigest() != image.sha256:
                raise StorageError(
                    f"fixture image {image.file} does not match its sha256", details={"file": image.file}
                )
            images.append(RenderedImage(data=data, mime_type=image.mime_type))
        return images

    async def save(
        self, parts: dict[str, Any], *, role: str, task: str, provider: str, seed: int, images: list[RenderedImage]
    ) -> Path:
        """Record a finished job: its images by content, then its file (replacing an older one)."""
        parts = redact(parts, self.secrets)
        key = canonical_key(parts)
        recorded = []
        for image in images:
            digest = hashlib.sha256(image.data).hexdigest()
            name = f"{digest}.{_EXTENSIONS.get(image.mime_type, 'bin')}"
            path = self.files.path("images", name)
            if not path.is_file():
                await asyncio.to_thread(write_atomically, path, image.data)
            recorded.append(RecordedImage(file=name, sha256=digest, mime_type=image.mime_type, bytes=len(image.data)))
        fixture = MediaFixture(key=key, request=parts, role=role, task=task, provider=provider, seed=seed,
                               images=recorded)
        path = self.files.path("jobs", f"{slug(str(parts['workflow']))}-{key[:16]}.json")
        await asyncio.to_thread(write_atomically, path, pretty(fixture))
        self._index[key] = (path, fixture)
        _log.info("fixture_recorded", key=key[:16], workflow=parts["workflow"], images=len(recorded),
                  file=str(path.relative_to(self.root)))
        return path

    def replaying(self, fixture: MediaFixture) -> MediaProvider:
        """A provider that answers one job with `fixture`'s images and contacts nothing."""
        return _Replay(fixture.provider, self, fixture)

    def recording(
        self, inner: MediaProvider, parts: dict[str, Any], *, role: str, task: str, seed: int
    ) -> MediaProvider:
        """`inner`, saving what it renders for this job as a fixture (a failed save is logged; the job stands)."""
        return _Recording(inner, self, parts, role=role, task=task, seed=seed)


class _Replay(MediaProvider):
    kind = "mock"

    def __init__(self, name: str, fixtures: MediaFixtures, fixture: MediaFixture) -> None:
        super().__init__(name, ProviderSettings())
        self._fixtures = fixtures
        self._fixture = fixture

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        progress("running", 0.0)
        return await self._fixtures.images_of(self._fixture)


class _Recording(MediaProvider):
    def __init__(
        self, inner: MediaProvider, fixtures: MediaFixtures, parts: dict[str, Any], *, role: str, task: str, seed: int
    ) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self._fixtures = fixtures
        self._parts = parts
        self._meta = (role, task, seed)

    def capacity(self) -> Capacity | None:
        return self.inner.capacity()

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        images = await self.inner.render(call, progress=progress)
        role, task, seed = self._meta
        try:
            await self._fixtures.save(self._parts, role=role, task=task, provider=self.name, seed=seed, images=images)
        except (OSError, ValueError) as exc:
            # The live job succeeded and is answered; only its fixture is missing, and the log says so.
            _log.error("fixture_not_saved", workflow=self._parts.get("workflow"), error=str(exc))
        return images


def build_fixtures(config: MediaConfig) -> MediaFixtures | None:
    """The fixture folder of record and replay, read now (a broken file fails start-up); None when unused."""
    if config.mode not in ("record", "replay") and not config.allow_mode_header:
        return None
    fixtures = MediaFixtures(Path(config.fixtures_dir), secrets=secrets_of(config.providers))
    return opened_fixtures(fixtures, mode=config.mode, folder_variable="MEDIA_FIXTURES_DIR")
