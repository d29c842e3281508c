"""OpenAI Images (DALL·E, gpt-image), `POST {base_url}/v1/images/generations`, images returned as `b64_json`.

The requested width × height maps to the allowed size closest in aspect ratio (then in area), since the
API only takes a few fixed sizes; the stored image has the size the API produced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from service_common.providers import KeyedProvider
from service_common.providers.bodies import merge_extra
from service_common.providers.cloud_errors import openai_error
from shared_contracts.errors import UpstreamError

from ._images import ImageApiSettings, call_deadline, decode_image, prompt_text
from .base import MediaProvider, ProgressCallback, RenderCall, RenderedImage

__all__ = ["DalleProvider", "DalleSettings", "closest_size"]

Size = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")]


class DalleSettings(ImageApiSettings, kw_only=True, frozen=True):
    """YAML section of an OpenAI Images provider; `model` names the image model."""

    base_url: str = "https://api.openai.com"
    api_key_env: str = "OPENAI_API_KEY"
    # The sizes the model accepts (DALL·E 3's by default; gpt-image models take 1024x1024, 1536x1024, 1024x1536).
    sizes: Annotated[list[Size], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["1024x1024", "1792x1024", "1024x1792"]
    )
    # DALL·E 3 makes one image per call; larger counts become several calls.
    max_images_per_call: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    # gpt-image models always answer base64 and reject the parameter: set false for them.
    send_response_format: bool = True


class _Image(msgspec.Struct):
    b64_json: str | None = None
    revised_prompt: str | None = None


class _Images(msgspec.Struct):
    data: list[_Image]


_decode_images = msgspec.json.Decoder(_Images)


def closest_size(width: int, height: int, sizes: list[str]) -> str:
    """The allowed `WxH` nearest in aspect ratio, then in area: `closest_size(1200, 800, ...)` → `1792x1024`."""

    def distance(size: str) -> tuple[float, float]:
        w, h = (int(v) for v in size.split("x"))
        return abs(math.log((w / h) / (width / height))), abs(math.log((w * h) / (width * height)))

    return min(sizes, key=distance)


class DalleProvider(KeyedProvider, MediaProvider):
    """Text-to-image through the OpenAI Images API."""

    Settings = DalleSettings
    settings: DalleSettings
    error_mapper = staticmethod(openai_error)

    def auth_headers(self, key: str) -> Mapping[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        count = int(call.params.get("count", 1))
        images: list[RenderedImage] = []
        progress("running", 0.0)
        while len(images) < count:
            n = min(count - len(images), self.settings.max_images_per_call)
            raw = await self.client.post_json(
                f"{self.base_url}/v1/images/generations", self._body(call, n), deadline=call_deadline(self.settings)
            )
            images.extend(self._images(raw))
            progress("running", min(1.0, len(images) / count))
        return images[:count]

    def _body(self, call: RenderCall, n: int) -> dict[str, Any]:
        params = call.params
        body: dict[str, Any] = {
            "model": self.settings.model,
            "prompt": prompt_text(params),
            "n": n,
            "size": closest_size(int(params["width"]), int(params["height"]), self.settings.sizes),
        }
        if self.settings.send_response_format:
            body["response_format"] = "b64_json"
        # The workflow's YAML options (model, quality, style, background...) go to the API as given.
        return merge_extra(body, call.options)

    def _images(self, raw: bytes) -> list[RenderedImage]:
        try:
            reply = _decode_images.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        images = []
        for item in reply.data:
            if not item.b64_json:
                raise UpstreamError(f"{self.name}: an image came without b64_json", details={"provider": self.name})
            images.append(decode_image(self.name, item.b64_json))
        if not images:
            raise UpstreamError(f"{self.name}: the answer held no image", details={"provider": self.name})
        return images
