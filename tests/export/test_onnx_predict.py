"""The round trip: `eisen export` a demo checkpoint, `eisen predict model=...onnx` gives the torch masks."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from export_shared import eisen, trained_run

from conftest import QUIET, compose
from eisen_lightning.export import OnnxModel, PipelineSpec, SpecError, predict_onnx
from eisen_lightning.geometry import compare_files
from eisen_lightning.predict import predict


@pytest.fixture(scope="module")
def exported(tmp_path_factory, demo_data):
    """`eisen export ckpt_path=best.ckpt` as typed: <run>/exports/best.onnx and best.pipeline.json."""
    run_dir = trained_run(tmp_path_factory, demo_data)
    cwd = tmp_path_factory.mktemp("export_cli")
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    result = eisen(["export", f"ckpt_path={ckpt}", f"paths.data_dir={demo_data}", "hydra.run.dir=run"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    model = run_dir / "exports" / "best.onnx"
    assert f"exported {model}" in result.stdout and "parity: max abs diff" in result.stdout
    return ckpt, model


@pytest.fixture(scope="module")
def scans(tmp_path_factory, demo_data):
    folder = tmp_path_factory.mktemp("scans")
    for i in (32, 33, 34, 35):
        shutil.copy(demo_data / "Task00_Demo" / "imagesTs" / f"demo_{i}.nii.gz", folder)
    return folder


def test_onnx_predictions_are_the_torch_masks(exported, scans, demo_data, tmp_path):
    ckpt, model = exported
    spec = json.loads(model.with_name("best.pipeline.json").read_text())
    assert spec["export"]["source"]["checkpoint"] == str(ckpt) and spec["export"]["opset"] == 20
    args = ["predict", f"model={model}", f"input={scans}", "output=onnx", "hydra.run.dir=run", "threads=1"]
    result = eisen(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 prediction(s) written, 0 failure(s)" in result.stdout
    overrides = [f"ckpt_path={ckpt}", f"input={scans}", f"output={tmp_path / 'torch'}", *QUIET]
    cfg = compose([*overrides, f"paths.data_dir={demo_data}"], tmp_path / "torch_run", config_name="predict")
    assert not predict(cfg).failures
    for scan in sorted(scans.iterdir()):
        name = scan.name.replace(".nii.gz", "_seg.nii.gz")
        ours, theirs = nib.load(tmp_path / "onnx" / name), nib.load(tmp_path / "torch" / name)
        assert ours.shape == theirs.shape == nib.load(scan).shape
        assert np.array_equal(ours.affine, theirs.affine)
        assert compare_files(str(scan), str(tmp_path / "onnx" / name)) == []
        agreement = (np.asarray(ours.dataobj) == np.asarray(theirs.dataobj)).mean()
        assert agreement >= 0.999, (name, agreement)
        assert set(np.unique(np.asarray(ours.dataobj))) <= {0, 1, 2}


def test_a_model_alone_uses_the_spec_in_its_metadata(exported, tmp_path):
    _, model = exported
    shutil.copy(model, tmp_path / "model.onnx")
    embedded = OnnxModel(tmp_path / "model.onnx", threads=1).spec.to_dict()
    beside = PipelineSpec.load(model.with_name("best.pipeline.json")).to_dict()
    assert embedded["export"].pop("model_sha256") is None and beside["export"].pop("model_sha256")
    assert embedded == beside


def test_a_spec_of_another_export_is_refused(exported, tmp_path):
    _, model = exported
    shutil.copy(model, tmp_path / "model.onnx")
    document = json.loads(model.with_name("best.pipeline.json").read_text())
    document["export"]["model_sha256"] = "0" * 64
    (tmp_path / "model.pipeline.json").write_text(json.dumps(document))
    with pytest.raises(SpecError, match="belongs to another export than .*model.onnx"):
        OnnxModel(tmp_path / "model.onnx")


def test_inputs_onnx_cannot_take_are_named(exported, tmp_path):
    _, model = exported
    cfg = compose([f"model={model}", "input=split:val"], tmp_path, config_name="predict")
    with pytest.raises(ValueError, match="input=split:val: splits need the training data set"):
        predict_onnx(cfg)
    cfg.model = str(tmp_path / "none.onnx")
    cfg.input = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="none.onnx: no such file"):
        predict_onnx(cfg)
