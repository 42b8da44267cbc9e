"""Real short runs with the default config, read back with TensorBoard's EventAccumulator: tags and kinds."""

import re

import pytest
from summaries_helpers import (
    NAMES,
    ShapesData,
    classification_task,
    events,
    frame_count,
    image_bytes,
    plugin,
    text,
    trainer,
)

from conftest import QUIET, compose

PNG = b"\x89PNG"
GIF = b"GIF8"
CLASSES = ["organ", "lesion"]


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory):
    """The demo with no summaries option given: 2 epochs, then the test stage."""
    from eisen_lightning import run

    root = tmp_path_factory.mktemp("segmentation")
    overrides = [
        "data.num_training=10",
        "data.num_test=0",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "test_after_fit=true",
        *QUIET,
    ]
    cfg = compose(overrides, root)
    metrics = run.train(cfg)
    return events(root / "run" / "tensorboard"), metrics


@pytest.fixture(scope="module", params=[False, True], ids=["multiclass", "multilabel"])
def classification(request, tmp_path_factory):
    from eisen_lightning.callbacks import TensorBoardSummaries

    root = tmp_path_factory.mktemp("classification")
    run = trainer(root, [TensorBoardSummaries()])
    task, data = classification_task(request.param), ShapesData(request.param)
    run.fit(task, datamodule=data)
    run.test(task, datamodule=data)
    return events(root / "tensorboard"), request.param


def _stats(stage, name, per):
    return {f"{stage}/{name}/mean", f"{stage}/{name}/std"}, {f"{stage}/{name}/{per}"}


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_segmentation_scalars_and_histograms(segmentation, stage):
    accumulator, _ = segmentation
    scalars, histograms = set(accumulator.Tags()["scalars"]), set(accumulator.Tags()["histograms"])
    # Training steps return the logits only: no argmax per training batch, so no training Dice.
    metrics = [] if stage == "train" else [(f"dice/{c}", "cases") for c in CLASSES]
    for name, per in [("loss", "batches"), *metrics]:
        means, values = _stats(stage, name, per)
        assert means <= scalars and values <= histograms
    outputs = ["outputs/output"] + ([] if stage == "train" else ["outputs/pred"])
    for tensor in ["inputs/image", "inputs/label", *outputs]:
        assert {f"{stage}/{tensor}/mean", f"{stage}/{tensor}/std"} <= scalars
        assert f"{stage}/{tensor}/values" in histograms
    assert f"{stage}/loss/batches" in accumulator.Tags()["distributions"]


def test_segmentation_per_case_dice_agrees_with_the_task_metric(segmentation):
    accumulator, metrics = segmentation
    for name in CLASSES:
        ours = accumulator.Scalars(f"test/dice/{name}/mean")[-1].value
        assert ours == pytest.approx(metrics[f"test/dice/{name}"], abs=1e-4)


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_segmentation_volumes_are_animated_gifs(segmentation, stage):
    accumulator, _ = segmentation
    images = set(accumulator.Tags()["images"])
    tags = [f"{stage}/images/image/axis2"]
    tags += [f"{stage}/compare/label_vs_pred/axis2"]
    assert f"{stage}/images/label/axis2" not in images, "label and pred are drawn in their comparison"
    for tag in tags:
        assert tag in images
        encoded = image_bytes(accumulator, tag)
        assert encoded.startswith(GIF) and frame_count(encoded) > 1, tag
    assert len(accumulator.Images(f"{stage}/images/image/axis2")) == (1 if stage == "test" else 2)


@pytest.mark.parametrize("stage", ["val", "test"])
def test_segmentation_case_table_and_worst_cases(segmentation, stage):
    accumulator, _ = segmentation
    table = text(accumulator, f"{stage}/cases")
    assert "| rank | case | dice/organ | dice/lesion | mean |" in table
    case_ids = re.findall(r"\| \d+ \| (demo_\d+) \|", table)
    assert case_ids and len(case_ids) == len(set(case_ids))
    images = set(accumulator.Tags()["images"])
    assert f"the first {min(3, len(case_ids))} are drawn in `worst_cases`" in table
    assert [t for t in images if t.startswith(f"{stage}/worst_cases")] == [f"{stage}/worst_cases/axis2"]
    assert image_bytes(accumulator, f"{stage}/worst_cases/axis2").startswith(GIF)
    assert "lesion" in text(accumulator, "legend")


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_classification_tags(classification, stage):
    accumulator, multilabel = classification
    tags = accumulator.Tags()
    for name, per in [("loss", "batches"), ("accuracy", "batches")]:
        means, values = _stats(stage, name, per)
        assert means <= set(tags["scalars"]) and values <= set(tags["histograms"])
    for tensor in ["inputs/image", "inputs/label", "outputs/output", "outputs/prob", "outputs/pred"]:
        assert f"{stage}/{tensor}/values" in tags["histograms"]
        assert f"{stage}/{tensor}/mean" in tags["scalars"]
    assert image_bytes(accumulator, f"{stage}/images/image").startswith(PNG), "2D grids are PNG"
    assert image_bytes(accumulator, f"{stage}/confusion_matrix").startswith(PNG)
    for name in NAMES:
        assert plugin(accumulator, f"{stage}/pr_curve/{name}") == "pr_curves"
    if stage != "train":
        table = text(accumulator, f"{stage}/cases")
        assert "p(true)" in table or multilabel
        assert "img0" in table
        assert image_bytes(accumulator, f"{stage}/worst_cases").startswith(PNG)
