"""Summaries of multi-label (region) segmentation: Dice per region channel, regions drawn as label maps."""

import numpy as np
import pytest
import torch
from hydra.utils import get_class
from summaries_helpers import events, image_bytes, text

from conftest import QUIET, compose
from eisen_lightning.callbacks.collect import EpochRecord, TaskInfo, region_dice
from eisen_lightning.callbacks.render import region_map

REGIONS = ["TC", "WT", "ET"]


def _nested_regions(size: int = 8) -> torch.Tensor:
    """(1, 3, size, size, size) 0/1 maps: ET inside TC inside WT, as BraTS' regions."""
    label = torch.zeros(1, 3, size, size, size)
    label[0, 1, 1:7, 1:7, 1:7] = 1  # WT
    label[0, 0, 2:6, 2:6, 2:6] = 1  # TC
    label[0, 2, 3:5, 3:5, 3:5] = 1  # ET
    return label


def test_region_record_scores_each_channel_and_draws_nested_regions():
    label = _nested_regions()
    pred = label.clone()
    pred[0, 2] = 0  # ET missed entirely
    pred[0, 1, 0, 0, 0] = 1  # one false-positive WT voxel
    info = TaskInfo(["image"], "label", 3, REGIONS, multilabel=True)
    record = EpochRecord(
        stage="val", images=True, max_images=4, worst_cases=3, comparison_pairs=[("label", "pred")]
    )
    batch = {"image": torch.randn(1, 4, 8, 8, 8), "label": label, "case_id": ["BraTS20_001"]}
    outputs = {"loss": torch.tensor(0.5), "output": label * 8 - 4, "pred": pred.long(), "prob": pred}
    record.add(batch, outputs, info)
    dice = {name: torch.cat(values).tolist() for name, values in record.metrics.items()}
    assert dice["dice/TC"] == [pytest.approx(1.0)]
    assert dice["dice/WT"] == [pytest.approx(2 * 216 / (217 + 216))]
    assert dice["dice/ET"] == [0.0]
    drawn = record.samples["label"][0]
    assert drawn.shape == (8, 8, 8)
    assert drawn[4, 4, 4] == 3 and drawn[2, 2, 2] == 1 and drawn[1, 1, 1] == 2 and drawn[0, 0, 0] == 0
    assert record.samples["pred"][0][4, 4, 4] == 1, "ET missed: the voxel shows the tumour core"
    assert record.worst and record.worst[0][2] == "BraTS20_001"


def test_region_dice_rejects_mismatched_shapes_and_keeps_absent_regions_nan():
    empty = torch.zeros(2, 3, 4, 4)
    assert torch.isnan(region_dice(empty, empty)).all()
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\) and \(1, 1, 4, 4\)"):
        region_dice(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))


def test_region_map_paints_smaller_regions_over_larger_ones():
    regions = _nested_regions()[0].numpy()
    labels = region_map(regions)
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3}
    assert (labels == 3).sum() == 8 and (labels == 1).sum() == 64 - 8


@pytest.fixture(scope="module")
def brats_run(tmp_path_factory):
    """One epoch of the BraTS replica with the default callbacks, validated once."""
    from eisen_lightning import run

    root = tmp_path_factory.mktemp("brats_summaries")
    overrides = [
        "+experiment=brats",
        "callbacks=default",
        "data.patch_size=[32,32,32]",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.check_val_every_n_epoch=1",
        *QUIET,
    ]
    cfg = compose(overrides, root)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    metrics = run.train(cfg)
    return events(root / "run" / "tensorboard"), metrics


def test_brats_run_writes_region_summaries(brats_run):
    accumulator, metrics = brats_run
    tags = accumulator.Tags()
    for name in REGIONS:
        assert f"val/dice/{name}/cases" in tags["histograms"]
        ours = accumulator.Scalars(f"val/dice/{name}/mean")[-1].value
        assert ours == pytest.approx(metrics[f"val/dice/{name}"], abs=1e-4)
    for tag in ["val/compare/label_vs_pred/axis2", "val/worst_cases/axis2"]:
        assert image_bytes(accumulator, tag).startswith(b"GIF8"), tag
    assert "| rank | case | dice/TC | dice/WT | dice/ET | mean |" in text(accumulator, "val/cases")
    legend = text(accumulator, "legend")
    assert "| 0 | background |" in legend and "| 3 | ET |" in legend
