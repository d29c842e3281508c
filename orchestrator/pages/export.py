"""A run exported as a self-contained folder that opens from disk (file://): `index.html` (the run page with
relative links and no script), `console.css`, `favicon.svg`, `images/<sha256>.<ext>` and `run.json`.

`GET /runs/{run_id}/export` answers it as a zip; `python -m orchestrator.tools.export` writes the folder.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import msgspec

from orchestrator.pages.render import PageRenderer
from shared_contracts.flows import RunDocument, RunImage

__all__ = ["ImageBytes", "export_files", "write_export", "zip_export"]

# (run image) -> its bytes, or None when they cannot be had.
ImageBytes = Callable[[RunImage], Awaitable[bytes | None]]

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_encode = msgspec.json.Encoder().encode


async def export_files(doc: RunDocument, renderer: PageRenderer, image_bytes: ImageBytes) -> dict[str, bytes]:
    """Every file of the export by its relative path; an image that cannot be had is left out (the page then
    shows its absence)."""
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    for image in doc.images:
        data = await image_bytes(image)
        if data is None:
            continue
        # Named by digest, not by the model-facing id: a file name that cannot hold anything surprising.
        name = f"images/{image.sha256}.{_EXTENSIONS.get(image.mime_type, 'bin')}"
        files[name] = data
        names[image.id] = name
    files["run.json"] = msgspec.json.format(_encode(doc), indent=2) + b"\n"
    files["console.css"] = renderer.static["console.css"].body
    files["favicon.svg"] = renderer.static["favicon.svg"].body
    files["index.html"] = renderer.export_page(doc, names).encode("utf-8")
    return files


def zip_export(files: Mapping[str, bytes], folder: str) -> bytes:
    """The files as a zip whose entries sit in `folder/`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(f"{folder}/{name}", data)
    return out.getvalue()


def write_export(files: Mapping[str, bytes], folder: Path) -> Path:
    """Write the files under `folder` (created; files of an earlier export replaced); returns index.html."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder / "index.html"
