"""Bundle intake: ``load_bundle`` refuses tampered, unsafe or malformed bundles by name."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from exporttools import TOY_ID, train_tiny
from gymnasium import spaces
from onnx import TensorProto, helper

from robocell.agents.bundle import load_bundle
from robocell.agents.bundle.intake import MAX_ONNX_BYTES
from robocell.agents.bundle.manifest import metadata_props
from robocell.agents.export import export_model
from robocell.errors import RobocellError, VerificationError
from robocell.util import sha256_bytes


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = train_tiny(TOY_ID, "ppo", steps=64)
    bundle = tmp_path_factory.mktemp("intake") / "bundle"
    export_model(source, bundle, closed_loop_episodes=0)
    return bundle


@pytest.fixture
def bundle(original: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original, tmp_path / "bundle"))


def _rewrite(
    bundle: Path,
    edit_model: Callable[[onnx.ModelProto], None] | None = None,
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Edit a bundle the way a careful forger would: metadata mirrored, digest recomputed."""
    model = onnx.load_from_string((bundle / "policy.onnx").read_bytes())
    manifest = json.loads((bundle / "manifest.json").read_text())
    if edit_manifest is not None:
        edit_manifest(manifest)
        del model.metadata_props[:]
        for key, value in metadata_props(manifest).items():
            model.metadata_props.add(key=key, value=value)
    if edit_model is not None:
        edit_model(model)
    data = model.SerializeToString()
    (bundle / "policy.onnx").write_bytes(data)
    manifest["onnx_sha256"] = sha256_bytes(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _edit_json(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_an_exported_bundle_loads_and_acts(bundle: Path) -> None:
    policy = load_bundle(bundle)
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    assert action.shape == (2,) and action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)
    batch = {key: np.stack([value, value]) for key, value in obs.items()}
    assert np.array_equal(policy.act_batch(batch), np.stack([action, action]))
    env.close()


def test_a_changed_onnx_byte_fails_the_digest(bundle: Path) -> None:
    data = bytearray((bundle / "policy.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=r"policy.onnx: sha256 \w+ does not match"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["env_kwargs"].update(discrete=True),
        lambda m: m.update(control_period_s=0.05),
        lambda m: m["action"]["fields"][0].update(high=2.0),
        lambda m: m["action"]["fields"][1].update(scale=5.0),
        lambda m: m["observation"][1]["fields"][0].update(unit="mm"),
        lambda m: m.update(run_id="someone-else"),
        lambda m: m["parity"].update(max_abs_diff=0.0),
    ],
    ids=["env-kwargs", "period", "action-bound", "scale", "unit", "run-id", "parity"],
)
def test_an_edited_manifest_no_longer_matches_the_graph(bundle: Path, edit: Callable) -> None:
    _edit_json(bundle, edit)
    with pytest.raises(VerificationError, match="differs from the copy in the ONNX metadata"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(extra=1), "extra: unknown key"),
        (lambda m: m.pop("env_id"), "env_id: required key is missing"),
        (lambda m: m.update(onnx_sha256="ABC"), "onnx_sha256: must be 64 lowercase hex"),
        (lambda m: m.update(schema_version="robocell-bundle/0"), "schema_version: must be one"),
        (lambda m: m.update(onnx_opset=13), "onnx_opset: must be >= 17"),
        (lambda m: m["action"].update(shape="2"), "action.shape: expected a list"),
        (lambda m: m["observation"][1]["fields"].pop(), r"observation\[1\].fields: needs 3"),
        (lambda m: m["observation"][0].update(name="image"), r"observation\[0\].name: must be"),
    ],
    ids=["unknown", "missing", "digest-format", "schema", "opset", "type", "fields", "name"],
)
def test_a_malformed_manifest_is_refused_naming_the_field(
    bundle: Path, edit: Callable, message: str
) -> None:
    _edit_json(bundle, edit)
    with pytest.raises(VerificationError, match=f"manifest.json: {message}"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda text: text[:-10],
        lambda text: re.sub(r'"observations": \d+', '"observations": NaN', text),
    ],
    ids=["truncated", "nan"],
)
def test_a_manifest_that_is_not_json_is_refused(bundle: Path, corrupt: Callable) -> None:
    text = (bundle / "manifest.json").read_text()
    (bundle / "manifest.json").write_text(corrupt(text))
    with pytest.raises(VerificationError, match="not valid JSON"):
        load_bundle(bundle)


def _custom_op(model: onnx.ModelProto) -> None:
    model.graph.node.append(helper.make_node("Exfiltrate", ["action"], ["x"], domain="com.evil"))


def _custom_opset(model: onnx.ModelProto) -> None:
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))


def _custom_op_in_subgraph(model: onnx.ModelProto) -> None:
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    branch = helper.make_graph(
        [helper.make_node("Run", [], ["y"], domain="com.evil")], "branch", [], [out]
    )
    model.graph.initializer.append(helper.make_tensor("flag", TensorProto.BOOL, [], [True]))
    model.graph.node.append(
        helper.make_node("If", ["flag"], ["z"], then_branch=branch, else_branch=branch)
    )


def _local_function(model: onnx.ModelProto) -> None:
    node = helper.make_node("Identity", ["a"], ["b"])
    model.functions.append(helper.make_function("", "Twin", ["a"], ["b"], [node], []))


def _external_initializer(model: onnx.ModelProto) -> None:
    tensor = model.graph.initializer[0]
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../../etc/shadow")


def _external_constant(model: onnx.ModelProto) -> None:
    tensor = helper.make_tensor("c", TensorProto.FLOAT, [1], [0.0])
    tensor.external_data.add(key="location", value="/etc/shadow")
    tensor.data_location = TensorProto.EXTERNAL
    model.graph.node.append(helper.make_node("Constant", [], ["c_out"], value=tensor))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_custom_op, "uses op domain 'com.evil'"),
        (_custom_opset, "imports opset domain 'ai.onnx.ml'"),
        (_custom_op_in_subgraph, "uses op domain 'com.evil'"),
        (_local_function, "model-local functions"),
        (_external_initializer, "uses external data"),
        (_external_constant, "uses external data"),
    ],
    ids=["custom-op", "custom-opset", "subgraph-op", "function", "external-init", "external-attr"],
)
def test_unsafe_graphs_are_refused(bundle: Path, edit: Callable, message: str) -> None:
    _rewrite(bundle, edit_model=edit)
    with pytest.raises(VerificationError, match=message):
        load_bundle(bundle)


def test_graph_shapes_must_match_the_manifest(bundle: Path) -> None:
    def wider_state(manifest: dict[str, Any]) -> None:
        state = manifest["observation"][1]
        state["shape"] = [4]
        state["fields"].append({"name": "extra", "unit": "", "description": ""})

    _rewrite(bundle, edit_manifest=wider_state)
    with pytest.raises(VerificationError, match=r"graph inputs .* do not match the manifest"):
        load_bundle(bundle)


def test_the_onnx_size_is_capped_before_reading(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="over the cap of 1000 bytes"):
        load_bundle(bundle, max_onnx_bytes=1000)
    big = Path(shutil.copytree(bundle, tmp_path / "big"))
    with open(big / "policy.onnx", "r+b") as handle:  # sparse: no disk space used
        handle.truncate(MAX_ONNX_BYTES + 1)
    with pytest.raises(VerificationError, match=f"over the cap of {MAX_ONNX_BYTES} bytes"):
        load_bundle(big)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("name", ["model.zip", "policy.pkl", "policy.pt", "weights.pth"])
def test_pickles_and_model_files_are_refused_unopened(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "code_ran"
    (tmp_path / name).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(VerificationError, match="is not a bundle"):
        load_bundle(tmp_path / name)
    assert not marker.exists()


def test_a_disguised_pickle_is_not_an_onnx_model(bundle: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    payload = pickle.dumps(_Payload(marker))
    (bundle / "policy.onnx").write_bytes(payload)
    _edit_json(bundle, lambda m: m.update(onnx_sha256=sha256_bytes(payload)))
    with pytest.raises(VerificationError, match=r"not an ONNX model|invalid ONNX graph"):
        load_bundle(bundle)
    assert not marker.exists()


def test_only_a_directory_of_regular_files_is_a_bundle(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="no such bundle directory"):
        load_bundle(tmp_path / "missing")
    with pytest.raises(VerificationError, match="not a bundle directory"):
        load_bundle(bundle / "manifest.json")
    os.replace(bundle / "policy.onnx", tmp_path / "elsewhere.onnx")
    (bundle / "policy.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(VerificationError, match="not a regular file"):
        load_bundle(bundle)


def test_act_checks_the_observation(bundle: Path) -> None:
    policy = load_bundle(bundle)
    with pytest.raises(RobocellError, match="Dict observation with key 'image'"):
        policy.act(np.zeros(3, np.float32))
    obs = {"image": np.zeros((3, 36, 36), np.uint8), "state": np.zeros(4, np.float32)}
    with pytest.raises(RobocellError, match=r"obs.state: expected shape \(3,\)"):
        policy.act(obs)
    other = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (36, 36, 3), np.uint8),
            "state": spaces.Box(-1, 1, (3,), np.float32),
        }
    )
    with pytest.raises(VerificationError, match="takes image as"):
        policy.check_observation_space(other)
    policy.check_action_space(spaces.Box(-1, 1, (2,), np.float32))
    for wrong in (spaces.Box(-2, 2, (2,), np.float32), spaces.Box(-1, 1, (3,)), spaces.Discrete(2)):
        with pytest.raises(VerificationError, match="the bundle acts in box"):
            policy.check_action_space(wrong)
