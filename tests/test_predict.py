"""`eisen predict`: native-space label maps with exactly the input's geometry, batch failures reported."""

import json
import shutil
import subprocess
import sys
from functools import partial

import nibabel as nib
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from monai.losses import DiceLoss
from torch import nn

from conftest import QUIET, compose, sitk_image, write_dicom_series
from eisen_lightning import run
from eisen_lightning.predict import CasePredictor
from eisen_lightning.tasks import SegmentationTask


class IntensityIsLabel(nn.Module):
    """A 'net' whose logits make the argmax the intensity rounded to the nearest class."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.register_buffer("classes", torch.arange(num_classes, dtype=torch.float32).view(1, -1, 1, 1, 1))

    def forward(self, x):
        return -((x - self.classes) ** 2)


@pytest.fixture
def label_images(tmp_path, demo_data):
    """Demo cases whose image is their own label map, with the demo's oblique, flipped affines."""
    cases = []
    for i in range(2):
        label = nib.load(demo_data / "Task00_Demo" / "labelsTr" / f"demo_{i}.nii.gz")
        path = tmp_path / "inputs" / f"case{i}.nii.gz"
        path.parent.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(np.asarray(label.dataobj).astype(np.float32), label.affine), path)
        cases.append({"case_id": f"case{i}", "image": str(path), "truth": np.asarray(label.dataobj)})
    return cases


def _predictor(tmp_path, demo_data, *overrides):
    cfg = compose([f"paths.data_dir={demo_data}", "data.normalization=none", *overrides], tmp_path)
    datamodule = instantiate(cfg.data)
    task = SegmentationTask(IntensityIsLabel(), DiceLoss(), partial(torch.optim.SGD, lr=0.1), num_classes=3)
    return CasePredictor(task.eval(), datamodule.predict_transforms(), torch.device("cpu"), False)


def test_without_resampling_the_written_mask_is_exactly_the_truth(tmp_path, demo_data, label_images):
    predictor = _predictor(tmp_path, demo_data, "data.spacing=null")
    for case in label_images:
        out = tmp_path / "out" / f"{case['case_id']}_seg.nii.gz"
        predictor.write(case, out)
        written = nib.load(out)
        assert np.array_equal(np.asarray(written.dataobj), case["truth"])
        assert np.allclose(written.affine, nib.load(case["image"]).affine, atol=1e-5)


def test_after_resampling_the_mask_lands_on_the_input_grid(tmp_path, demo_data, label_images):
    predictor = _predictor(tmp_path, demo_data)  # resampled to 2 mm and back
    for case in label_images:
        out = tmp_path / "out" / f"{case['case_id']}_seg.nii.gz"
        predictor.write(case, out)
        written = np.asarray(nib.load(out).dataobj)
        assert written.shape == case["truth"].shape
        assert (written == case["truth"]).mean() > 0.97


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_data):
    tmp = tmp_path_factory.mktemp("trained")
    cfg = compose(
        [f"paths.data_dir={demo_data}", "trainer.max_epochs=1", "trainer.limit_train_batches=2", *QUIET], tmp
    )
    run.train(cfg)
    return tmp / "run" / "checkpoints" / "last.ckpt"


def _predict_cli(args, cwd):
    command = [sys.executable, "-m", "eisen_lightning", "predict", *args, *QUIET]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


def test_predict_a_folder_goes_on_past_a_bad_case(trained, demo_data, tmp_path):
    inputs = tmp_path / "cases"
    inputs.mkdir()
    for i in (32, 33):
        shutil.copy(demo_data / "Task00_Demo" / "imagesTs" / f"demo_{i}.nii.gz", inputs)
    (inputs / "broken.nii.gz").write_text("not an image")
    result = _predict_cli(
        [f"ckpt_path={trained}", f"input={inputs}", "output=out", f"paths.data_dir={demo_data}"], tmp_path
    )
    assert result.returncode == 1
    assert "2 prediction(s) written, 1 failure(s)" in result.stdout
    assert "FAILED" in result.stdout and "broken.nii.gz" in result.stdout
    for i in (32, 33):
        written = nib.load(tmp_path / "out" / f"demo_{i}_seg.nii.gz")
        source = nib.load(inputs / f"demo_{i}.nii.gz")
        assert written.shape == source.shape and np.allclose(written.affine, source.affine, atol=1e-5)
        assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}


def test_predict_without_the_training_data_uses_the_checkpoint(trained, demo_data, tmp_path):
    image = tmp_path / "scan.nii.gz"
    shutil.copy(demo_data / "Task00_Demo" / "imagesTs" / "demo_34.nii.gz", image)
    args = [f"ckpt_path={trained}", f"input={image}", "output=out", f"paths.data_dir={tmp_path / 'nothing'}"]
    result = _predict_cli([*args, "save_probabilities=true"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "nothing").exists(), "no data set was generated or needed"
    probabilities = nib.load(tmp_path / "out" / "scan_seg_prob.nii.gz")
    assert probabilities.shape == (*nib.load(image).shape, 3)
    assert np.allclose(np.asarray(probabilities.dataobj).sum(-1), 1.0, atol=1e-4)


def test_predict_a_split_of_the_data_set(trained, demo_data, tmp_path):
    args = [f"ckpt_path={trained}", "input=split:val", "output=out", f"paths.data_dir={demo_data}"]
    result = _predict_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    splits = json.loads((trained.parent.parent / "splits.json").read_text())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{c}_seg.nii.gz" for c in splits["val"]
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [("missing.nii.gz", "no such file or folder"), ("split:holdout", "unknown split")],
)
def test_bad_inputs_are_named(trained, demo_data, tmp_path, value, message):
    result = _predict_cli([f"ckpt_path={trained}", f"input={value}", f"paths.data_dir={demo_data}"], tmp_path)
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.parametrize("form", ["mha", "nrrd", "dicom"])
def test_masks_overlay_exactly_for_itk_and_dicom_inputs(form, tmp_path, demo_data, label_images):
    import SimpleITK as sitk

    from eisen_lightning.io import load

    case = label_images[0]
    image = sitk_image(case["truth"], nib.load(case["image"]).affine)
    source = tmp_path / f"scan.{form}"
    if form == "dicom":
        write_dicom_series(image, source, "1.2.826.0.1.3680043.8.498.4242")
    else:
        sitk.WriteImage(image, str(source))
    predictor = _predictor(tmp_path, demo_data, "data.spacing=null")
    expected_suffix = ".nii.gz" if form == "dicom" else f".{form}"
    out = tmp_path / "out" / f"scan_seg{expected_suffix}"
    predictor.write({"case_id": "scan", "image": str(source)}, out)
    written, read_source = load(str(out)), load(str(source))
    assert np.array_equal(np.asarray(written[0]), case["truth"])
    assert np.allclose(np.asarray(written.affine), np.asarray(read_source.affine), atol=1e-4)
    assert np.allclose(np.asarray(written.affine), nib.load(case["image"]).affine, atol=1e-3)
