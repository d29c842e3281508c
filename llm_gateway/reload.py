"""Routing reload on SIGHUP: the new YAML is validated in full before it replaces the running routes.

Only routing (rules, default, timeouts) changes at run time. Providers own open sessions, so a changed
`providers` section is reported and waits for a restart; a route naming a provider this process does
not run is refused like any other bad file. A refused file leaves the old routing in place.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from pathlib import Path

import structlog

from service_common.config import ConfigError

from .config import GatewayConfig, load_gateway_config
from .gateway import Gateway
from .routing import Router

__all__ = ["RoutingReloader"]

_log = structlog.get_logger(component="reload")


class RoutingReloader:
    """Re-reads `path` and swaps the gateway's Router when the file is valid."""

    def __init__(self, gateway: Gateway, config: GatewayConfig, *, path: Path, environ: Mapping[str, str]) -> None:
        self.gateway = gateway
        self.config = config
        self.path = path
        self.environ = dict(environ)

    def reload(self) -> bool:
        """Validate and apply the file; False (old routing kept, reason logged) when it is refused."""
        try:
            config = load_gateway_config(self.path, environ=self.environ)
            router = Router(config.llm_routing, config.timeouts)
            missing = sorted(router.provider_names() - set(self.gateway.providers))
            if missing:
                raise ConfigError(f"{self.path}: routes name providers this process does not run: {', '.join(missing)}")
        except (ConfigError, NotImplementedError) as exc:
            _log.error("routing_reload_rejected", path=str(self.path), reason=str(exc))
            return False
        if config.providers != self.config.providers or config.mode != self.config.mode:
            _log.warning("routing_reload_partial", path=str(self.path),
                         reason="provider and mode changes take effect on restart; routes were reloaded")
        self.gateway.router = router  # one reference swap: a request in flight keeps the route it resolved
        self.config = config
        rules, default = router.describe()
        _log.info("routing_reloaded", path=str(self.path), rules=len(rules), default=default is not None)
        return True

    def install(self) -> None:
        """Reload on SIGHUP from now on (call inside the running loop, e.g. in the lifespan)."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)

    def uninstall(self) -> None:
        """Stop listening for SIGHUP."""
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
