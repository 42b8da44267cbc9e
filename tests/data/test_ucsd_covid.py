"""UCSD COVID-CT: the two class folders (PNG and JPEG of mixed colour types), grouped splits, errors."""

import shutil

import pytest
from monai.transforms import Compose
from PIL import Image

from eisen_lightning.data import UCSDCovidDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.ucsd_covid import read_ucsd_covid


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return UCSDCovidDataModule.write_replica(str(tmp_path_factory.mktemp("ucsd_data")))


def test_layout_lists_both_folders_with_labels_and_figures_as_patients(replica):
    cases = read_ucsd_covid(replica).labelled
    assert len(cases) == 24 and sum(c["label"] for c in cases) == 12
    assert {c["image"].rsplit(".", 1)[1] for c in cases} == {"png", "jpg"}
    by_id = {c["case_id"]: c for c in cases}
    covid = by_id["CT_COVID/2020.03.10.20030000-p1-20%0.jpg"]
    assert covid["label"] == 1 and covid["patient_id"] == "CT_COVID/2020.03.10.20030000-p1-20"
    assert by_id["CT_COVID/2020.03.10.20030000-p1-20%1.png"]["patient_id"] == covid["patient_id"]
    assert by_id["CT_NonCOVID/0%0.jpg"]["label"] == 0


def test_grey_rgb_and_rgba_pictures_become_one_grey_channel(replica):
    dm = UCSDCovidDataModule(str(replica.parent), image_size=(32, 40))
    modes = set()
    for case in dm.labelled_cases()[:3]:
        modes.add(Image.open(case["image"]).mode)
        sample = Compose(dm.eval_transforms())(dict(case))
        assert sample["image"].shape == (1, 32, 40)
        assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert modes == {"L", "RGB", "RGBA"}


def test_splits_are_stratified_and_keep_figures_together(replica):
    dm = UCSDCovidDataModule(str(replica.parent), num_folds=3, test_fraction=0.25)
    dm.setup("fit")
    cases = {c["case_id"]: c for c in dm.labelled_cases()}
    groups = {name: {cases[i]["patient_id"] for i in ids} for name, ids in dm.splits.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["val"] & groups["test"])
    assert not (groups["train"] & groups["test"])
    for ids in dm.splits.values():
        assert 0.3 <= sum(cases[i]["label"] for i in ids) / len(ids) <= 0.7


def test_every_layout_problem_is_listed_in_one_error(replica, tmp_path):
    root = tmp_path / "ucsd_covid"
    shutil.copytree(replica, root)
    (root / "CT_COVID" / "figure.gif").write_bytes(b"GIF89a")
    shutil.rmtree(root / "CT_NonCOVID")
    (root / "CT_NonCOVID").mkdir()
    with pytest.raises(LayoutError) as err:
        read_ucsd_covid(root)
    message = str(err.value)
    assert "2 problem(s)" in message
    assert "figure.gif: unexpected suffix, expected one of ['.png', '.jpg', '.jpeg']" in message
    assert f"{root / 'CT_NonCOVID'}/ is empty" in message and "github.com/UCSD-AI4H/COVID-CT" in message


def test_missing_data_is_explained_and_downloaded_when_asked(tmp_path, monkeypatch):
    from eisen_lightning.data import download

    with pytest.raises(LayoutError, match="data.download=true") as err:
        UCSDCovidDataModule(str(tmp_path)).prepare_data()
    assert str(tmp_path / "ucsd_covid" / "CT_COVID") in str(err.value)
    calls = []

    def fake_download(name, data_dir, task=None):
        calls.append(name)
        return UCSDCovidDataModule.write_replica(data_dir)

    monkeypatch.setattr(download, "download_dataset", fake_download)
    dm = UCSDCovidDataModule(str(tmp_path), download=True)
    dm.prepare_data()
    assert calls == ["ucsd_covid"] and len(dm.labelled_cases()) == 24
    moved = UCSDCovidDataModule(str(tmp_path), folder="elsewhere", download=True)
    with pytest.raises(LayoutError, match="set data.folder=ucsd_covid"):
        moved.prepare_data()
