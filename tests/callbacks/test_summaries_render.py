"""Renderers and figures of the summaries: any channel count, 2D or 3D, never a crash, right shapes."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from eisen_lightning.callbacks import render
from eisen_lightning.callbacks.collect import EpochRecord, TaskInfo, case_dice, moments
from eisen_lightning.callbacks.figures import (
    confusion_matrix,
    confusion_matrix_image,
    multilabel_confusion_image,
)
from eisen_lightning.callbacks.write import Drawing, write_record

SPATIAL = {2: (12, 10), 3: (12, 10, 7)}


def test_colour_table_is_fixed_wraps_and_greys_ignore_values():
    labels = np.array([0, 1, 2, len(render.PALETTE), 1000, -1])
    rgb = render.colour_labels(labels)
    assert rgb.shape == (6, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0]) == (0, 0, 0)
    assert tuple(rgb[1]) != tuple(rgb[2])
    assert tuple(rgb[3]) == tuple(rgb[1]), "values beyond the table wrap around it, never black"
    assert rgb[4].any()
    assert tuple(rgb[5]) == tuple(render.IGNORE_COLOUR)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_image_panels_any_channel_count(dims, channels):
    image = np.random.default_rng(0).normal(size=(channels, *SPATIAL[dims])).astype(np.float32)
    panels = render.image_panels(image)
    assert len(panels) == min(channels, render.MAX_CHANNELS)
    assert all(p.shape == (*SPATIAL[dims], 3) and p.dtype == np.uint8 for p in panels)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_label_map_of_any_channel_count_is_an_integer_map(dims, channels):
    scores = np.random.default_rng(1).normal(size=(channels, *SPATIAL[dims]))
    labels = render.label_map(scores)
    assert labels.shape == SPATIAL[dims] and np.issubdtype(labels.dtype, np.integer)
    if channels > 1:
        assert np.array_equal(labels, scores.argmax(axis=0))
    assert render.colour_labels(labels).shape == (*SPATIAL[dims], 3)


def test_float_label_maps_are_rounded_and_constant_or_nan_images_do_not_crash():
    assert render.label_map(np.array([[[0.0, 0.9999, 2.0001]]])).tolist() == [[0, 1, 2]]
    flat = render.grey(np.full((4, 4), 7.0))
    assert flat.dtype == np.uint8 and flat.shape == (4, 4)
    assert render.grey(np.array([np.nan, 1.0, np.inf])).dtype == np.uint8


def test_overlay_colours_only_labelled_pixels():
    background = np.full((3, 3), 100, dtype=np.uint8)
    labels = np.zeros((3, 3), dtype=int)
    labels[1, 1] = 1
    mixed = render.overlay(background, labels)
    assert mixed.shape == (3, 3, 3) and mixed.dtype == np.uint8
    assert tuple(mixed[0, 0]) == (100, 100, 100)
    assert tuple(mixed[1, 1]) != (100, 100, 100)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_grid_frames_slide_through_any_axis_and_pad_different_sizes(axis):
    big = render.colour_labels(np.ones((8, 6, 5), dtype=int))
    small = render.colour_labels(np.ones((4, 6, 3), dtype=int))
    frames = render.grid_frames([[big, small], [small]], axis=axis)
    assert len(frames) == (8, 6, 5)[axis]
    assert len({f.shape for f in frames}) == 1 and frames[0].dtype == np.uint8
    assert len(render.grid_frames([[big]], axis=0, max_frames=3)) == 3


def test_grid_frames_of_2d_panels_is_one_frame_and_mixed_dims_fail():
    flat = render.colour_labels(np.zeros((5, 5), dtype=int))
    assert len(render.grid_frames([[flat, flat]])) == 1
    with pytest.raises(ValueError, match="2D or all 3D"):
        render.grid_frames([[flat, render.colour_labels(np.zeros((5, 5, 5), dtype=int))]])


def test_encode_gif_is_an_animated_gif():
    frames = [np.full((6, 9, 3), 20 * i, dtype=np.uint8) for i in range(5)]
    encoded = render.encode_gif(frames, fps=5)
    assert encoded.startswith(b"GIF8")
    gif = Image.open(io.BytesIO(encoded))
    assert gif.size == (9, 6) and gif.n_frames == 5 and gif.info["duration"] == 200


def test_confusion_matrix_images():
    matrix = confusion_matrix(np.array([0, 1, 2, 2, 7]), np.array([0, 2, 2, 1, 0]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]], "out-of-range labels are left out"
    image = confusion_matrix_image(matrix, ["background", "a rather long class name here", "x"])
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    many = confusion_matrix_image(np.eye(40, dtype=int), [f"c{i}" for i in range(40)])
    assert many.shape[0] > 40 * 20
    with pytest.raises(ValueError, match="does not match"):
        confusion_matrix_image(matrix, ["a", "b"])
    target = np.array([[1, 0], [0, 1], [1, 1]])
    assert multilabel_confusion_image(target, target[::-1], ["a", "b"]).shape[2] == 3


def test_case_dice_counts_false_positives_and_skips_absent_classes():
    target = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]]).view(2, 1, 4)
    pred = torch.tensor([[0, 1, 0, 0], [0, 2, 0, 0]]).view(2, 1, 4)
    dice = case_dice(pred, target, 3)
    assert dice[0, 0].item() == pytest.approx(2 / 3)
    assert torch.isnan(dice[0, 1]) and torch.isnan(dice[1, 0])
    assert dice[1, 1].item() == 0.0, "a class predicted where the reference has none scores 0"


def test_moments_combine_batches_exactly():
    parts = [torch.randn(5, 3), torch.randn(2, 7) * 3 + 1]
    combined = moments([(p.numel(), *reversed(torch.var_mean(p, unbiased=False))) for p in parts])
    every = torch.cat([p.reshape(-1) for p in parts])
    assert combined == pytest.approx((every.mean().item(), every.std(unbiased=False).item()), rel=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_a_whole_epoch_of_any_channel_count_writes_without_crashing(dims, channels, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    classes = max(channels, 2)
    info = TaskInfo(["image"], "label", classes, [f"c{i}" for i in range(classes)])
    record = EpochRecord("val", True, 3, 2, [("label", "pred")])
    for seed in range(2):
        generator = torch.Generator().manual_seed(seed)
        batch = {
            "image": torch.randn(2, channels, *SPATIAL[dims], generator=generator),
            "label": torch.randint(0, classes + 30, (2, 1, *SPATIAL[dims]), generator=generator).float(),
            "case_id": [f"case{seed}{i}" for i in range(2)],
            "meta": {},
        }
        output = torch.randn(2, channels, *SPATIAL[dims], generator=generator)
        outputs = {"loss": torch.tensor(0.5), "output": output}
        if channels > 1:  # as SegmentationTask's validation step returns it
            outputs["pred"] = output.argmax(dim=1, keepdim=True)
        record.add(batch, outputs, info)
    writer = SummaryWriter(str(tmp_path))
    tags = write_record(writer, record, info, Drawing([0, 1, 2], 16, 10.0), step=3, legend=True)
    writer.close()
    suffix = "/axis0" if dims == 3 else ""
    assert f"val/images/image{suffix}" in tags
    # logits of several channels are drawn as their argmax, the prediction: not twice
    assert (f"val/images/output{suffix}" in tags) is (channels == 1)
    assert "legend" in tags
    if channels > 1:  # a prediction (argmax) exists, so Dice, overlays and worst cases do
        assert f"val/compare/label_vs_pred{suffix}" in tags and "val/dice/c1/mean" in tags
        assert f"val/worst_cases{suffix}" in tags and "val/cases" in tags
    if dims == 3:
        assert {f"val/images/image/axis{a}" for a in range(3)} <= set(tags)


def test_a_drawn_epoch_keeps_copies_not_views_of_the_batch():
    """Views would hold every batch tensor until the epoch ends (fresh pages for every step)."""
    info = TaskInfo(["image"], "label", 3, ["a", "b", "c"])
    record = EpochRecord("train", True, 4, 0, [("label", "pred")])
    batch = {"image": torch.randn(2, 1, 8, 8, 8), "label": torch.randint(0, 3, (2, 1, 8, 8, 8)).float()}
    output = torch.randn(2, 3, 8, 8, 8)
    record.add(batch, {"loss": torch.tensor(0.5), "output": output}, info)
    held = {t.untyped_storage().data_ptr() for t in (batch["image"], batch["label"], output)}
    kept = [v for parts in record.values.values() for v in parts]
    assert kept and not {v.untyped_storage().data_ptr() for v in kept} & held
    image = batch["image"].numpy()
    assert record.samples["image"] and not any(np.shares_memory(s, image) for s in record.samples["image"])
