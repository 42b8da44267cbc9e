"""`eisen verify` on a replica of every data set: clean replicas pass, one corrupted image is named."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate

from conftest import CONF, compose
from eisen_lightning import keys, run
from eisen_lightning.data.verify import VerifySpec, verify_cases

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _replica(name, tmp_path):
    cfg = compose([f"+experiment={name}"], tmp_path)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    return cfg


def _image_file(case) -> Path:
    """The file holding the case's image data: the last channel file of a list, a .mhd header's .raw."""
    image = case[keys.IMAGE]
    path = Path(str(image[-1] if isinstance(image, list) else image).split("#")[0])
    raw = path.with_suffix(".raw")
    return raw if path.suffix == ".mhd" and raw.is_file() else path


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_a_clean_replica_has_no_problem_and_a_corrupted_image_is_named(name, tmp_path):
    cfg = _replica(name, tmp_path)
    report = run.verify(cfg)
    assert report.ok and report.cases > 0, report.text()
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    target = _image_file((datamodule.labelled_cases() or datamodule.unlabelled_cases())[0])
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])  # an interrupted copy
    problems = _problems(cfg)
    shown = target.with_suffix(".mhd") if target.suffix == ".raw" else target
    assert any(str(shown) in p for p in problems), f"{name}: the truncated {target} is not named: {problems}"


def _problems(cfg) -> list[str]:
    """The problems ``eisen verify`` reports (or lists in one error, for a layout its parser rejects)."""
    from eisen_lightning.data.datasets.decathlon import LayoutError

    try:
        return run.verify(cfg).problems
    except LayoutError as error:  # such as PCam's HDF5 files, opened to count their patches
        return error.problems


def test_value_labels_are_checked_against_the_outputs():
    spec = VerifySpec(label_key=None, num_outputs=3, read=lambda case, key: None)
    cases = [
        {"case_id": "ok", "image": "a.png", "label": 2},
        {"case_id": "index", "image": "a.png", "label": 3},
        {"case_id": "vector", "image": "a.png", "label": [0.0, 1.0]},
        {"case_id": "nan", "image": "a.png", "label": float("nan")},
        {"case_id": "text", "image": "a.png", "label": "two"},
    ]
    problems = verify_cases(cases, spec).problems
    assert problems == [
        "case 'index': class index 3 is outside 0..2 (3 classes)",
        "case 'vector': label vector has 2 value(s), the data set has 3 output(s)",
        "case 'nan': label nan holds NaN or infinite values",
        "case 'text': label 'two' must be a number or a vector of numbers",
    ]


def test_brats_raw_labels_are_allowed_and_others_are_not(tmp_path):
    import nibabel as nib
    import numpy as np

    cfg = _replica("brats", tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    label = Path(datamodule.labelled_cases()[0][keys.LABEL])
    image = nib.load(label)
    values = np.asarray(image.dataobj).copy()
    assert set(np.unique(values).tolist()) == {0, 1, 2, 4}, "the replica uses BraTS' own label values"
    values[0, 0, 0] = 3
    nib.save(nib.Nifti1Image(values, image.affine), label)
    report = run.verify(cfg)
    assert report.problems == [f"{label}: label values [3.0] are not declared (allowed: [0, 1, 2, 4])"]


def test_verify_command_on_a_classification_replica(tmp_path):
    cfg = _replica("pcam", tmp_path)
    command = [sys.executable, "-m", "eisen_lightning", "verify", "+experiment=pcam"]
    result = subprocess.run(
        [*command, f"paths.data_dir={cfg.paths.data_dir}"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "case(s) read, 0 problem(s)" in result.stdout
