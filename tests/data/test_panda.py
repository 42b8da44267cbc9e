"""PANDA: train.csv with pyramidal tiled TIFF slides and masks, tile mosaics, layout errors."""

import shutil

import pytest
import tifffile
import torch
from monai.transforms import Compose

from eisen_lightning.data import PandaDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.panda import read_panda
from eisen_lightning.data.panda import TileMosaicd


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return PandaDataModule.write_replica(str(tmp_path_factory.mktemp("panda_data")))


def test_slides_are_tiled_pyramids_with_masks(replica):
    slides = sorted((replica / "train_images").glob("*.tiff"))
    with tifffile.TiffFile(slides[0]) as tif:
        assert tif.pages[0].is_tiled
        assert [level.shape for level in tif.series[0].levels] == [(768, 1024, 3), (192, 256, 3), (48, 64, 3)]
    assert len(list((replica / "train_label_masks").glob("*_mask.tiff"))) == len(slides) - 1


def test_layout_has_eisens_fields_and_the_isup_grade_as_label(replica):
    cases = read_panda(replica).labelled
    rows = [r.split(",") for r in (replica / "train.csv").read_text().splitlines()]
    assert rows[0] == ["image_id", "data_provider", "isup_grade", "gleason_score"]
    assert len(cases) == 12 and sorted({c["label"] for c in cases}) == list(range(6))
    first, second = cases[0], cases[1]
    assert first["case_id"] == rows[1][0] and first["provider"] == rows[1][1]
    assert first["isup"] == first["label"] == int(rows[1][2]) and first["gleason"] == rows[1][3]
    assert first["image"].endswith(f"train_images/{rows[1][0]}.tiff")
    assert first["mask"].endswith(f"train_label_masks/{rows[1][0]}_mask.tiff") and second["mask"] == ""
    assert any(c["gleason"] == "negative" for c in cases)


def test_the_mosaic_holds_the_tissue_richest_tiles_first(replica):
    dm = PandaDataModule(str(replica.parent), level=1, tile_size=32, num_tiles=9)
    case = next(c for c in dm.labelled_cases() if c["label"] == 5)
    image = Compose(dm.eval_transforms())(dict(case))["image"]
    assert image.shape == (3, 96, 96) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    tiles = [image[:, r : r + 32, c : c + 32].mean() for r in (0, 32, 64) for c in (0, 32, 64)]
    assert tiles == sorted(tiles, reverse=True) and tiles[0] > 0.1  # inverted: tissue is bright


def test_tile_mosaic_arranges_tiles_row_by_row():
    tiles = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 1, 2, 2)
    mosaic = TileMosaicd(["image"], fill=-1.0)({"image": tiles})["image"]
    assert mosaic.shape == (1, 4, 4)
    assert mosaic[0, ::2, ::2].tolist() == [[0.0, 1.0], [2.0, -1.0]]


def test_every_layout_problem_is_listed_in_one_error(replica, tmp_path):
    root = tmp_path / "panda"
    shutil.copytree(replica, root)
    slides = sorted((root / "train_images").glob("*.tiff"))
    slides[0].unlink()  # a CSV row without its slide
    (root / "train_label_masks" / f"{slides[0].stem}_mask.tiff").rename(
        root / "train_label_masks" / "orphan_mask.tiff"
    )
    (root / "train_images" / "extra.tif").write_bytes(b"II*\0")  # wrong suffix
    lines = (root / "train.csv").read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:2] + ["7", "5+5"])
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(LayoutError) as err:
        read_panda(root)
    message = str(err.value)
    assert "4 problem(s)" in message, message
    assert f"its slide {slides[0]} is missing" in message
    assert "extra.tif: unexpected suffix, expected one of ['.tiff']" in message
    assert "isup_grade must be 0 to 5, got '7'" in message
    assert "orphan_mask.tiff is a mask without its slide" in message
    assert "kaggle.com/c/prostate-cancer-grade-assessment" in message


def test_missing_data_and_bad_settings_are_reported(tmp_path):
    with pytest.raises(LayoutError, match="the data set is not there") as err:
        PandaDataModule(str(tmp_path)).prepare_data()
    assert f"{tmp_path / 'panda'}/train.csv" in str(err.value)
    with pytest.raises(ValueError, match="data.num_tiles must be an integer >= 1, got 0"):
        PandaDataModule(str(tmp_path), num_tiles=0)
