"""RSNA Bone Age: the doubled-folder Kaggle layout, sex as a net input, regression metrics, errors."""

import shutil

import pytest
import torch
from monai.transforms import Compose

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.data import BoneAgeDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.boneage import read_boneage


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return BoneAgeDataModule.write_replica(str(tmp_path_factory.mktemp("boneage_data")))


@pytest.fixture
def root(replica, tmp_path):
    shutil.copytree(replica, tmp_path / "rsna_boneage")
    return tmp_path / "rsna_boneage"


def test_layout_reads_the_csv_columns_and_the_doubled_folders(replica):
    layout = read_boneage(replica)
    assert len(layout.labelled) == 20 and len(layout.unlabelled) == 4
    rows = (replica / "boneage-training-dataset.csv").read_text().splitlines()
    assert rows[0] == "id,boneage,male"
    case_id, months, male = rows[1].split(",")
    first = layout.labelled[0]
    assert first == {
        "case_id": case_id,
        "image": str(
            (replica / "boneage-training-dataset/boneage-training-dataset" / f"{case_id}.png").absolute()
        ),
        "male": 1.0 if male == "True" else 0.0,
        "label": float(months),
    }
    test_rows = (replica / "boneage-test-dataset.csv").read_text().splitlines()
    assert test_rows[0] == "Case ID,Sex"
    sex = {r.split(",")[0]: r.split(",")[1] for r in test_rows[1:]}
    assert all(c["male"] == (1.0 if sex[c["case_id"]] == "M" else 0.0) for c in layout.unlabelled)
    assert all("label" not in c for c in layout.unlabelled)


def test_a_sample_is_a_grey_image_with_its_age_and_sex(replica):
    dm = BoneAgeDataModule(str(replica.parent), image_size=(64, 48))
    case = dm.labelled_cases()[0]
    sample = Compose(dm.eval_transforms())(dict(case))
    assert sample["image"].shape == (1, 64, 48)
    low, high = float(sample["image"].min()), float(sample["image"].max())
    assert 0.0 <= low < 0.2 and 0.8 < high <= 1.0  # scaled to [0, 1] before the smoothing resize
    assert sample["label"] == torch.tensor(case["label"]) and sample["male"].dtype == torch.float32
    assert dm.info.num_classes == 1 and dm.info.in_channels == 1


def test_splits_keep_the_share_of_each_sex(replica):
    dm = BoneAgeDataModule(str(replica.parent), num_folds=2, test_fraction=0.2)
    dm.setup("fit")
    male = {c["case_id"]: c["male"] for c in dm.labelled_cases()}
    for name, ids in dm.splits.items():
        assert sum(male[i] for i in ids) == len(ids) / 2, name


def test_every_layout_problem_is_listed_in_one_error(root):
    images = root / "boneage-training-dataset/boneage-training-dataset"
    first = sorted(images.glob("*.png"))[0]
    first.unlink()  # a CSV row without its image
    (images / "9999.png").write_bytes((images / sorted(images.glob("*.png"))[0].name).read_bytes())
    (images / "1400.jpg").write_bytes(b"jpeg")  # wrong suffix
    csv = root / "boneage-training-dataset.csv"
    lines = csv.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:2] + ["yes"])
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(LayoutError) as err:
        read_boneage(root)
    message = str(err.value)
    assert "4 problem(s)" in message, message
    assert f"its image {first} is missing" in message
    assert "9999.png has no row in" in message and "1400.jpg: unexpected suffix" in message
    assert "male must be True or False, got 'yes'" in message
    assert "kaggle.com/datasets/kmader/rsna-bone-age" in message


def test_missing_or_empty_data_is_reported_with_the_place_to_put_it(tmp_path):
    with pytest.raises(LayoutError, match="the data set is not there") as err:
        BoneAgeDataModule(str(tmp_path)).prepare_data()
    assert "boneage-training-dataset/boneage-training-dataset/*.png" in str(err.value)
    (tmp_path / "rsna_boneage/boneage-training-dataset/boneage-training-dataset").mkdir(parents=True)
    with pytest.raises(LayoutError, match="boneage-training-dataset/ is empty"):
        BoneAgeDataModule(str(tmp_path)).prepare_data()
    with pytest.raises(ValueError, match="cannot be downloaded"):
        BoneAgeDataModule(str(tmp_path), download=True)


def test_the_experiment_feeds_sex_to_the_net_and_logs_mae_and_rmse(replica, tmp_path):
    cfg = compose(
        [
            "+experiment=boneage",
            *QUIET,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "data.batch_size=4",
            "data.num_workers=0",
            "data.image_size=[64,64]",
            "test_after_fit=false",
        ],
        tmp_path,
    )
    cfg.paths.data_dir = str(replica.parent)
    datamodule, task, _ = run.build(cfg)
    assert task.input_keys == ["image", "male"] and type(task.net).__name__ == "FusionNet"
    metrics = run.train(cfg)
    assert {"val/mae", "val/rmse", "val/mae_best"} <= metrics.keys()
    assert 0 < metrics["val/mae"] <= metrics["val/rmse"]
