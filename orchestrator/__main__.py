"""`orchestrator --host H --port P --config PATH` (also `python -m orchestrator`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from orchestrator.app import create_app
from orchestrator.config import DEFAULT_CONFIG_PATH, OrchestratorConfig, load_orchestrator_config
from service_common.checkconfig import check_config_command
from service_common.config import ConfigError, config_file
from service_common.logging import configure_logging
from service_common.server import parse_serve_args, serve

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Load the YAML, then serve (or `check-config PATH`); a bad config exits 2 with the YAML path in the message."""
    checked = check_config_command(
        argv, prog="orchestrator", config_type=OrchestratorConfig,
        load=lambda path: load_orchestrator_config(path, os.environ),
    )
    if checked is not None:
        return checked
    args = parse_serve_args(
        argv,
        prog="orchestrator",
        default_port=8300,
        default_config=DEFAULT_CONFIG_PATH,
        config_env="ORCHESTRATOR_CONFIG",
    )
    try:
        with config_file(args.config, os.environ):
            config = load_orchestrator_config(args.config, os.environ)
            app = create_app(config)
    except ConfigError as exc:
        print(f"orchestrator: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=args.log_level, service="orchestrator")
    serve(app, host=args.host, port=args.port, log_level=args.log_level, settings=config.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
