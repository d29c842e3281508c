"""Workflow loading, start-up validation of the parameter mapping, injection, and config cross-checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from media_gateway.app import create_app
from media_gateway.config import MediaConfig, ParamSpec, WorkflowSpec, load_media_config
from media_gateway.workflows import load_workflows
from service_common.config import ConfigError
from shared_contracts.errors import InvalidRequest
from shared_contracts.media import ImageRequest

from .conftest import CONFIG_PATH, REPO

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "t", "images": ["1", 0]}},
}


def _spec(params: dict[str, Any], **extra: Any) -> WorkflowSpec:
    return msgspec.convert({"provider": "comfyui", "file": "g.json", "params": params, **extra}, WorkflowSpec)


def _write(tmp_path: Path, graph: Any = GRAPH) -> Path:
    (tmp_path / "g.json").write_text(json.dumps(graph))
    return tmp_path


def test_shipped_workflows_validate_against_their_graphs() -> None:
    config = load_media_config(CONFIG_PATH, {})
    flows = load_workflows(config.workflows, base_dir=REPO / "config")
    assert set(flows) >= {"product_shot_v1", "smoke_v1"}
    smoke = flows["smoke_v1"].graph
    assert smoke is not None
    # Model-free (core nodes only) and seeded: the seed reaches ImageAddNoise.
    assert {n["class_type"] for n in smoke.values()} == {"EmptyImage", "ImageAddNoise", "ImageBlur", "SaveImage"}
    seed = config.workflows["smoke_v1"].params["seed"]
    assert smoke[str(seed.node)]["class_type"] == "ImageAddNoise" and seed.input == "seed"
    product = flows["product_shot_v1"].graph
    assert product is not None
    assert {n["class_type"] for n in product.values()} == {
        "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage"
    }


def test_missing_node_stops_start_up_naming_it(tmp_path: Path) -> None:
    specs = {"w": _spec({"width": {"node": "7", "input": "width"}})}
    with pytest.raises(ConfigError, match=r"workflows\.w\.params\.width\.node: node '7' is not in the graph"):
        load_workflows(specs, base_dir=_write(tmp_path))


def test_missing_input_stops_start_up_naming_it(tmp_path: Path) -> None:
    specs = {"w": _spec({"width": {"node": "1", "input": "wdth"}})}
    expected = r"workflows\.w\.params\.width\.input: node '1' \(EmptyImage\) has no input 'wdth'"
    with pytest.raises(ConfigError, match=expected):
        load_workflows(specs, base_dir=_write(tmp_path))


@pytest.mark.parametrize("content", ["not json", json.dumps([1, 2]), json.dumps({"1": {"inputs": {}}})])
def test_unreadable_graph_files_stop_start_up(tmp_path: Path, content: str) -> None:
    (tmp_path / "g.json").write_text(content)
    with pytest.raises(ConfigError, match=r"workflows\.w\.file"):
        load_workflows({"w": _spec({})}, base_dir=tmp_path)


def test_unknown_output_node_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"workflows\.w\.outputs\[0\]"):
        load_workflows({"w": _spec({}, outputs=["9"])}, base_dir=_write(tmp_path))


def test_injection_writes_mapped_inputs_into_a_copy(tmp_path: Path) -> None:
    specs = {"w": _spec({
        "width": {"node": "1", "input": "width"},
        "height": {"node": "1", "input": "height"},
        "count": {"node": "1", "input": "batch_size"},
        "color": {"node": "1", "input": "color", "default": 255, "type": "int", "min": 0, "max": 16777215},
    })}
    flow = load_workflows(specs, base_dir=_write(tmp_path))["w"]
    request = ImageRequest(role="r", task="t", prompt="p", width=64, height=128, count=3, params={"color": 7})
    graph = flow.inject(flow.resolve(request, seed=1))
    assert graph is not None
    assert graph["1"]["inputs"] == {"width": 64, "height": 128, "batch_size": 3, "color": 7}
    assert flow.graph is not None and flow.graph["1"]["inputs"]["width"] == 512  # template untouched
    default = flow.inject(flow.resolve(ImageRequest(role="r", task="t", prompt="p"), seed=1))
    assert default is not None and default["1"]["inputs"]["color"] == 255


def test_extra_params_are_checked_against_the_mapping(tmp_path: Path) -> None:
    color = {"node": "1", "input": "color", "default": 1, "type": "int", "min": 0, "max": 16777215}
    flow = load_workflows({"w": _spec({"color": color})}, base_dir=_write(tmp_path))["w"]
    for params in ({"colour": 1}, {"color": "red"}, {"width": 64}):
        with pytest.raises(InvalidRequest):
            flow.resolve(ImageRequest(role="r", task="t", prompt="p", params=params), seed=1)


def _config(tmp_path: Path, **changes: Any) -> MediaConfig:
    config = load_media_config(CONFIG_PATH, {"MEDIA_STORE_DIR": str(tmp_path)})
    return msgspec.structs.replace(config, **changes)


def test_create_app_refuses_a_broken_mapping(tmp_path: Path) -> None:
    config = _config(tmp_path)
    broken = dict(config.workflows)
    wrong = msgspec.convert({"node": "1", "input": "size"}, ParamSpec)
    broken["smoke_v1"] = msgspec.structs.replace(broken["smoke_v1"], params={"width": wrong})
    with pytest.raises(ConfigError, match=r"workflows\.smoke_v1\.params\.width\.input"):
        create_app(msgspec.structs.replace(config, workflows=broken))


def test_create_app_refuses_an_unknown_provider_class(tmp_path: Path) -> None:
    config = _config(tmp_path)
    providers = {**config.providers, "comfyui": {"class": "media_gateway.providers.nope:Nope"}}
    with pytest.raises(ConfigError, match=r"providers\.comfyui\.class"):
        create_app(msgspec.structs.replace(config, providers=providers))


def test_create_app_refuses_an_unknown_provider_setting(tmp_path: Path) -> None:
    config = _config(tmp_path)
    providers = {**config.providers, "comfyui": {**config.providers["comfyui"], "max_inflight": 3}}
    with pytest.raises(ConfigError, match=r"providers\.comfyui"):
        create_app(msgspec.structs.replace(config, providers=providers))


@pytest.mark.parametrize(
    ("yaml_tail", "message"),
    [
        ("routing:\n  - {workflow: ghost}\n", r"routing\[0\]\.workflow"),
        ("routing:\n  - {role: vision, workflow: smoke}\n", r"routing: a default rule"),
    ],
)
def test_references_are_cross_checked(tmp_path: Path, yaml_tail: str, message: str) -> None:
    text = (
        "providers:\n  mock: {class: 'media_gateway.providers.mock:MockImageProvider'}\n"
        "workflows:\n  smoke: {provider: mock}\n" + yaml_tail
    )
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_media_config(path, {})


def test_env_selects_mode_and_comfyui_url() -> None:
    config = load_media_config(CONFIG_PATH, {"GENERATOR_MODE": "live", "COMFYUI_BASE_URL": "http://gpu:8188"})
    assert config.mode == "live"
    assert config.providers["comfyui"]["base_url"] == "http://gpu:8188"
    assert load_media_config(CONFIG_PATH, {}).mode == "mock"


def _shipped(name: str) -> Any:
    config = load_media_config(CONFIG_PATH, {})
    return load_workflows(config.workflows, base_dir=REPO / "config")[name]


@pytest.mark.parametrize(
    ("params", "field", "detail"),
    [
        ({"checkpoint": "../../../../etc/passwd"}, "params.checkpoint", {"type": "filename"}),
        ({"checkpoint": "sub/dir/model.safetensors"}, "params.checkpoint", {"type": "filename"}),
        ({"checkpoint": "..\\model.safetensors"}, "params.checkpoint", {"type": "filename"}),
        ({"checkpoint": ".hidden.safetensors"}, "params.checkpoint", {"type": "filename"}),
        ({"checkpoint": "model.exe"}, "params.checkpoint", {"pattern": r".+\.(safetensors|ckpt)"}),
        ({"steps": 10000}, "params.steps", {"max": 150}),
        ({"steps": 0}, "params.steps", {"min": 1}),
        ({"steps": 20.5}, "params.steps", {"type": "int"}),
        ({"steps": True}, "params.steps", {"type": "int"}),
        ({"cfg": "7"}, "params.cfg", {"type": "float"}),
        ({"sampler_name": "rm -rf"}, "params.sampler_name", {}),
    ],
)
def test_a_parameter_outside_its_declared_rule_is_refused_naming_it(
    params: dict[str, Any], field: str, detail: dict[str, Any]
) -> None:
    flow = _shipped("product_shot_v1")
    with pytest.raises(InvalidRequest) as caught:
        flow.resolve(ImageRequest(role="r", task="t", prompt="p", params=params), seed=1)
    assert caught.value.status == 400 and caught.value.message.startswith(field + ": ")
    assert caught.value.details["param"] == field.split(".")[-1]
    assert detail.items() <= caught.value.details.items()


def test_values_inside_the_rules_reach_the_graph() -> None:
    flow = _shipped("product_shot_v1")
    params = {"checkpoint": "juggernaut_v9 (fp16).safetensors", "steps": 150, "cfg": 5, "scheduler": "karras"}
    graph = flow.inject(flow.resolve(ImageRequest(role="r", task="t", prompt="p", params=params), seed=1))
    assert graph is not None
    assert graph["4"]["inputs"]["ckpt_name"] == "juggernaut_v9 (fp16).safetensors"
    assert (graph["3"]["inputs"]["steps"], graph["3"]["inputs"]["cfg"], graph["3"]["inputs"]["scheduler"]) == (
        150, 5, "karras"
    )


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ({"node": "1", "input": "color", "default": 1}, r"params\.color\.type: required"),
        ({"node": "1", "input": "color", "default": 1, "type": "int", "min": 0}, r"needs both 'min' and 'max'"),
        ({"node": "1", "input": "color", "default": 9, "type": "int", "min": 0, "max": 5}, r"default: 9 is above"),
        ({"node": "1", "input": "color", "default": "x", "type": "string"}, r"needs 'choices' or 'max_length'"),
        ({"node": "1", "input": "color", "type": "int", "min": 0, "max": 5}, r"color\.default: required"),
        ({"node": "1", "input": "color", "default": "a", "type": "filename", "pattern": "("}, r"color\.pattern"),
        ({"node": "1", "input": "color", "default": 1, "type": "int", "min": 0, "max": 5, "choices": [1, "x"]},
         r"color\.choices\[1\]"),
    ],
)
def test_a_parameter_without_a_sound_rule_stops_start_up(tmp_path: Path, param: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_workflows({"w": _spec({"color": param})}, base_dir=_write(tmp_path))


def test_the_workflow_list_shows_each_parameters_rule() -> None:
    info = _shipped("product_shot_v1").info()
    steps = next(p for p in info.params if p.name == "steps")
    assert (steps.type, steps.min, steps.max, steps.default) == ("int", 1, 150, 25)
    checkpoint = next(p for p in info.params if p.name == "checkpoint")
    assert checkpoint.type == "filename"
    width = next(p for p in info.params if p.name == "width")
    assert width.type == "int"
