"""Gemini image generation ("Nano Banana"), `POST {base_url}/v1beta/models/{model}:generateContent`.

Images arrive as response parts `{"inlineData": {"mimeType", "data"}}`, `data` being plain base64 (no
`data:` prefix). Every part of every candidate is scanned, since text parts may come first. An answer
without an image (text only, a blocked prompt, `IMAGE_SAFETY`) is a clear `upstream_rejected`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from service_common.providers import KeyedProvider
from service_common.providers.bodies import merge_extra
from service_common.providers.cloud_errors import gemini_error
from service_common.providers.gemini_wire import BLOCKED_FINISH_REASONS, GenerateContentResponse, decode_response
from shared_contracts.errors import UpstreamError, UpstreamRejected

from ._images import ImageApiSettings, call_deadline, decode_image, prompt_text
from .base import MediaProvider, ProgressCallback, RenderCall, RenderedImage

__all__ = ["NanoBananaProvider", "NanoBananaSettings", "closest_aspect_ratio"]

Ratio = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]?:[1-9][0-9]?$")]
_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


class NanoBananaSettings(ImageApiSettings, kw_only=True, frozen=True):
    """YAML section of a Gemini image provider; `model` names the image model."""

    base_url: str = "https://generativelanguage.googleapis.com"
    api_key_env: str = "GEMINI_API_KEY"
    api_version: str = "v1beta"
    # The aspect ratios the model accepts; width × height maps to the closest.
    aspect_ratios: Annotated[list[Ratio], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: list(_RATIOS)
    )
    response_modalities: list[str] = msgspec.field(default_factory=lambda: ["TEXT", "IMAGE"])


def closest_aspect_ratio(width: int, height: int, ratios: list[str]) -> str:
    """The allowed `W:H` nearest to width/height: `closest_aspect_ratio(1024, 576, ...)` → `16:9`."""

    def distance(ratio: str) -> float:
        w, h = (int(v) for v in ratio.split(":"))
        return abs(w / h - width / height) / (w / h)

    return min(ratios, key=distance)


class NanoBananaProvider(KeyedProvider, MediaProvider):
    """Text-to-image through Gemini's image models; one call per image."""

    Settings = NanoBananaSettings
    settings: NanoBananaSettings
    error_mapper = staticmethod(gemini_error)

    def auth_headers(self, key: str) -> Mapping[str, str]:
        return {"x-goog-api-key": key}

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        count = int(call.params.get("count", 1))
        options = dict(call.options)
        model = str(options.pop("model", self.settings.model)).removeprefix("models/")
        url = f"{self.base_url}/{self.settings.api_version}/models/{model}:generateContent"
        images: list[RenderedImage] = []
        progress("running", 0.0)
        for index in range(count):
            raw = await self.client.post_json(
                url, self._body(call, index, options), deadline=call_deadline(self.settings)
            )
            # A call may return more than one image; the job wants `count` in all.
            images.extend(self._images(raw))
            progress("running", min(1.0, len(images) / count))
            if len(images) >= count:
                break
        return images[:count]

    def _body(self, call: RenderCall, index: int, options: Mapping[str, Any]) -> dict[str, Any]:
        params = call.params
        ratio = closest_aspect_ratio(int(params["width"]), int(params["height"]), self.settings.aspect_ratios)
        config: dict[str, Any] = {
            "responseModalities": list(self.settings.response_modalities),
            "imageConfig": {"aspectRatio": ratio},
        }
        if params.get("seed") is not None:
            # One seed per image of the job, so several images differ but each is reproducible.
            config["seed"] = (int(params["seed"]) + index) % 2**31
        body = {"contents": [{"role": "user", "parts": [{"text": prompt_text(params)}]}], "generationConfig": config}
        return merge_extra(body, options)

    def _images(self, raw: bytes) -> list[RenderedImage]:
        try:
            reply = decode_response.decode(raw)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"{self.name}: unreadable answer", details={"provider": self.name}) from exc
        images = [
            decode_image(self.name, part.inline_data.data)
            for candidate in reply.candidates
            # Thought parts can hold interim drafts; only the answer's images count.
            for part in candidate.answer_parts()
            if part.inline_data is not None and part.inline_data.data
        ]
        if not images:
            raise self._no_image(reply)
        return images

    def _no_image(self, reply: GenerateContentResponse) -> UpstreamRejected:
        details: dict[str, Any] = {"provider": self.name}
        if reply.block_reason:
            reason = reply.block_reason
            details.update(reason="blocked", block_reason=reason)
            return UpstreamRejected(f"{self.name}: the prompt was blocked ({reason})", details=details)
        finish = next((c.finish_reason for c in reply.candidates if c.finish_reason), None)
        text = " ".join(p.text for c in reply.candidates for p in c.answer_parts() if p.text).strip()
        if finish in BLOCKED_FINISH_REASONS:
            details.update(reason="blocked", block_reason=finish)
            return UpstreamRejected(f"{self.name}: no image, the answer was withheld ({finish})", details=details)
        details.update(reason="no_image", finish_reason=finish, text=text[:300])
        return UpstreamRejected(
            f"{self.name}: the model answered without an image ({text[:80] or finish})", details=details
        )
