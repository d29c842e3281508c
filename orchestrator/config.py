"""The orchestrator's YAML, loaded once at start-up into frozen Structs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec

from service_common.auth import AuthSettings
from service_common.config import ConfigError, Section, load_config
from service_common.objects import S3Settings, parse_s3_url
from service_common.server import ServerSettings

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Aspect",
    "ConsoleConfig",
    "FlowConfig",
    "GatewayClientConfig",
    "ImageSize",
    "OrchestratorConfig",
    "RunsConfig",
    "ServerConfig",
    "load_orchestrator_config",
]

DEFAULT_CONFIG_PATH = "config/orchestrator.yaml"

Seconds = Annotated[float, msgspec.Meta(gt=0, le=3_600)]
Side = Annotated[int, msgspec.Meta(ge=64, le=2048, multiple_of=8)]


class GatewayClientConfig(Section, frozen=True):
    """How to reach one gateway.

    `timeout_s` is the gateway's own mode timeout (it bounds every call it answers); the client waits that
    plus `timeout_margin_s`, so the gateway's typed timeout error arrives before ours fires. Within a run,
    both shrink to what is left of the run's deadline, and the gateway is told so (`X-Request-Timeout`).
    `api_key` (from the environment) is sent as `Authorization: Bearer`; `repr` never shows it.
    """

    base_url: Annotated[str, msgspec.Meta(pattern="^https?://")]
    timeout_s: Seconds = 180.0
    timeout_margin_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 5.0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    # A Retry-After longer than this is capped, so a confused upstream cannot park a run for an hour.
    max_retry_after_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 30.0
    backoff_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.5
    api_key: str | None = None

    def __repr__(self) -> str:
        shown = "<set>" if self.api_key else None
        return f"GatewayClientConfig(base_url={self.base_url!r}, timeout_s={self.timeout_s!r}, api_key={shown})"


class ImageSize(Section, frozen=True):
    """Pixel size of the rendered image for one aspect the vision agent may choose."""

    width: Side
    height: Side


Aspect = Literal["square", "portrait", "landscape"]

_DEFAULT_SIZES: dict[Aspect, ImageSize] = {
    "square": ImageSize(width=1024, height=1024),
    "portrait": ImageSize(width=832, height=1216),
    "landscape": ImageSize(width=1216, height=832),
}


class FlowConfig(Section, frozen=True):
    """Knobs of the P0 flow."""

    image_sizes: dict[Aspect, ImageSize] = msgspec.field(default_factory=lambda: dict(_DEFAULT_SIZES))
    image_workflow: str | None = None
    quality: str | None = None


class RunsConfig(Section, frozen=True):
    """Where run documents and their images are kept, and what happens to runs a stopped process left."""

    dir: str = "./var/runs"
    # A PostgreSQL URL shares runs among replicas (leases, adoption of a dead replica's runs) instead of `dir`;
    # empty keeps the folder. Run images still go to `images_dir` (or the S3 bucket of `images_url`).
    url: str = ""
    # With a shared store: a replica owns a running run for lease_s and renews it every heartbeat_s.
    lease_s: Annotated[float, msgspec.Meta(ge=1, le=600)] = 15.0
    heartbeat_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    # Kept run images (content-addressed); empty = `<dir>/images`.
    images_dir: str = ""
    # `s3://bucket/prefix`: run images in an S3-compatible bucket shared by every replica (instead of images_dir).
    images_url: str = ""
    s3: S3Settings = S3Settings()
    recent_limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 50
    # A run's whole budget; `X-Request-Timeout` on the request may shorten it, never lengthen it.
    timeout_s: Seconds = 900.0
    # On SIGTERM, background runs get this long to finish before they are stopped (and recorded failed).
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 10.0
    # Runs found `running` at start-up (their process crashed): resume from the last finished step, or fail them.
    on_restart: Literal["resume", "fail"] = "resume"
    # Run event streams re-read a run this often when no save in this process woke them.
    events_poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0

    def __post_init__(self) -> None:
        if self.images_url:
            try:
                parse_s3_url(self.images_url)
            except ValueError as exc:
                raise ValueError(f"images_url: {exc}") from None
        if self.url and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("url: only postgresql:// URLs are supported (empty: the runs folder)")
        if self.url and self.heartbeat_s * 2 > self.lease_s:
            raise ValueError("heartbeat_s: must be at most half of lease_s, so one late beat never loses a lease")

    @property
    def images_path(self) -> str:
        """Where kept run images go."""
        return self.images_dir or str(Path(self.dir) / "images")


class ConsoleConfig(Section, frozen=True):
    """The browser console's session, used when API keys are configured.

    A key entered once in the console becomes a session cookie (HttpOnly, SameSite=Strict) holding an HMAC
    of the key's hash, never the key. `session_secret` signs it; empty = a random secret per process (a
    restart then asks for the key again). `repr` never shows it.
    """

    session_secret: str = ""
    session_ttl_s: Annotated[float, msgspec.Meta(ge=60, le=7 * 86_400)] = 43_200.0

    def __repr__(self) -> str:
        return f"ConsoleConfig(session_secret={'<set>' if self.session_secret else '<random>'}, " \
               f"session_ttl_s={self.session_ttl_s!r})"


class ServerConfig(ServerSettings, frozen=True):
    """HTTP server limits: the body cap, plus the edge limits, trusted proxies and CORS every service has."""

    max_body_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=10_000_000)] = 65_536


class OrchestratorConfig(Section, frozen=True):
    """The whole `config/orchestrator.yaml`."""

    llm_gateway: GatewayClientConfig
    media_gateway: GatewayClientConfig
    flow: FlowConfig = FlowConfig()
    runs: RunsConfig = RunsConfig()
    server: ServerConfig = ServerConfig()
    console: ConsoleConfig = ConsoleConfig()
    # Optional API keys for this service's own API (Authorization: Bearer); none configured = open.
    auth: AuthSettings = AuthSettings()


def load_orchestrator_config(path: Path, environ: Mapping[str, str]) -> OrchestratorConfig:
    """Read `path` with `${VAR:-default}` expanded from `environ`; problems raise ConfigError naming the key."""
    return load_config(path, OrchestratorConfig, environ, check=_check_sizes)


def _check_sizes(config: OrchestratorConfig) -> OrchestratorConfig:
    missing = set(get_args(Aspect)) - set(config.flow.image_sizes)
    if missing:
        raise ConfigError(f"flow.image_sizes: missing {', '.join(sorted(missing))}")
    return config
