"""`eisen verify` reports every problem of a data set at once; `eisen verify-geometry` says what differs."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import compose
from eisen_lightning import run
from eisen_lightning.data.synthetic import write_decathlon_replica
from eisen_lightning.geometry import compare_files, describe


@pytest.fixture
def broken_spleen(tmp_path):
    """A Task09_Spleen replica with one problem of each kind in different cases."""
    root = write_decathlon_replica(tmp_path / "data", "Task09_Spleen", num_training=6, num_test=1)
    files = json.loads((root / "dataset.json").read_text())["training"]
    label = lambda i: root / files[i]["label"]  # noqa: E731
    image = lambda i: root / files[i]["image"]  # noqa: E731
    ref = nib.load(label(0))
    nib.save(nib.Nifti1Image(np.full(ref.shape, 5, np.uint8), ref.affine), label(0))  # undeclared value
    img = nib.load(image(1))
    data = img.get_fdata().astype(np.float32)
    data[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), image(1))  # NaN voxel
    second, third = nib.load(label(2)), nib.load(label(3))
    nib.save(nib.Nifti1Image(np.zeros(second.shape, np.uint8), second.affine), label(2))  # empty label
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), third.affine), label(3))  # wrong shape
    shifted = nib.load(label(4))
    moved = shifted.affine.copy()
    moved[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(shifted.dataobj), moved), label(4))  # wrong affine
    raw = image(5).read_bytes()
    image(5).write_bytes(raw[: len(raw) // 3])  # truncated .nii.gz
    return root, files


def test_verify_reports_every_problem_together(broken_spleen, tmp_path):
    root, files = broken_spleen
    cfg = compose(["+experiment=decathlon"], tmp_path)
    report = run.verify(cfg)
    text = report.text()
    assert report.cases == 7 and not report.ok
    expected = [
        (files[0]["label"], "label values [5.0] are not declared (allowed: [0, 1])"),
        (files[1]["image"], "1 voxel(s) are NaN or infinite"),
        (files[2]["label"], "label is empty"),
        (files[3]["label"], "shape (8, 8, 8) differs"),
        (files[4]["label"], "affine differs from its image"),
        (files[5]["image"], "cannot be read"),
    ]
    for path, message in expected:
        assert any(str(root / path) in p and message in p for p in report.problems), (path, message, text)
    assert len(report.problems) == len(expected), text


def test_verify_command_exits_non_zero_and_lists_problems(broken_spleen, tmp_path):
    args = ["-m", "eisen_lightning", "verify", "+experiment=decathlon", f"paths.data_dir={tmp_path / 'data'}"]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "7 case(s) read, 6 problem(s)" in result.stdout
    assert (tmp_path / "outputs" / "verify").is_dir()


def test_verify_on_clean_data_passes(tmp_path):
    write_decathlon_replica(tmp_path / "data", "Task04_Hippocampus")
    report = run.verify(compose(["+experiment=decathlon", "data.task=Task04_Hippocampus"], tmp_path))
    assert report.ok and report.cases == 8, report.text()


def test_verify_geometry_names_each_difference(tmp_path):
    data = np.zeros((10, 12, 14), np.float32)
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "same.nii.gz")
    other = affine.copy()
    other[:3, 3] = [1.0, 0.0, 0.0]
    other[1, 1] = 2.5
    nib.save(nib.Nifti1Image(data[:, :, :7], other), tmp_path / "b.nii.gz")
    assert compare_files(str(tmp_path / "a.nii.gz"), str(tmp_path / "same.nii.gz")) == []
    differences = compare_files(str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz"))
    assert [d.split(":")[0] for d in differences] == ["shape", "spacing (mm)", "origin (mm, RAS)"]
    command = [sys.executable, "-m", "eisen_lightning", "verify-geometry"]
    same = subprocess.run([*command, "a.nii.gz", "same.nii.gz"], capture_output=True, text=True, cwd=tmp_path)
    assert same.returncode == 0 and "same geometry" in same.stdout
    differ = subprocess.run([*command, "a.nii.gz", "b.nii.gz"], capture_output=True, text=True, cwd=tmp_path)
    assert differ.returncode == 1 and "spacing (mm): [1, 2, 3] vs [1, 2.5, 3]" in differ.stdout


def test_describe_splits_an_oblique_affine():
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.5, 0.7, 2.0])
    affine[:3, 3] = [10, 20, 30]
    geometry = describe(affine)
    assert np.allclose(geometry["spacing"], [0.5, 0.7, 2.0])
    assert np.allclose(geometry["direction"], rotation) and np.allclose(geometry["origin"], [10, 20, 30])
