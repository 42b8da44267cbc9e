"""The palette is read from the conf/ tree and the targets' signatures, never from a hand-kept list."""

import pytest
from builder_support import palette_fixture  # noqa: F401  (fixtures)

from eisen_lightning.builder import compose
from eisen_lightning.builder.catalog import GROUP_META, TASK_FITS
from eisen_lightning.builder.fields import signature_of


def test_palette_groups_match_hydra_in_both_directions(palette):
    with compose.hydra_context([]) as loader:
        groups = set(loader.list_groups("")) - set(compose.HIDDEN_GROUPS)
        options = {g: sorted(loader.get_group_options(g)) for g in groups}
    assert {g["name"] for g in palette.groups} == groups
    assert set(GROUP_META) <= groups, (
        f"GROUP_META names groups that no longer exist: {set(GROUP_META) - groups}"
    )
    for group in palette.groups:
        assert [c["option"] for c in group["components"]] == options[group["name"]]


def test_required_groups_and_defaults_come_from_train_yaml(palette):
    defaults = {g["name"]: g["default"] for g in palette.groups}
    assert defaults["data"] == ["demo"] and defaults["debug"] == []
    assert {g["name"] for g in palette.groups if g["required"]} >= {
        "data",
        "net",
        "loss",
        "task",
        "optimizer",
    }
    assert next(g for g in palette.groups if g["name"] == "callbacks")["multiple"]


def test_every_yaml_key_is_an_argument_of_its_target(palette):
    """The drift Eisen's builder had: a parameter in the catalogue that the code does not take."""
    problems = []
    for group in palette.groups:
        for component in group["components"]:
            for field in component["fields"]:
                sig = signature_of(field["target"]) if field["target"] else None
                param = field["name"].rpartition(".")[2]
                if sig is not None and not sig[1] and param not in sig[0]:
                    problems.append(f"{component['id']}: {field['name']} is no argument of {field['target']}")
    assert not problems, "\n".join(problems)


def test_forms_are_typed_from_signatures_and_docstrings(palette):
    trainer = {f["name"]: f for f in palette.component("trainer", "default")["fields"]}
    assert trainer["precision"]["kind"] == "enum" and "bf16-mixed" in trainer["precision"]["options"]
    assert trainer["max_epochs"]["kind"] == "int" and trainer["fast_dev_run"]["default"] is False
    assert trainer["strategy"]["more"], "signature parameters missing from the YAML are offered too"
    net = {f["name"]: f for f in palette.component("net", "unet3d")["fields"]}
    assert net["channels"]["kind"] == "list" and net["dropout"]["kind"] == "float"
    assert net["in_channels"]["linked"] and "input channels" in net["in_channels"]["doc"]


def test_tags_and_metrics(palette):
    assert palette.component("loss", "ce")["tags"] == {"input": "classification"}
    assert palette.component("task", "regression")["kind"] in TASK_FITS
    assert palette.component("task", "segmentation")["metrics"] == ["dice"]
    dice = palette.metric("dice")
    assert dice["target"] == "torchmetrics.segmentation.DiceScore"
    assert {"torchmetrics.segmentation.DiceScore", "monai.networks.nets.UNet"} <= palette.targets


@pytest.mark.parametrize("name", ["summaries", "onnx_export"])
def test_callbacks_are_offered(palette, name):
    component = palette.component("callbacks", name)
    assert component is not None and component["fields"]


def test_transforms_are_offered_in_order_with_their_kind(palette):
    group = palette.group("transforms")
    assert group["title"] == "Transforms (training augmentations, in order)"
    assert group["multiple"] and not group["required"] and group["default"] == []
    affine = palette.component("transforms", "rand_affine")
    assert affine["tags"] == {"augments": "spatial", "dims": "any"}
    assert palette.component("transforms", "rand_elastic_3d")["tags"]["dims"] == "3d"
    assert palette.component("transforms", "rand_gaussian_noise")["tags"]["augments"] == "intensity"
    fields = {f["name"]: f for f in affine["fields"]}
    assert fields["rand_affine.prob"]["default"] == 0.3 and "rand_affine.mode" in fields
    assert not affine["doc"].startswith("augments") and "RandAffined" in affine["doc"]
    assert "monai.transforms.RandAffined" in palette.targets
    assert palette.to_json()["transform_fits"]["classification"] == ["intensity"]
