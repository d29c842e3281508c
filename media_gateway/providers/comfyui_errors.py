"""ComfyUI's error texts made fit for clients: what failed is kept, where ComfyUI lives is not.

A real ComfyUI puts its install and output folders into error texts (`full_output_folder: /srv/comfyui`,
`output_dir: …`, a traceback of `File "/srv/comfyui/execution.py"` lines). The gateway passes on the
node id, node type, input name, exception type and message, with every absolute path replaced by
`<path>`; tracebacks and node inputs are never passed on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared_contracts.errors import UpstreamError

__all__ = ["PATH_MARK", "execution_failure", "without_paths"]

PATH_MARK = "<path>"
_STOP = r"""[^\s"'<>|,;()\[\]{}]"""
_PATHS = re.compile(
    # POSIX: a slash that does not continue a word, a URL (`://`) or a relative path (`a/b`), and what follows.
    rf"(?<![\w.~:/\\-])/{_STOP}*"
    # A home folder: `~/x`, `~user/x`.
    rf"|(?<![\w.~/\\-])~[\w.-]*/{_STOP}*"
    # Windows: `C:\x`, `C:/x`, and UNC shares `\\host\share`.
    rf"|(?<![\w])[A-Za-z]:[\\/]{_STOP}*"
    rf"|\\\\{_STOP}+"
    # A file URL names a local path too.
    rf"|file://{_STOP}*"
)
# Bounds what is scanned and passed on: a message is a sentence, not a log.
_MAX_TEXT = 2000


def without_paths(text: str) -> str:
    """`text` with every absolute path replaced by `<path>`; relative names (`sub/x.png`) stay.

    >>> without_paths("full_output_folder: /srv/comfyui\\n commonpath: /")
    'full_output_folder: <path>\\n commonpath: <path>'
    """
    return _PATHS.sub(PATH_MARK, text[:_MAX_TEXT])


def clean(value: Any) -> Any:
    """A JSON value with `without_paths` applied to every string in it."""
    if isinstance(value, str):
        return without_paths(value)
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def execution_failure(error: Mapping[str, Any], prompt_id: str) -> UpstreamError:
    """ComfyUI's `execution_error` as a 502 naming node, node type and exception; no paths, no traceback."""
    node_id, node_type = error.get("node_id"), error.get("node_type")
    kind = str(error.get("exception_type") or "error")
    message = without_paths(str(error.get("exception_message") or "")).strip()
    return UpstreamError(
        f"ComfyUI failed in node {node_id} ({node_type}): {kind}: {message}".rstrip(": "),
        details={"node_id": node_id, "node_type": node_type, "exception_type": kind, "prompt_id": prompt_id},
    )


__all__ += ["clean"]
