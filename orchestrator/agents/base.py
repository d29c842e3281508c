"""What every agent shares: its identity (role, task), its typed output, its prompt files, one gateway call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from orchestrator.clients.llm import Generated, LLMGatewayClient, generate_request, response_schema
from shared_contracts.flows import Product
from shared_contracts.llm import GenerateOptions, GenerateRequest, Message
from shared_contracts.media import Job

__all__ = [
    "Agent",
    "AgentInputs",
    "AgentOutput",
    "AgentResult",
    "PromptLibrary",
    "language_name",
]

OutT = TypeVar("OutT", bound="AgentOutput")
ResultT = TypeVar("ResultT", bound="AgentOutput")

_LANGUAGES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese", "de": "German", "fr": "French"}
_pretty = msgspec.json.Encoder()


class AgentOutput(msgspec.Struct, kw_only=True):
    """Base of agent outputs: decoded from the gateway's `json`, tolerant of extra keys a model may add."""


def language_name(code: str) -> str:
    """A human name for a language tag, for prompts: `ko` → `Korean (ko)`."""
    name = _LANGUAGES.get(code.split("-", 1)[0].lower())
    return f"{name} ({code})" if name else code


def _json(value: Any) -> str:
    return msgspec.json.format(_pretty.encode(value), indent=2).decode("utf-8")


class PromptLibrary:
    """Prompt templates kept as files in a package (default `orchestrator.prompts`), read once and cached."""

    def __init__(self, package: str = "orchestrator.prompts") -> None:
        self.package = package
        self._cache: dict[str, Template] = {}

    def template(self, name: str) -> Template:
        """The template `name` (e.g. `brand.system.md`); a missing file raises FileNotFoundError naming it."""
        if name not in self._cache:
            text = resources.files(self.package).joinpath(name).read_text(encoding="utf-8")
            self._cache[name] = Template(text)
        return self._cache[name]

    def render(self, name: str, values: Mapping[str, str]) -> str:
        """Fill `$names`; an unknown placeholder in the file is a KeyError, not a silent blank."""
        return self.template(name).substitute(values).strip()


@dataclass(frozen=True, slots=True)
class AgentInputs:
    """What a step gets: the product, the outputs of earlier steps by role, and the run it belongs to."""

    product: Product
    outputs: Mapping[str, AgentOutput] = field(default_factory=dict)
    run_id: str = ""
    # The run's mock-mode failure scenarios by step (see RunRequest.scenarios); each agent sends its own.
    scenarios: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentResult(Generic[ResultT]):
    """A step's validated output, the LLM exchange behind it, and the rendered job when there is one."""

    output: ResultT
    generated: Generated[Any]
    job: Job | None = None


class Agent(Generic[OutT]):
    """One agent: a role and task, a typed output sent as `response_schema`, templates `<role>.system.md`
    and `<role>.user.md` filled with the product and the earlier outputs it `needs`."""

    role: ClassVar[str]
    task: ClassVar[str]
    output_type: ClassVar[type[AgentOutput]]
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        llm: LLMGatewayClient,
        *,
        prompts: PromptLibrary | None = None,
        options: GenerateOptions | None = None,
        quality: str | None = None,
    ) -> None:
        self.llm = llm
        self.prompts = prompts or PromptLibrary()
        self.options = options
        self.quality = quality

    def _earlier(self, inputs: AgentInputs) -> dict[str, AgentOutput]:
        missing = [role for role in self.needs if role not in inputs.outputs]
        if missing:
            raise ValueError(f"{self.role} agent needs the output of {', '.join(missing)} first")
        return {role: inputs.outputs[role] for role in self.needs}

    def payload(self, inputs: AgentInputs) -> dict[str, Any]:
        """The structured context sent with the request: product plus the earlier outputs used."""
        earlier = self._earlier(inputs)
        body: dict[str, Any] = {"product": msgspec.to_builtins(inputs.product), "language": inputs.product.language}
        body.update({role: msgspec.to_builtins(output) for role, output in earlier.items()})
        return body

    def messages(self, inputs: AgentInputs) -> list[Message]:
        """System and user turns rendered from this agent's template files."""
        earlier = self._earlier(inputs)
        values = {
            "product": _json(inputs.product),
            "product_name": inputs.product.name,
            "language": language_name(inputs.product.language),
            **{role: _json(output) for role, output in earlier.items()},
        }
        return [
            Message(role="system", content=self.prompts.render(f"{self.role}.system.md", values)),
            Message(role="user", content=self.prompts.render(f"{self.role}.user.md", values)),
        ]

    def schema(self, inputs: AgentInputs) -> dict[str, Any]:
        """The `response_schema` sent: `output_type`'s; agents narrow it to what earlier steps decided."""
        return response_schema(self.output_type)

    def request(self, inputs: AgentInputs) -> GenerateRequest:
        """The LLM Gateway request this agent sends for `inputs`."""
        return generate_request(
            role=self.role,
            task=self.task,
            messages=self.messages(inputs),
            output=self.schema(inputs),
            payload=self.payload(inputs),
            options=self.options,
            quality=self.quality,
            metadata={"run_id": inputs.run_id} if inputs.run_id else None,
        )

    async def generate(
        self, inputs: AgentInputs, *, request_id: str | None = None, deadline: float | None = None
    ) -> Generated[OutT]:
        """One LLM Gateway call for this agent, ending by `deadline`; the answer is validated into `output_type`."""
        generated: Generated[OutT] = await self.llm.send(
            self.request(inputs), output=self.output_type, request_id=request_id, deadline=deadline,
            scenario=inputs.scenarios.get(self.role),
        )
        return generated

    async def run(
        self, inputs: AgentInputs, *, request_id: str | None = None, deadline: float | None = None
    ) -> AgentResult[Any]:
        """Run the step by `deadline` (a `loop.time()`, the run's); agents that do more than one call override this."""
        generated = await self.generate(inputs, request_id=request_id, deadline=deadline)
        return AgentResult(output=generated.output, generated=generated)
