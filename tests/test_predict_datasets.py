"""`eisen predict` on the 2D, slice-stack, multi-channel and multi-label data sets: exact input geometry."""

import subprocess
import sys
from functools import partial

import nibabel as nib
import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate
from monai.losses import DiceLoss
from torch import nn

from conftest import QUIET, compose
from eisen_lightning import keys, run
from eisen_lightning.geometry import geometry_differences
from eisen_lightning.io import load, save
from eisen_lightning.predict import CasePredictor, predict
from eisen_lightning.predict_inputs import reference_image
from eisen_lightning.tasks import SegmentationTask

#: data set -> overrides of a tiny training run
DATASETS = {
    "camus": [],
    "medseg": [],
    "brats": ["data.patch_size=[32,32,32]"],
    "abcs": ["data.patch_size=[32,32,32]"],
    "demo2d": [],
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``name -> (name, root, checkpoint)``: a replica and one short epoch on it, trained once per module."""
    done = {}

    def get(name):
        if name not in done:
            root = tmp_path_factory.mktemp(f"trained_{name}")
            overrides = [
                f"+experiment={name}",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
                "~logger",
                *DATASETS[name],
                *QUIET,
            ]
            cfg = compose(overrides, root)
            get_class(cfg.data._target_).write_replica(**cfg.data)
            run.train(cfg)
            done[name] = (name, root, root / "run" / "checkpoints" / "last.ckpt")
        return done[name]

    return get


def _predict(trained, tmp_path, *overrides):
    name, root, ckpt = trained
    cfg = compose(
        [
            f"+experiment={name}",
            f"ckpt_path={ckpt}",
            f"output={tmp_path / 'out'}",
            *DATASETS[name],
            *overrides,
        ],
        root,
        "predict",
    )
    return predict(cfg), cfg


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_split_predictions_have_exactly_the_input_geometry(name, checkpoints, tmp_path):
    trained = checkpoints(name)
    report, cfg = _predict(trained, tmp_path, "input=split:val")
    assert report.written and not report.failures, report.text()
    datamodule = instantiate(cfg.data)
    cases = {c[keys.CASE_ID]: c for c in datamodule.labelled_cases()}
    regions = name == "brats"
    for _, written in report.written:
        case_id = written.split("/")[-1].rsplit("_seg.", 1)[0]
        label = load(written, dtype=None)  # the file's own data type
        assert geometry_differences(reference_image(cases[case_id]), label) == [], written
        values = set(np.unique(np.asarray(label)).tolist())
        if regions:  # one 0/1 channel per region, not an argmax
            assert label.shape[0] == 3 and values <= {0, 1}, (label.shape, values)
        else:
            assert label.shape[0] == 1 and values <= set(range(cfg.dataset.num_classes)), values
        assert np.asarray(label).dtype == np.uint8


def test_a_multi_channel_case_is_named_by_its_id_and_takes_its_first_channel_grid(checkpoints, tmp_path):
    report, cfg = _predict(checkpoints("brats"), tmp_path, "input=split:test")
    assert not report.failures, report.text()
    for source, written in report.written:
        assert "(+3 channel file(s))" in source
        subject = written.split("/")[-1].removesuffix("_seg.nii.gz")
        first = source.split(" ")[0]
        assert first.endswith(f"{subject}/{subject}_t1.nii.gz")
        assert nib.load(written).shape == (*nib.load(first).shape, 3)
        assert np.allclose(nib.load(written).affine, nib.load(first).affine, atol=1e-5)


def test_a_medseg_stack_is_written_back_as_one_volume(checkpoints, tmp_path):
    trained = checkpoints("medseg")
    root = trained[1]
    stack = root / "data" / "medseg_covid" / "tr_im.nii.gz"
    report, _ = _predict(trained, tmp_path, f"input={stack}", "save_probabilities=true")
    assert not report.failures and len(report.written) == 1, report.text()
    written, source = nib.load(tmp_path / "out" / "tr_im_seg.nii.gz"), nib.load(stack)
    assert written.shape == source.shape and np.allclose(written.affine, source.affine, atol=1e-5)
    probabilities = np.asarray(nib.load(tmp_path / "out" / "tr_im_seg_prob.nii.gz").dataobj)
    assert probabilities.shape == (*source.shape, 4)
    assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    assert np.array_equal(np.asarray(written.dataobj), probabilities.argmax(-1))


def test_a_2d_image_file_through_the_command(checkpoints, tmp_path):
    _, root, ckpt = checkpoints("camus")
    image = next((root / "data" / "camus" / "training").glob("patient*/patient*_2CH_ED.mhd"))
    command = [sys.executable, "-m", "eisen_lightning", "predict", "+experiment=camus", f"ckpt_path={ckpt}"]
    command += [f"input={image}", "output=out", f"paths.data_dir={root / 'data'}", *QUIET]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    written = load(str(tmp_path / "out" / image.name.replace(".mhd", "_seg.mha")))
    assert geometry_differences(load(str(image)), written) == []
    assert written.shape[1:] == load(str(image)).shape[1:] and len(written.shape) == 3


class AboveZeroEverywhere(nn.Module):
    """A 'net' whose logits of every region are the intensity: all regions overlap where it is positive."""

    def forward(self, x):
        return x.repeat(1, 3, *([1] * (x.ndim - 2)))


def test_multi_label_prediction_uses_the_task_rule_not_an_argmax(tmp_path):
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    volume = np.full((12, 10, 8), -1.0, np.float32)
    volume[3:8, 2:6, 2:5] = 1.0
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "scan.nii.gz")
    task = SegmentationTask(
        AboveZeroEverywhere(), DiceLoss(sigmoid=True), partial(torch.optim.SGD, lr=0.1), 3, multilabel=True
    )
    from monai.transforms import EnsureTyped, LoadImaged

    from eisen_lightning.io import readers

    transforms = [LoadImaged(keys.IMAGE, reader=readers(), image_only=True, ensure_channel_first=True)]
    predictor = CasePredictor(task.eval(), [*transforms, EnsureTyped(keys.IMAGE)], torch.device("cpu"), False)
    out = tmp_path / "scan_seg.nii.gz"
    predictor.write({keys.CASE_ID: "scan", keys.IMAGE: str(tmp_path / "scan.nii.gz")}, out)
    written = np.asarray(nib.load(out).dataobj)
    assert written.shape == (12, 10, 8, 3)
    for region in range(3):
        assert np.array_equal(written[..., region], (volume > 0).astype(np.uint8))


def test_save_writes_a_2d_metatensor_on_its_own_grid(tmp_path):
    from monai.data import MetaTensor

    affine = torch.tensor(
        [[-0.31, 0, 0, -12.5], [0, -0.62, 0, 30.0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64
    )
    label = MetaTensor(torch.randint(0, 4, (1, 48, 40), dtype=torch.uint8), affine=affine)
    for suffix in ("nii.gz", "mha"):
        path = save(label, tmp_path / f"label.{suffix}")
        written = load(path)
        assert tuple(written.shape) == (1, 48, 40), suffix
        assert np.array_equal(np.asarray(written[0]), label[0].numpy())
        assert np.allclose(np.asarray(written.affine), affine.numpy(), atol=1e-5), suffix
