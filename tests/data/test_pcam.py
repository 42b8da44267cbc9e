"""PatchCamelyon: HDF5 layout parsing, official splits, lazy per-process reading, layout errors, download."""

import json
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
from monai.transforms import Compose

from eisen_lightning.data import PCamDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.pcam import read_pcam
from eisen_lightning.data.pcam import LoadHDF5Itemd


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return PCamDataModule.write_replica(str(tmp_path_factory.mktemp("pcam_data")))


def _copy(replica, tmp_path):
    root = tmp_path / "pcam"
    shutil.copytree(replica, root)
    return root


def test_replica_has_the_official_names_keys_shapes_and_dtypes(replica):
    with h5py.File(replica / "camelyonpatch_level_2_split_valid_x.h5") as fx:
        assert fx["x"].shape == (8, 96, 96, 3) and fx["x"].dtype == np.uint8
    with h5py.File(replica / "camelyonpatch_level_2_split_valid_y.h5") as fy:
        assert fy["y"].shape == (8, 1, 1, 1)
    with h5py.File(replica / "camelyonpatch_level_2_split_test_mask.h5") as fm:
        assert fm["mask"].shape == (8, 96, 96)


def test_layout_lists_every_patch_with_its_label_and_official_split(replica):
    cases = read_pcam(replica).labelled
    assert len(cases) == 32
    first = cases[0]
    assert first["case_id"] == "train_0" and first["split"] == "train"
    assert first["image"] == f"{replica.absolute() / 'camelyonpatch_level_2_split_train_x.h5'}#x[0]"
    assert first["mask"].endswith("camelyonpatch_level_2_split_train_mask.h5#mask[0]")
    with h5py.File(replica / "camelyonpatch_level_2_split_test_y.h5") as fy:
        expected = fy["y"][()].reshape(-1).tolist()
    assert [c["label"] for c in cases if c["split"] == "test"] == expected
    assert {c["split"] for c in cases} == {"train", "val", "test"}


def test_official_files_are_the_splits_and_are_saved(replica, tmp_path):
    dm = PCamDataModule(str(replica.parent), output_dir=str(tmp_path))
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 16, "val": 8, "test": 8}
    assert all(i.startswith("valid_") for i in dm.splits["val"])
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert saved["official_splits"] is True and saved["val"] == dm.splits["val"]


def test_pooled_splits_are_stratified_by_class(replica):
    dm = PCamDataModule(str(replica.parent), official_splits=False, num_folds=4, test_fraction=0.25)
    dm.setup("fit")
    labels = {c["case_id"]: c["label"] for c in dm.labelled_cases()}
    for name in ("train", "val", "test"):
        values = [labels[i] for i in dm.splits[name]]
        assert sum(values) == len(values) / 2, name
    assert any(i.startswith("valid_") for i in dm.splits["train"])


def test_a_sample_is_the_stored_patch_scaled_to_unit_range(replica):
    dm = PCamDataModule(str(replica.parent))
    case = dm.labelled_cases()[5]
    sample = Compose(dm.eval_transforms())(dict(case))
    with h5py.File(replica / "camelyonpatch_level_2_split_train_x.h5") as fx:
        stored = fx["x"][5]
    assert sample["image"].shape == (3, 96, 96)
    expected = torch.from_numpy(stored.transpose(2, 1, 0) / 255.0).float()
    assert torch.allclose(torch.as_tensor(sample["image"]), expected, atol=1e-6)
    assert sample["label"].dtype == torch.float32 and float(sample["label"]) == case["label"]


def test_hdf5_handles_are_opened_once_per_process_and_never_pickled(replica, monkeypatch):
    load = LoadHDF5Itemd(["image"])
    path = f"{replica / 'camelyonpatch_level_2_split_train_x.h5'}#x"
    load({"image": f"{path}[0]"})
    load({"image": f"{path}[1]"})
    assert len(load._handles) == 1
    assert pickle.loads(pickle.dumps(load))._handles == {}
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as in a DataLoader worker
    load({"image": f"{path}[2]"})
    assert len(load._handles) == 2


def test_loader_workers_read_their_own_handles(replica):
    dm = PCamDataModule(str(replica.parent), batch_size=4, val_batch_size=4, num_workers=2, augment=False)
    dm.setup("fit")
    labels = torch.cat([batch["label"] for batch in dm.val_dataloader()])
    assert labels.tolist() == [float(c["label"]) for c in dm.labelled_cases() if c["split"] == "val"]


def test_nothing_but_the_labels_is_read_at_start_up(replica, tmp_path):
    root = _copy(replica, tmp_path)
    with h5py.File(root / "camelyonpatch_level_2_split_train_x.h5", "r+") as fx:
        fx["x"][3] = 0  # a change read at start-up would be invisible; a per-sample read sees it
    dm = PCamDataModule(str(tmp_path))
    dm.prepare_data()
    assert float(Compose(dm.eval_transforms())(dm.labelled_cases()[3])["image"].max()) == 0.0


def test_eisens_file_spelling_is_accepted(replica, tmp_path):
    root = _copy(replica, tmp_path)
    for path in root.glob("camelyonpatch_*"):
        path.rename(root / path.name.replace("camelyonpatch", "camelyon_patch"))
    assert len(read_pcam(root).labelled) == 32


def test_every_layout_problem_is_listed_in_one_error(replica, tmp_path):
    root = _copy(replica, tmp_path)
    (root / "camelyonpatch_level_2_split_valid_x.h5").unlink()  # labels without their images
    with h5py.File(root / "camelyonpatch_level_2_split_test_y.h5", "w") as fy:
        fy["y"] = np.zeros((3, 1, 1, 1), np.uint8)  # 3 labels for 8 patches
    (root / "camelyonpatch_level_2_split_train_y.h5").write_bytes(b"not hdf5")
    with pytest.raises(LayoutError) as err:
        read_pcam(root)
    message = str(err.value)
    assert "3 problem(s)" in message
    assert f"{root / 'camelyonpatch_level_2_split_valid_x.h5'} is missing" in message
    assert "has 8 patches but" in message and "has 3 labels" in message
    assert "not a readable HDF5 file" in message and "github.com/basveeling/pcam" in message


def test_missing_data_says_where_to_get_it_before_anything_runs(tmp_path):
    dm = PCamDataModule(str(tmp_path))
    with pytest.raises(LayoutError, match="the data set is not there") as err:
        dm.prepare_data()
    assert str(tmp_path / "pcam") in str(err.value) and "data.download=true" in str(err.value)
    (tmp_path / "pcam").mkdir()
    with pytest.raises(LayoutError, match="github.com/basveeling/pcam"):
        dm.prepare_data()


def test_download_true_fetches_missing_data(tmp_path, monkeypatch):
    from eisen_lightning.data import download

    calls = []

    def fake_download(name, data_dir, task=None):
        calls.append((name, data_dir))
        return PCamDataModule.write_replica(data_dir)

    monkeypatch.setattr(download, "download_dataset", fake_download)
    dm = PCamDataModule(str(tmp_path), download=True)
    dm.prepare_data()
    assert calls == [("pcam", str(tmp_path))]
    assert len(dm.labelled_cases()) == 32
