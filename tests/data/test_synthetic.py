"""The synthetic demo task: Decathlon layout, geometry, determinism, and that it needs learning."""

import itertools
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from eisen_lightning.data.synthetic import DEMO_LABELS, write_decathlon_replica, write_demo_task

NUM_TRAINING, NUM_TEST = 8, 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_demo_task(tmp_path_factory.mktemp("demo") / "Task00_Demo", NUM_TRAINING, NUM_TEST, seed=0)


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def training_arrays(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    meta = json.loads((root / "dataset.json").read_text())
    images = [load(root / case["image"]) for case in meta["training"]]
    labels = [load(root / case["label"]) for case in meta["training"]]
    return images, labels


def best_threshold_dice(images: list[np.ndarray], labels: list[np.ndarray], num_quantiles: int = 40) -> float:
    """Best mean Dice (labels 1 and 2, pooled over cases) of any two-threshold, three-bin intensity rule.

    Thresholds ``t1 < t2`` run over ``num_quantiles`` quantiles of the pooled intensities; the bins
    ``x < t1``, ``t1 <= x < t2``, ``x >= t2`` are each given any label in {0, 1, 2} (all 27 maps).
    """
    x = np.concatenate([i.ravel() for i in images])
    y = np.concatenate([lab.ravel() for lab in labels]).astype(np.int64)
    edges = np.quantile(x, np.linspace(0, 1, num_quantiles + 2)[1:-1])
    fine_bin = np.searchsorted(edges, x, side="right")  # x >= edges[k - 1] and x < edges[k]
    counts = np.zeros((3, num_quantiles + 1))
    np.add.at(counts, (y, fine_bin), 1)
    # below[:, m]: voxels of each label with x < edges[m - 1]
    below = np.concatenate([np.zeros((3, 1)), np.cumsum(counts, axis=1)], axis=1)
    i, j = np.triu_indices(num_quantiles, k=1)  # t1 = edges[i] < t2 = edges[j]
    low, mid_high = below[:, i + 1], below[:, j + 1]
    bins = np.stack([low, mid_high - low, below[:, -1:] - mid_high], axis=-1)  # (label, pair, bin)
    total = bins.sum(axis=0)  # (pair, bin)
    maps = np.array(list(itertools.product(range(3), repeat=3)))  # (27, bin) -> label
    dices = []
    for label in (1, 2):
        chosen = (maps == label).astype(float)  # (map, bin)
        intersection = chosen @ bins[label].T  # (map, pair)
        predicted = chosen @ total.T
        dices.append(2 * intersection / (predicted + counts[label].sum()))
    return float(np.max((dices[0] + dices[1]) / 2))


def test_layout_is_decathlon(demo):
    meta = json.loads((demo / "dataset.json").read_text())
    for key in ("name", "labels", "modality", "training", "test", "numTraining", "numTest"):
        assert key in meta, key
    assert meta["name"] == "Demo"
    assert meta["labels"] == {"0": "background", "1": "organ", "2": "lesion"}
    assert list(meta["labels"].values()) == list(DEMO_LABELS)
    assert meta["modality"] == {"0": "MRI"}
    assert meta["numTraining"] == len(meta["training"]) == NUM_TRAINING
    assert meta["numTest"] == len(meta["test"]) == NUM_TEST
    assert sorted(p.name for p in demo.iterdir()) == ["dataset.json", "imagesTr", "imagesTs", "labelsTr"]
    for case in meta["training"]:
        assert set(case) == {"image", "label"}
        assert case["image"].startswith("./imagesTr/") and case["image"].endswith(".nii.gz")
        assert case["label"] == case["image"].replace("imagesTr", "labelsTr")
    assert all(p.startswith("./imagesTs/") and p.endswith(".nii.gz") for p in meta["test"])
    listed = {(demo / c["image"]).resolve() for c in meta["training"]} | {
        (demo / p).resolve() for p in meta["test"]
    }
    on_disk = {p.resolve() for p in (demo / "imagesTr").iterdir()} | {
        p.resolve() for p in (demo / "imagesTs").iterdir()
    }
    assert listed == on_disk
    assert {(demo / c["label"]).resolve() for c in meta["training"]} == {
        p.resolve() for p in (demo / "labelsTr").iterdir()
    }


def test_geometry(demo):
    for path in sorted((demo / "imagesTr").iterdir())[:3]:
        image = nib.load(path)
        label = nib.load(demo / "labelsTr" / path.name)
        assert image.shape == label.shape == (48, 48, 28)
        assert not np.allclose(image.affine, np.eye(4))
        assert np.allclose(image.affine, label.affine)
        zooms = np.array(image.header.get_zooms())
        assert len(zooms) == 3
        assert zooms.max() - zooms.min() > 0.5  # anisotropic: in-plane ~1.3 mm, slices 2.5 mm
        assert np.allclose(np.linalg.norm(image.affine[:3, :3], axis=0), zooms, atol=1e-4)
        # an oblique affine: not a pure scaling
        off_diagonal = image.affine[:3, :3] - np.diag(np.diag(image.affine[:3, :3]))
        assert np.abs(off_diagonal).max() > 0.05


def test_labels_and_dtypes(demo):
    images, labels = training_arrays(demo)
    for image, label in zip(images, labels, strict=True):
        assert image.dtype == np.float32
        assert np.issubdtype(label.dtype, np.integer)
        assert set(np.unique(label).tolist()) == {0, 1, 2}
        # the lesion sits inside the organ, a small part of it
        assert 0 < (label == 2).sum() < (label == 1).sum()


def test_second_generation_is_a_no_op(demo):
    files = [demo / "dataset.json", *sorted((demo / "imagesTr").iterdir())]
    before = [p.stat().st_mtime_ns for p in files]
    assert write_demo_task(demo, NUM_TRAINING, NUM_TEST, seed=0) == demo
    assert write_demo_task(demo, num_training=3, num_test=0, seed=5) == demo  # an existing task is kept
    assert [p.stat().st_mtime_ns for p in files] == before
    assert len(json.loads((demo / "dataset.json").read_text())["training"]) == NUM_TRAINING
    assert [p.name for p in demo.parent.iterdir()] == [demo.name]  # no staging folder left behind


def test_deterministic_for_a_seed(tmp_path):
    a = write_demo_task(tmp_path / "a" / "Task00_Demo", num_training=3, num_test=1, seed=7)
    b = write_demo_task(tmp_path / "b" / "Task00_Demo", num_training=3, num_test=1, seed=7)
    c = write_demo_task(tmp_path / "c" / "Task00_Demo", num_training=3, num_test=1, seed=8)
    assert (a / "dataset.json").read_text() == (b / "dataset.json").read_text()
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        names = sorted(p.name for p in (a / sub).iterdir())
        assert names == sorted(p.name for p in (b / sub).iterdir())
        for name in names:
            assert np.array_equal(load(a / sub / name), load(b / sub / name))
            assert np.allclose(nib.load(a / sub / name).affine, nib.load(b / sub / name).affine)
    assert not np.array_equal(load(a / "imagesTr" / "demo_0.nii.gz"), load(c / "imagesTr" / "demo_0.nii.gz"))


# 204 = 41 * 5 - 1 quantiles: a grid five times finer than (and containing) the 40-quantile grid, fine
# enough to isolate a class that fills 1 % of the voxels (the lesion does).
QUANTILES = 204


def test_no_global_threshold_solves_the_demo(demo):
    images, labels = training_arrays(demo)
    assert len(images) == NUM_TRAINING
    assert best_threshold_dice(images, labels, num_quantiles=40) < 0.6
    best = best_threshold_dice(images, labels, num_quantiles=QUANTILES)
    assert best < 0.6, best


def test_threshold_helper_solves_the_demo_once_the_lesion_has_its_own_intensity(demo):
    """Control: the same helper, data and grid do reach a high Dice when intensity alone separates."""
    images, labels = training_arrays(demo)
    brightened = [image + 3.0 * (label == 2) for image, label in zip(images, labels, strict=True)]
    assert best_threshold_dice(brightened, labels, num_quantiles=QUANTILES) > 0.8


def test_replica_rejects_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="Task11_Kidney"):
        write_decathlon_replica(tmp_path, "Task11_Kidney")
    with pytest.raises(ValueError, match="Task09_Spleen"):  # the message lists the valid names
        write_decathlon_replica(tmp_path, "spleen")
    assert list(tmp_path.iterdir()) == []
