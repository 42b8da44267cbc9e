"""MedSeg COVID-19: one sample per slice, the stack read once, slice geometry kept, errors."""

import numpy as np
import pytest

from eisen_lightning.data import MedSegDataModule
from eisen_lightning.data import medseg as medseg_module
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.io import load


@pytest.fixture
def data_dir(tmp_path):
    MedSegDataModule.write_replica(str(tmp_path), test_file="val_im.nii.gz")
    return tmp_path


def test_one_case_per_slice_along_the_last_axis(data_dir):
    dm = MedSegDataModule(str(data_dir), test_file="val_im.nii.gz")
    labelled, unlabelled = dm.labelled_cases(), dm.unlabelled_cases()
    assert [c["slice_index"] for c in labelled] == list(range(12))
    assert labelled[3]["case_id"] == "tr_im_003" and labelled[3]["label"].endswith("tr_mask.nii.gz")
    assert len(unlabelled) == 3 and dm.info.spatial_dims == 2 and dm.info.num_classes == 4


def test_slices_keep_their_geometry_and_the_stack_is_read_once(data_dir, monkeypatch):
    import eisen_lightning.io

    medseg_module._stack.cache_clear()
    reads = []
    monkeypatch.setattr(eisen_lightning.io, "load", lambda path, **kw: reads.append(path) or load(path, **kw))
    dm = MedSegDataModule(str(data_dir), patch_size=(64, 64), normalization="none", spacing=None)
    dm.setup("fit")
    assert sorted(reads) == sorted(
        str(data_dir / "medseg_covid" / f) for f in ("tr_im.nii.gz", "tr_mask.nii.gz")
    )
    stack = load(data_dir / "medseg_covid" / "tr_im.nii.gz")
    step = medseg_module.LoadStackSliced(["image"])
    sliced = step({"image": str(data_dir / "medseg_covid" / "tr_im.nii.gz"), "slice_index": 5})["image"]
    assert sliced.shape == stack.shape[:-1]
    np.testing.assert_allclose(sliced.numpy(), stack[..., 5].numpy())
    world = np.array(stack.affine) @ np.array([3.0, 4.0, 5.0, 1.0])
    np.testing.assert_allclose(np.array(sliced.affine) @ np.array([3.0, 4.0, 0.0, 1.0]), world, atol=1e-5)
    sample = dm.datasets["val"][0]
    assert sample["image"].shape[0] == 1 and sample["image"].ndim == 3


def test_missing_data_names_the_url_the_folder_and_the_download_flag(tmp_path):
    with pytest.raises(LayoutError, match="medicalsegmentation.com") as err:
        MedSegDataModule(str(tmp_path)).prepare_data()
    assert "data.download=true" in str(err.value) and str(tmp_path / "medseg_covid") in str(err.value)


def test_layout_problems_are_listed_together(data_dir):
    root = data_dir / "medseg_covid"
    (root / "tr_mask.nii.gz").unlink()
    with pytest.raises(LayoutError) as err:
        MedSegDataModule(str(data_dir), test_file="val_im.nii").prepare_data()
    assert "tr_mask.nii.gz: missing (data.mask_file)" in str(err.value)
    assert "val_im.nii: missing (data.test_file)" in str(err.value)


def test_a_mask_of_another_shape_or_suffix_is_refused(data_dir, tmp_path):
    import nibabel as nib

    root = data_dir / "medseg_covid"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.float32), np.eye(4)), root / "tr_mask.nii.gz")
    with pytest.raises(LayoutError, match=r"shape \(8, 8, 3\) differs"):
        MedSegDataModule(str(data_dir)).prepare_data()
    (root / "tr_mask.nii.gz").rename(root / "tr_mask.mha")
    with pytest.raises(LayoutError, match="wrong suffix"):
        MedSegDataModule(str(data_dir), mask_file="tr_mask.mha").prepare_data()


def test_download_true_fetches_missing_files_before_the_checks(tmp_path, monkeypatch):
    import eisen_lightning.data.download as download

    calls = []

    def fake_download(name, data_dir, task=None):
        calls.append((name, str(data_dir)))
        return MedSegDataModule.write_replica(str(data_dir))

    monkeypatch.setattr(download, "download_dataset", fake_download)
    dm = MedSegDataModule(str(tmp_path), download=True)
    dm.prepare_data()
    assert calls == [("medseg_covid", str(tmp_path))] and len(dm.labelled_cases()) == 12
    dm.prepare_data()
    assert len(calls) == 1, "present files are not downloaded again"
