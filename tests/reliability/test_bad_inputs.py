"""A corpus of bad inputs, written by the tests: each gets a short error naming the file or key and the
fix, before training starts, and nothing already written is lost.

Unreadable files of each format are in tests/io/test_io_errors.py and the Decathlon layout checks in
tests/data/test_decathlon_layout.py; the cases here are the ones those leave out, and the same
problems seen through the command line.
"""

import errno
import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image
from resume_helpers import TINY

from conftest import QUIET, compose, run_cli
from eisen_lightning import run
from eisen_lightning.data.synthetic import write_decathlon_replica
from eisen_lightning.io import ImageReadError, load


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """Truncated files of the formats test_io_errors.py does not truncate, and a corrupted .nii.gz."""
    root = tmp_path_factory.mktemp("damaged")
    volume = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
    picture = (np.random.default_rng(1).random((32, 32)) * 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(root / "whole.nrrd"))
    for suffix in ("png", "jpg", "tif"):
        Image.fromarray(picture).save(root / f"whole.{suffix}")
    with h5py.File(root / "whole.h5", "w") as handle:
        handle["image"] = volume
    for path in list(root.iterdir()):
        raw = path.read_bytes()
        (root / f"truncated_{path.name}").write_bytes(raw[: len(raw) // 2])
    nib.save(nib.Nifti1Image(volume, np.eye(4)), root / "whole.nii.gz")
    raw = bytearray((root / "whole.nii.gz").read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)  # a damaged block: the gzip checksum fails
    (root / "corrupt.nii.gz").write_bytes(bytes(raw))
    return root


DAMAGED = {
    "truncated_whole.nrrd": "probably truncated or damaged",
    "truncated_whole.png": "image file is truncated",
    "truncated_whole.jpg": "image file is truncated",
    "truncated_whole.tif": "image file is truncated",
    "truncated_whole.h5": "truncated file",
    "corrupt.nii.gz": "CRC check failed",
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_file_error_names_the_file_and_the_fix(damaged, name):
    with pytest.raises(ImageReadError, match=DAMAGED[name]) as info:
        load(str(damaged / name))
    assert name in str(info.value) and "Fix:" in str(info.value)


@pytest.fixture
def spleen(tmp_path):
    """A Task09_Spleen replica (2 classes, 3D) and its dataset.json entries."""
    root = write_decathlon_replica(tmp_path / "data", "Task09_Spleen", num_training=5, num_test=1)
    return root, json.loads((root / "dataset.json").read_text())["training"]


def test_verify_reports_infinite_voxels_and_wrong_dimensionality(spleen, tmp_path):
    root, files = spleen
    image = nib.load(root / files[0]["image"])
    data = image.get_fdata().astype(np.float32)
    data[1, 1, 1], data[2, 2, 2] = np.inf, -np.inf
    nib.save(nib.Nifti1Image(data, image.affine), root / files[0]["image"])
    volume = nib.load(root / files[1]["image"])
    nib.save(nib.Nifti1Image(np.asarray(volume.dataobj)[:, :, 0], volume.affine), root / files[1]["image"])
    report = run.verify(compose(["+experiment=decathlon"], tmp_path))
    text = report.text()
    assert any(
        files[0]["image"].removeprefix("./") in p and "2 voxel(s) are NaN or infinite" in p
        for p in report.problems
    ), text
    assert any(
        files[1]["image"].removeprefix("./") in p
        and "2 spatial dimensions" in p
        and "the data set needs 3" in p
        for p in report.problems
    ), text


def _train_cli(tmp_path, *overrides):
    """``python train.py +experiment=decathlon ...`` on the replica, with its outputs under tmp_path."""
    args = [
        "+experiment=decathlon",
        *QUIET,
        f"paths.data_dir={tmp_path / 'data'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    return run_cli([*args, "data.num_workers=0", *overrides], tmp_path)


def _label_shape_mismatch(root, files):
    label = nib.load(root / files[0]["label"])
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), label.affine), root / files[0]["label"])
    return [files[0]["label"].removeprefix("./"), "does not match image shape", "Fix the files listed above"]


def _malformed_dataset_json(root, files):
    (root / "dataset.json").write_text('{"name": "Spleen", "labels": {"0": "background",')
    return ["dataset.json is not valid JSON"]


def _empty_folder(root, files):
    for path in sorted(root.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    return [str(root), "dataset.json not found", "point paths.data_dir (environment variable EISEN_DATA_DIR)"]


@pytest.mark.parametrize("damage", [_label_shape_mismatch, _malformed_dataset_json, _empty_folder])
def test_broken_data_set_stops_training_before_it_starts(spleen, tmp_path, damage):
    expected = damage(*spleen)
    result = _train_cli(tmp_path)
    assert result.returncode == 1
    for fragment in expected:
        assert fragment in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "trainer.max_epoch=3",
            ["Could not override 'trainer.max_epoch'", "did you mean trainer.max_epochs?"],
        ),
        ("trainer.max_epochs=abc", ["trainer.max_epochs must be an integer", "got 'abc'"]),
        ("optimizer.lr=fast", ["optimizer.lr must be a number", "write e.g. optimizer.lr="]),
        ("+experiment=no_such_experiment", ["Could not find 'experiment/no_such_experiment'", "demo"]),
        ("net=no_such_net", ["Could not find 'net/no_such_net'", "unet3d_small"]),
    ],
)
def test_bad_override_is_one_clear_line_with_the_fix(tmp_path, override, expected):
    result = run_cli([f"paths.data_dir={tmp_path / 'data'}", override], tmp_path)
    assert result.returncode == 2
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "data").exists()


def test_unknown_target_names_the_key_and_the_fix(tmp_path):
    result = run_cli(
        [*TINY, f"paths.data_dir={tmp_path / 'data'}", "net._target_=monai.networks.nets.NoSuchNet"], tmp_path
    )
    assert result.returncode == 1
    assert "task.net: cannot import _target_ 'monai.networks.nets.NoSuchNet'" in result.stderr
    assert "choose one of the files of the matching conf/ group" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_directory_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli([f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={blocker / 'run'}"], tmp_path)
    assert result.returncode == 2
    assert f"hydra.run.dir={blocker / 'run'}: cannot write there" in result.stderr
    assert "hydra.run.dir=DIR or the EISEN_LOG_DIR environment variable" in result.stderr
    assert blocker.read_text() == "not a folder"


def test_full_disk_while_checkpointing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import eisen_lightning.checkpoint as checkpoint

    real_save, calls = torch.save, []

    def save_then_fill_the_disk(obj, handle, *args, **kwargs):
        calls.append(obj["epoch"])
        if obj["epoch"] >= 1:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_then_fill_the_disk)
    cfg = compose([*TINY, "trainer.max_epochs=2", "trainer.limit_train_batches=1"], tmp_path)
    with pytest.raises(OSError, match="No space left on device"):
        run.train(cfg)
    folder = tmp_path / "run" / "checkpoints"
    assert calls[0] == 0 and calls[-1] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert checkpoint.load_checkpoint(folder / "last.ckpt")["epoch"] == 0


def test_full_disk_message_names_the_file_and_the_fix():
    from eisen_lightning.preflight import user_message as _user_message

    error = OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoints/last.ckpt")
    expected = "No space left on device; choose a writable place with enough free space"
    assert _user_message(error) == f"/runs/x/checkpoints/last.ckpt: {expected}"
