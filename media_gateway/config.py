"""The Media Gateway's configuration: `config/media_gateway.yaml` read once into frozen Structs.

Environment variables reach the service only through `${VAR:-default}` in the YAML
(`GENERATOR_MODE`, `COMFYUI_BASE_URL`, `MEDIA_STORE_DIR`, `MEDIA_PUBLIC_BASE_URL`, `MEDIA_GATEWAY_API_KEYS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from service_common.auth import AuthSettings
from service_common.config import ConfigError, Section, load_config
from service_common.modes import GeneratorMode
from service_common.objects import S3Location, S3Settings, parse_s3_url
from service_common.server import ServerSettings

__all__ = [
    "JobsConfig",
    "MediaConfig",
    "ParamSpec",
    "ParamType",
    "StoreConfig",
    "Timeouts",
    "WorkflowRule",
    "WorkflowSpec",
    "load_media_config",
]

Seconds = Annotated[float, msgspec.Meta(gt=0)]


class Timeouts(Section, frozen=True):
    """How long one job may take, per mode; `wait: true` answers within it."""

    mock: Seconds = 5.0
    live: Seconds = 180.0


class StoreConfig(Section, frozen=True):
    """Where image bytes live: a local directory, or an S3-compatible bucket (`url`); content-addressed either way."""

    dir: str = "./var/media"
    # `s3://bucket/prefix` keeps images in a bucket every replica shares (instead of `dir`); empty: `dir`.
    url: str = ""
    # With a bucket: answer image GETs with a redirect to a presigned URL valid presign_ttl_s, instead of the bytes.
    presigned_urls: bool = False
    presign_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=604_800)] = 3600
    s3: S3Settings = S3Settings()

    def __post_init__(self) -> None:
        if self.url:
            try:
                parse_s3_url(self.url)
            except ValueError as exc:
                raise ValueError(f"url: {exc}") from None
        elif self.presigned_urls:
            raise ValueError("presigned_urls: needs an s3:// url (a local folder has nothing to presign)")

    @property
    def bucket(self) -> S3Location | None:
        """The bucket and prefix, when the store is one."""
        return parse_s3_url(self.url) if self.url else None


class JobsConfig(Section, frozen=True):
    """Where job state is kept, how long finished jobs are remembered, and how shutdown ends the rest."""

    # `sqlite` survives restarts (unfinished jobs are resumed at start-up); `memory` forgets on exit.
    registry: Literal["sqlite", "memory"] = "sqlite"
    # A PostgreSQL URL (`postgresql://user:pass@host/db`) shares jobs among replicas and replaces `registry`;
    # empty keeps the local registry above.
    url: str = ""
    # With a shared store: a replica owns a job for lease_s and renews it every heartbeat_s (jobs of a replica
    # that stopped renewing are adopted by another after lease_s); jobs driven elsewhere are re-read every poll_s.
    lease_s: Annotated[float, msgspec.Meta(ge=1, le=600)] = 15.0
    heartbeat_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    pool_size: Annotated[int, msgspec.Meta(ge=2, le=100)] = 10
    # The SQLite file; empty means `<store.dir>/jobs.sqlite3`.
    sqlite_path: str = ""
    max_jobs: Annotated[int, msgspec.Meta(ge=1)] = 1000
    retention_s: Seconds = 3600.0
    # On SIGTERM, running jobs get this long to finish before they are ended; queued ones end at once.
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 10.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("url: only postgresql:// URLs are supported (empty: the local registry)")
        if self.url and self.heartbeat_s * 2 > self.lease_s:
            raise ValueError("heartbeat_s: must be at most half of lease_s, so one late beat never loses a lease")

    @property
    def shared(self) -> bool:
        """Whether jobs live in a database several replicas share."""
        return bool(self.url)

    def sqlite_file(self, store: StoreConfig) -> Path:
        """The SQLite file of the `sqlite` registry."""
        return Path(self.sqlite_path) if self.sqlite_path else Path(store.dir) / "jobs.sqlite3"


ParamType = Literal["int", "float", "bool", "string", "filename"]


class ParamSpec(Section, frozen=True):
    """Where a request parameter goes in the graph (`node` id, `input` name), its default, type and bounds.

    Workflows without a graph file (cloud providers) use no node/input. Every parameter beyond the
    request's own fields declares `type` and bounds: `min`/`max` for numbers, `choices` or `max_length`
    for strings; `filename` is a string that is one file name (no path separators, no leading dot). A
    value outside them is refused with 400 before anything is sent upstream.
    """

    node: str | None = None
    input: str | None = None
    default: Any = None
    description: str = ""
    type: ParamType | None = None
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    max_length: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # A regular expression the whole string value must match (strings and file names).
    pattern: str | None = None


class WorkflowSpec(Section, frozen=True):
    """One workflow: its graph file (relative to the YAML), provider, parameter mapping and outputs."""

    provider: str
    file: str | None = None
    description: str = ""
    params: dict[str, ParamSpec] = {}
    # Node ids whose images are the job's result; empty means every `output`-type image.
    outputs: list[str] = []
    # Provider-specific extras handed to the provider as they are (e.g. a cloud model name).
    options: dict[str, Any] = {}


class WorkflowRule(Section, frozen=True):
    """A routing rule: requests matching `role` and `task` (absent = any) run `workflow`."""

    workflow: str
    role: str | None = None
    task: str | None = None


class MediaConfig(Section, frozen=True):
    """The whole service configuration."""

    mode: GeneratorMode = "mock"
    # Lets a caller pick the mode per request with `X-Generator-Mode`; off in production.
    allow_mode_header: bool = False
    # Record mode saves every finished live job here; replay mode answers only from here (media_gateway/fixtures.py).
    fixtures_dir: str = "fixtures/media"
    timeouts: Timeouts = Timeouts()
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * 1024
    # Optional API keys (Authorization: Bearer); none configured means the API is open.
    auth: AuthSettings = AuthSettings()
    # The HTTP edge: header and body limits, trusted proxies, CORS origins, see service_common/server.py.
    server: ServerSettings = ServerSettings()
    public_base_url: str = ""
    store: StoreConfig = StoreConfig()
    jobs: JobsConfig = JobsConfig()
    # The provider every job uses in mock mode, whatever its workflow names.
    mock_provider: str = "mock"
    providers: dict[str, dict[str, Any]] = {}
    workflows: dict[str, WorkflowSpec] = {}
    routing: list[WorkflowRule] = []
    # Directory that relative workflow `file` paths start from; set by the loader to the YAML's folder.
    base_dir: str = "."


def validate_references(config: MediaConfig) -> None:
    """Cross-check names: every workflow's provider and every route's workflow must exist."""
    for name, spec in config.providers.items():
        if not isinstance(spec.get("class"), str):
            raise ConfigError(f"providers.{name}.class: a 'module:Class' import path is required")
    if config.mock_provider not in config.providers:
        raise ConfigError(f"mock_provider: no provider named {config.mock_provider!r} under providers")
    for name, wf in config.workflows.items():
        if wf.provider not in config.providers:
            raise ConfigError(f"workflows.{name}.provider: no provider named {wf.provider!r} under providers")
    for i, route in enumerate(config.routing):
        if route.workflow not in config.workflows:
            raise ConfigError(f"routing[{i}].workflow: no workflow named {route.workflow!r} under workflows")
    if not any(r.role is None and r.task is None for r in config.routing):
        raise ConfigError("routing: a default rule (no role, no task) is required as the last resort")


def load_media_config(path: Path, environ: Mapping[str, str]) -> MediaConfig:
    """Read, expand and validate the YAML; relative workflow files resolve against its folder."""

    def check(config: MediaConfig) -> MediaConfig:
        validate_references(config)
        return msgspec.structs.replace(config, base_dir=str(path.parent.resolve()))

    return load_config(path, MediaConfig, environ, check=check)


__all__ += ["validate_references"]
