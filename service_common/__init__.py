"""Runtime plumbing the three services share: config loading, logging, HTTP and SSE helpers, the CLI.

It holds no service logic and imports no service package.
"""

from __future__ import annotations

__all__: list[str] = []
