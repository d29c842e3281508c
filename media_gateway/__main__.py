"""`media-gateway --host --port --config` (also `python -m media_gateway`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service_common.checkconfig import check_config_command
from service_common.config import ConfigError, config_file
from service_common.logging import configure_logging
from service_common.server import parse_serve_args, serve

from .app import create_app
from .config import MediaConfig, load_media_config
from .preflight import check_storage

__all__ = ["main"]

_GRACE_MARGIN_S = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    """Load the YAML, build the app, serve it (or `check-config PATH`); a configuration problem exits with status 2."""
    checked = check_config_command(
        argv, prog="media-gateway", config_type=MediaConfig,
        load=lambda path: _build(path),
    )
    if checked is not None:
        return checked
    args = parse_serve_args(
        argv,
        prog="media-gateway",
        default_port=8200,
        default_config="config/media_gateway.yaml",
        config_env="MEDIA_GATEWAY_CONFIG",
    )
    configure_logging(level=args.log_level, service="media-gateway")
    try:
        # Providers and workflow graphs are built here too: their errors name the file like the loader's.
        with config_file(args.config, os.environ):
            config = load_media_config(args.config, os.environ)
            app = create_app(config)
            # A missing or read-only store or job database is a configuration error too, named here.
            check_storage(config)
    except ConfigError as exc:
        print(f"media-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    # uvicorn's own graceful wait outlasts the jobs' grace, so waiting clients are answered by the job
    # runner (result or 503 shutting_down) and never cut by the server.
    serve(app, host=args.host, port=args.port, log_level=args.log_level, settings=config.server,
          graceful_s=config.jobs.shutdown_grace_s + _GRACE_MARGIN_S, on_exit=app.state.begin_shutdown)
    return 0


def _build(path: Path) -> object:
    with config_file(path, os.environ):
        return create_app(load_media_config(path, os.environ))


if __name__ == "__main__":
    raise SystemExit(main())
