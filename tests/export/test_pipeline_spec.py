"""The pipeline spec: versioned JSON, clear refusals, and the same MONAI preprocessing rebuilt from it."""

import json

import monai.transforms as mt
import numpy as np
import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from eisen_lightning.data import DemoDataModule
from eisen_lightning.export.describe import describe_pipeline
from eisen_lightning.export.spec import PipelineSpec, SpecError, build_transforms, example_spec, spec_path

INFERER = SlidingWindowInferer([32, 32, 32], sw_batch_size=4, overlap=0.5, mode="gaussian")


def test_spec_round_trips_through_json(tmp_path):
    spec = PipelineSpec.from_dict(example_spec())
    path = spec.save(tmp_path / "model.pipeline.json")
    document = json.loads(path.read_text())
    assert document["format"] == "eisen-lightning/pipeline" and document["version"] == 1
    assert PipelineSpec.load(path) == spec
    assert spec_path(tmp_path / "best.onnx") == tmp_path / "best.pipeline.json"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"activation": "sigmoid"}, "activation must be one of"),
        ({"label_names": ["background"]}, "at least 2 classes"),
        ({"intensity": [{"kind": "histogram"}]}, "intensity steps must have kind"),
        ({"inference": {"patch_size": [32, 32]}}, "must have spatial_dims=3 sizes"),
    ],
)
def test_bad_specs_are_refused_with_the_key_named(change, message):
    with pytest.raises(SpecError, match=message):
        PipelineSpec.from_dict({**example_spec(), **change}, source="m.pipeline.json")


def test_missing_keys_are_listed(tmp_path):
    document = example_spec()
    del document["spacing"], document["label_names"]
    with pytest.raises(SpecError, match=r"missing key\(s\) \['spacing', 'label_names'\]"):
        PipelineSpec.from_dict(document)
    (tmp_path / "broken.pipeline.json").write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        PipelineSpec.load(tmp_path / "broken.pipeline.json")
    with pytest.raises(SpecError, match="no pipeline spec"):
        PipelineSpec.load(tmp_path / "absent.pipeline.json")


@pytest.mark.parametrize(
    ("normalization", "spacing"), [("zscore", [2.0, 2.0, 2.0]), ("ct", [1.5, 2.5, 3.0]), ("none", None)]
)
def test_rebuilt_preprocessing_is_the_datamodules(demo_data, normalization, spacing):
    datamodule = DemoDataModule(
        str(demo_data), patch_size=[32, 32, 32], spacing=spacing, normalization=normalization
    )
    datamodule.prepare_data()
    original = datamodule.predict_transforms()
    spec = describe_pipeline(original, INFERER, ["background", "organ", "lesion"], 1, 3)
    spec = PipelineSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert spec.spacing == spacing and spec.orientation == "RAS"
    assert spec.inference["patch_size"] == [32, 32, 32] and spec.inference["blend_mode"] == "gaussian"
    image = {"image": datamodule.labelled_cases()[0]["image"]}
    expected = mt.Compose(original)(dict(image))["image"]
    rebuilt = mt.Compose(build_transforms(spec))(dict(image))["image"]
    assert rebuilt.shape == expected.shape
    assert torch.equal(rebuilt.as_tensor(), expected.as_tensor())
    assert np.allclose(np.asarray(rebuilt.affine), np.asarray(expected.affine))


def test_what_the_spec_cannot_say_is_refused_at_export():
    steps = [mt.LoadImaged("image"), mt.GaussianSmoothd("image", sigma=1.0)]
    with pytest.raises(SpecError, match="cannot describe the prediction transform GaussianSmoothd"):
        describe_pipeline(steps, INFERER, ["a", "b"], 1, 3)
    with pytest.raises(SpecError, match="task.inferer is a SimpleInferer"):
        describe_pipeline([mt.LoadImaged("image")], SimpleInferer(), ["a", "b"], 1, 3)
    whole = describe_pipeline([mt.LoadImaged("image")], None, ["a", "b"], 1, 3)
    assert whole.inference == {"patch_size": None}
