"""The generator mode of a request: the gateway's own, or the `X-Generator-Mode` header's when the YAML allows it.

Both gateways (and both of the LLM Gateway's front ends) read the header here, so they agree.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import Mode

__all__ = ["MODE_HEADER", "requested_mode"]

MODE_HEADER = "x-generator-mode"


def requested_mode(headers: Mapping[str, str], *, allowed: bool) -> Mode | None:
    """The mode the request's header asks for; None when there is none or the gateway does not allow it.

    `{"x-generator-mode": " Live "}` → `"live"`. Any other value is an InvalidRequest (400), but only
    when allowed: with the switch off the header is ignored, whatever it says.
    """
    if not allowed:
        return None
    value = headers.get(MODE_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    if value == "mock" or value == "live":
        return value  # type: ignore[return-value]
    raise InvalidRequest(f"{MODE_HEADER} must be 'mock' or 'live'", details={"header": MODE_HEADER})
