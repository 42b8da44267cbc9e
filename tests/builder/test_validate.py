"""Validation pins errors to the node and field; experiments round-trip through the spec."""

import copy
import shutil

import pytest
from builder_specs import REPO, demo_spec, node
from builder_support import palette_fixture  # noqa: F401  (fixtures)
from omegaconf import OmegaConf

from eisen_lightning.builder import compose, spec, validate
from eisen_lightning.builder.catalog import build_palette


def _check(palette, body, config_dirs=(), allow=()):
    return validate.check(body, palette, list(config_dirs), list(allow), "CMD")


def _errors(result):
    return {(e["node"], e["field"]) for e in result.errors}


def test_demo_spec_validates_and_writes_only_differences(palette):
    body = demo_spec(palette, "mine")
    node(body, "net")["params"] = {"channels": [8, 16, 32, 64], "strides": [2, 2, 2], "dropout": 0.0}
    node(body, "trainer")["params"] = {"max_epochs": 3.0, "precision": "bf16-mixed"}
    result = _check(palette, body)
    assert result.ok, result.errors
    text = result.text
    assert text.startswith("# @package _global_\n") and "  - override /net: unet3d_small\n" in text
    assert "  - override /callbacks: [default]\n" in text
    written = OmegaConf.create(text)
    assert written.net == {"channels": [8, 16, 32, 64]}, "values equal to the defaults are not written"
    assert written.trainer.max_epochs == 3 and isinstance(written.trainer.max_epochs, int)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda b: node(b, "net")["params"].update(channels="abc"), ("net", "channels"), "must be a list"),
        (lambda b: node(b, "net")["params"].update(n_filterz=3), ("net", "n_filterz"), "unknown parameter"),
        (
            lambda b: node(b, "trainer")["params"].update(precision="17"),
            ("trainer", "precision"),
            "choose one of",
        ),
        (lambda b: node(b, "trainer")["params"].update(max_epochs=1.5), ("trainer", "max_epochs"), "integer"),
        (
            lambda b: node(b, "net")["params"].update(_target_="os.system"),
            ("net", "_target_"),
            "unknown parameter",
        ),
        (
            lambda b: node(b, "net")["params"].update(channels={"_target_": "os.system"}),
            ("net", "channels"),
            "cannot be set",
        ),
        (
            lambda b: node(b, "data")["params"].update(task="${oc.decode:x}"),
            ("data", "task"),
            "plain references",
        ),
        (lambda b: b["nodes"].append({"group": "net", "option": "vnet"}), ("net", ""), "only one net"),
        (lambda b: b["nodes"].append({"group": "net", "option": "nope"}), ("net", ""), "unknown component"),
        (lambda b: b["nodes"].remove(node(b, "data")), ("data", ""), "needs one data"),
        (
            lambda b: node(b, "loss").update(option="mse"),
            ("loss", ""),
            "for regression but the task is segmentation",
        ),
        (lambda b: node(b, "net").update(option="resnet18"), ("net", ""), "for classification"),
        (lambda b: b.update(metrics=[]), ("metric:dice", ""), "cannot be removed"),
        (lambda b: b.update(name="../evil"), ("experiment", "name"), "use a letter"),
        (lambda b: b["run"].update(seed="x"), ("run", "seed"), "integer"),
    ],
)
def test_errors_are_pinned_to_node_and_field(palette, change, where, message):
    body = demo_spec(palette, "mine")
    change(body)
    result = _check(palette, body)
    assert where in _errors(result), result.errors
    assert any(message in e["msg"] for e in result.errors), result.errors


def test_compose_and_resolve_errors_are_pinned(palette):
    body = demo_spec(palette, "mine")
    node(body, "net")["params"] = {"channels": "${net.nope}"}
    result = _check(palette, body)
    assert ("net", "channels") in _errors(result), result.errors


def test_targets_outside_the_palette_are_refused_unless_allowed(palette):
    result = validate.Result()
    validate.check_targets({"net": {"_target_": "os.system", "command": "ls"}}, palette, [], result)
    assert result.errors == [
        {"node": "net", "field": "_target_", "msg": "_target_ 'os.system' is not a component of the palette"}
    ]
    result = validate.Result()
    validate.check_targets(
        {"net": {"_target_": "monai.networks.nets.UNet", "n_filterz": 3}}, palette, [], result
    )
    assert _errors(result) == {("net", "n_filterz")}
    result = validate.Result()
    validate.check_targets({"x": {"_target_": "collections.OrderedDict"}}, palette, ["collections.*"], result)
    assert result.ok


def test_metrics_can_be_added_and_edited(palette):
    body = demo_spec(palette, "mine")
    body["metrics"] = [{"id": "dice", "params": {"include_background": True}}, {"id": "hd95", "params": {}}]
    result = _check(palette, body)
    assert result.ok, result.errors
    metrics = OmegaConf.create(result.text).task.metrics
    assert metrics.dice == {"include_background": True}
    assert metrics.hd95._target_ == "eisen_lightning.metrics.HausdorffDistance95"


def _composed(config_dirs, name):
    cfg = compose.compose(config_dirs, [f"+experiment={name}"])
    return OmegaConf.to_container(cfg, resolve=False)


@pytest.mark.parametrize("name", compose.groups_and_options([])["experiment"])
def test_every_experiment_imports_and_saves_to_an_equivalent_config(palette, name, tmp_path):
    body = spec.from_experiment(name, palette, [])
    body["name"] = f"{name}_copy"
    result = _check(palette, copy.deepcopy(body))
    assert result.ok, result.errors
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / f"{name}_copy.yaml").write_text(result.text)
    assert _composed([tmp_path], f"{name}_copy") == _composed([], name)
    again = spec.from_experiment(f"{name}_copy", palette, [tmp_path])
    assert again["nodes"] == body["nodes"] and again["metrics"] == body["metrics"]


def test_user_config_dir_options_join_the_palette(tmp_path):
    shutil.copytree(REPO / "conf" / "net", tmp_path / "net")
    (tmp_path / "net" / "unet3d.yaml").rename(tmp_path / "net" / "my_unet.yaml")
    palette = build_palette([tmp_path])
    assert palette.component("net", "my_unet")["target"] == "monai.networks.nets.UNet"


def _with_transforms(body, *options, params=None):
    body["nodes"] += [
        {"group": "transforms", "option": o, "params": (params or {}).get(o, {})} for o in options
    ]
    return body


@pytest.mark.parametrize(
    "order", [["rand_gaussian_noise", "rand_affine"], ["rand_affine", "rand_gaussian_noise"]]
)
def test_transforms_keep_their_order_from_spec_to_file_and_back(palette, order, tmp_path):
    params = {"rand_affine": {"rand_affine.prob": 0.5}}
    body = _with_transforms(demo_spec(palette, "augmented"), *order, params=params)
    result = _check(palette, body)
    assert result.ok, result.errors
    assert f"  - override /transforms: [{', '.join(order)}]\n" in result.text
    assert OmegaConf.create(result.text).transforms == {"rand_affine": {"prob": 0.5}}
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "augmented.yaml").write_text(result.text)
    composed = _composed([tmp_path], "augmented")
    assert list(composed["transforms"]) == order
    assert composed["transforms"]["rand_affine"]["prob"] == 0.5
    again = spec.from_experiment("augmented", palette, [tmp_path])
    transforms = [n for n in again["nodes"] if n["group"] == "transforms"]
    assert [n["option"] for n in transforms] == order
    assert next(n for n in transforms if n["option"] == "rand_affine")["params"]["rand_affine.prob"] == 0.5


def test_spatial_transforms_need_a_segmentation_task(palette):
    body = spec.from_experiment("ucsd_covid", palette, [])
    body["name"] = "covid_augmented"
    result = _check(palette, _with_transforms(copy.deepcopy(body), "rand_gaussian_noise", "rand_affine"))
    assert _errors(result) == {("transforms", "rand_affine")}, result.errors
    assert "spatial augmentation" in result.errors[0]["msg"] and "classification" in result.errors[0]["msg"]
    result = _check(palette, _with_transforms(copy.deepcopy(body), "rand_gaussian_noise", "rand_bias_field"))
    assert result.ok, result.errors
    assert "  - override /transforms: [rand_gaussian_noise, rand_bias_field]\n" in result.text
    segmentation = _with_transforms(demo_spec(palette, "seg"), "rand_elastic_3d", "rand_affine")
    assert _check(palette, segmentation).ok
