"""VisionGeneratorAgent (`vision`): the LLM writes the image prompt, the Media Gateway renders it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from orchestrator.agents.base import Agent, AgentInputs, AgentOutput, AgentResult, PromptLibrary
from orchestrator.clients.llm import LLMGatewayClient
from orchestrator.clients.media import MediaGatewayClient
from orchestrator.config import Aspect, ImageSize
from shared_contracts.llm import GenerateOptions
from shared_contracts.media import ImageInfo

__all__ = ["IMAGE_STEP", "ImagePrompt", "VisionGeneratorAgent", "VisionOutput"]

MEDIA_TASK = "product_image"
# The key of `RunRequest.scenarios` for this step's Media Gateway call (`vision` is its LLM call).
IMAGE_STEP = "vision.image"


class ImagePrompt(AgentOutput):
    """What the LLM writes: a text-to-image prompt (English, for the image model), its negative, alt text."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=1_500)]
    negative_prompt: Annotated[str, msgspec.Meta(max_length=800)]
    alt_text: Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
    aspect: Aspect


class VisionOutput(AgentOutput):
    """The step's output: the prompt as written, the size rendered, and the stored images."""

    prompt: str
    negative_prompt: str
    alt_text: str
    aspect: Aspect
    width: int
    height: int
    job_id: str
    images: list[ImageInfo]


class VisionGeneratorAgent(Agent[ImagePrompt]):
    """Writes the main product image's prompt, then has the Media Gateway render it."""

    role = "vision"
    task = "image_prompt"
    output_type = ImagePrompt
    needs = ("brand", "brief", "strategist")

    def __init__(
        self,
        llm: LLMGatewayClient,
        media: MediaGatewayClient,
        *,
        image_sizes: Mapping[Aspect, ImageSize],
        workflow: str | None = None,
        prompts: PromptLibrary | None = None,
        options: GenerateOptions | None = None,
        quality: str | None = None,
    ) -> None:
        super().__init__(llm, prompts=prompts, options=options, quality=quality)
        self.media = media
        self.image_sizes = dict(image_sizes)
        self.workflow = workflow

    async def run(
        self, inputs: AgentInputs, *, request_id: str | None = None, deadline: float | None = None
    ) -> AgentResult[VisionOutput]:
        """Prompt, then render, both by `deadline`; either call's error propagates typed."""
        generated = await self.generate(inputs, request_id=request_id, deadline=deadline)
        written = generated.output
        size = self.image_sizes[written.aspect]
        job = await self.media.generate_image(
            role=self.role,
            task=MEDIA_TASK,
            prompt=written.prompt,
            negative_prompt=written.negative_prompt,
            width=size.width,
            height=size.height,
            workflow=self.workflow,
            metadata={"run_id": inputs.run_id} if inputs.run_id else None,
            request_id=request_id,
            deadline=deadline,
            scenario=inputs.scenarios.get(IMAGE_STEP),
        )
        output = VisionOutput(
            prompt=written.prompt,
            negative_prompt=written.negative_prompt,
            alt_text=written.alt_text,
            aspect=written.aspect,
            width=size.width,
            height=size.height,
            job_id=job.id,
            images=job.images,
        )
        return AgentResult(output=output, generated=generated, job=job)
