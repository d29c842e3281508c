"""`llm-gateway --host --port --config` (also `python -m llm_gateway`): load the YAML, build the app, serve."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service_common.checkconfig import check_config_command
from service_common.config import ConfigError, config_file
from service_common.logging import configure_logging
from service_common.server import parse_serve_args, serve

from .app import build_gateway, create_app
from .config import GatewayConfig, load_gateway_config
from .probe import probe_providers, split_probe_flag

__all__ = ["main"]

DEFAULT_PORT = 8100
DEFAULT_CONFIG = "config/llm_gateway.yaml"
CONFIG_ENV = "LLM_GATEWAY_CONFIG"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the gateway (or `check-config [--probe] PATH`); a configuration error prints one line and exits with 2."""
    environ = dict(os.environ)
    checking, probe = split_probe_flag(sys.argv[1:] if argv is None else argv)
    checked = check_config_command(
        checking,
        prog="llm-gateway",
        config_type=GatewayConfig,
        load=lambda path: _build(path, environ),
    )
    if checked is not None:
        if checked == 0 and probe:
            # The file is fine; now ask each provider a live route uses whether it answers where the file says.
            checked = probe_providers(Path(checking[-1]), environ, out=sys.stdout)
        raise SystemExit(checked)
    args = parse_serve_args(
        argv,
        prog="llm-gateway",
        default_port=DEFAULT_PORT,
        default_config=DEFAULT_CONFIG,
        config_env=CONFIG_ENV,
        environ=environ,
    )
    try:
        # Providers are built from their YAML sections here too: their errors name the file like the loader's.
        with config_file(args.config, environ):
            config = load_gateway_config(args.config, environ=environ)
            app = create_app(config, environ=environ, reload_from=args.config)
    except ConfigError as exc:
        print(f"llm-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(level=config.log_level or args.log_level, service="llm-gateway")
    serve(app, host=args.host, port=args.port, log_level=args.log_level, settings=config.server)


def _build(path: Path, environ: dict[str, str]) -> object:
    with config_file(path, environ):
        return build_gateway(load_gateway_config(path, environ=environ))


if __name__ == "__main__":
    main()
