"""HD95 and surface Dice: hand-computed values, epochs, missing classes, StageMetrics, DDP sync."""

from functools import partial

import numpy as np
import pytest
import surface_ddp_worker
import torch

from eisen_lightning import keys
from eisen_lightning.metrics import HausdorffDistance95, SurfaceDice
from eisen_lightning.tasks.metrics import StageMetrics

pytest.importorskip("scipy", reason="MONAI's surface distances need scipy")

NAMES = ["background", "organ", "lesion"]


def _cube(size: int = 20, start: int = 5, side: int = 6, label: int = 1) -> torch.Tensor:
    volume = torch.zeros(1, size, size, size, dtype=torch.long)
    volume[0, start : start + side, start : start + side, start : start + side] = label
    return volume


def _case(seed: int, size: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping boxes per class, placed by the seed: a case with non-trivial distances."""
    generator = np.random.default_rng(seed)
    pred, target = np.zeros((2, size, size, size), dtype=np.int64)
    for volume in (pred, target):
        for label, side in ((1, 6), (2, 3)):
            lo = generator.integers(1, size - side - 1, 3)
            volume[lo[0] : lo[0] + side, lo[1] : lo[1] + side, lo[2] : lo[2] + side] = label
    return torch.from_numpy(pred)[None], torch.from_numpy(target)[None]


# -- an independent numpy computation of both metrics --------------------------------------------
def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxel coordinates of the mask's surface: voxels with a 6-neighbour outside (image border = outside)."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis)[1:-1, 1:-1, 1:-1]
    return np.argwhere(mask & ~inner).astype(float)


def _distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    return np.sqrt((((a[:, None] - b[None]) * np.asarray(spacing)) ** 2).sum(-1)).min(1)


def _numpy_hd95_and_nsd(pred, target, label, spacing, tolerance):
    a, b = _surface(pred == label), _surface(target == label)
    ab, ba = _distances(a, b, spacing), _distances(b, a, spacing)
    hd95 = max(np.percentile(ab, 95), np.percentile(ba, 95))
    nsd = ((ab <= tolerance).sum() + (ba <= tolerance).sum()) / (len(ab) + len(ba))
    return hd95, nsd


# -- values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("side", "shift", "axis"), [(6, 2, 1), (6, 3, 2), (4, 2, 3), (5, 4, 1)])
def test_shifted_cube_gives_hd95_equal_to_the_shift(side, shift, axis):
    target = _cube(side=side)
    pred = torch.roll(target, shift, dims=axis)
    metric, in_mm = HausdorffDistance95(2), HausdorffDistance95(2, spacing=[1.5, 1.5, 1.5])
    metric.update(pred, target)
    in_mm.update(pred, target)
    assert float(metric.compute()) == pytest.approx(shift)
    assert float(in_mm.compute()) == pytest.approx(1.5 * shift)
    within, short = SurfaceDice(2, class_thresholds=shift), SurfaceDice(2, class_thresholds=shift - 0.5)
    within.update(pred, target)
    short.update(pred, target)
    assert float(within.compute()) == pytest.approx(1.0)
    assert 0.0 < float(short.compute()) < 1.0


def test_identical_masks_give_zero_distance_and_surface_dice_one():
    target = _cube() + _cube(start=12, side=3, label=2)
    hd, nsd = HausdorffDistance95(3), SurfaceDice(3, class_thresholds=[0.5, 0.5])
    hd.update(target, target)
    nsd.update(target, target)
    assert hd.compute().tolist() == [0.0, 0.0]
    assert nsd.compute().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("spacing", [None, [0.8, 1.0, 2.5]])
def test_values_match_an_independent_numpy_computation(spacing):
    pred, target = _case(seed=3)
    hd, nsd = (
        HausdorffDistance95(3, spacing=spacing),
        SurfaceDice(3, class_thresholds=[1.5, 1.0], spacing=spacing),
    )
    hd.update(pred, target)
    nsd.update(pred, target)
    expected = [
        _numpy_hd95_and_nsd(pred[0].numpy(), target[0].numpy(), label, spacing or [1, 1, 1], tolerance)
        for label, tolerance in ((1, 1.5), (2, 1.0))
    ]
    assert hd.compute().tolist() == pytest.approx([e[0] for e in expected], rel=1e-5)
    assert nsd.compute().tolist() == pytest.approx([e[1] for e in expected], rel=1e-5)


def test_2d_label_maps_and_background_can_be_scored():
    target = torch.zeros(2, 12, 12, dtype=torch.long)
    target[:, 3:8, 3:8] = 1
    metric = HausdorffDistance95(2, include_background=True)
    metric.update(torch.roll(target, 1, dims=1), target)
    assert metric.compute().tolist() == pytest.approx([1.0, 1.0])


# -- epoch accumulation and missing classes -------------------------------------------------------
@pytest.mark.parametrize("metric_class", [HausdorffDistance95, SurfaceDice])
def test_epoch_value_is_the_mean_over_cases_whatever_the_batch_sizes(metric_class):
    cases = [_case(seed) for seed in range(5)]
    per_case = []
    for pred, target in cases:
        single = metric_class(3)
        single.update(pred, target)
        per_case.append(single.compute())
    epoch = metric_class(3)
    for batch in (cases[:3], cases[3:]):  # batches of 3 and 2 cases
        epoch.update(torch.cat([c[0] for c in batch]), torch.cat([c[1] for c in batch]))
    assert torch.allclose(epoch.compute(), torch.stack(per_case).mean(0))
    epoch.reset()
    with pytest.warns(UserWarning, match="called before the ``update``"):
        assert torch.isnan(epoch.compute()).all(), "reset forgets the epoch; no case gives NaN"


def test_absent_class_is_left_out_and_a_missed_class_gets_the_worst_value():
    target = _cube(size=10, start=2, side=4)  # organ only; lesion absent from both
    shifted = torch.roll(target, 1, dims=1)
    hd, nsd = HausdorffDistance95(3), SurfaceDice(3)
    hd.update(shifted, target)
    nsd.update(shifted, target)
    assert hd.compute()[0] == pytest.approx(1.0) and torch.isnan(hd.compute()[1])
    assert torch.isnan(nsd.compute()[1])
    missed = torch.zeros_like(target)  # organ in the reference only
    extra = target * 2  # lesion in the prediction only, organ in the reference only
    for pred in (missed, extra):
        hd, nsd = HausdorffDistance95(3, spacing=2.0), SurfaceDice(3)
        hd.update(pred, target)
        nsd.update(pred, target)
        assert hd.compute()[0] == pytest.approx(np.sqrt(3 * 20.0**2)), "diagonal of the 10^3 image at 2 mm"
        assert nsd.compute()[0] == 0.0
    assert hd.compute()[1] == pytest.approx(np.sqrt(3 * 20.0**2)) and nsd.compute()[1] == 0.0
    both = HausdorffDistance95(3)
    both.update(torch.cat([shifted, extra]), torch.cat([target, target]))
    # lesion: NaN in the first case (absent), worst in the second: the mean is over the second only
    assert both.compute()[1] == pytest.approx(np.sqrt(300.0))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: HausdorffDistance95(1), "num_classes must be an integer >= 2"),
        (lambda: HausdorffDistance95(3, spacing=[1.0, -1.0, 1.0]), "spacing must be null, one positive"),
        (lambda: SurfaceDice(3, class_thresholds=[1.0]), None),
        (lambda: SurfaceDice(3, class_thresholds=[1.0, 2.0, 3.0]), "class_thresholds must be one positive"),
        (lambda: SurfaceDice(3, class_thresholds=0), "class_thresholds must be one positive"),
    ],
)
def test_invalid_arguments_are_named(build, message):
    if message is None:
        assert build().class_thresholds == [1.0, 1.0]
        return
    with pytest.raises(ValueError, match=message):
        build()


def test_invalid_inputs_are_named():
    metric = HausdorffDistance95(3, spacing=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"same shape \(B, \*spatial\), got \(1, 4, 4, 4\) and \(1, 4, 4\)"):
        metric.update(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r"without a channel axis, got shape \(1, 1, 4, 4, 4\)"):
        metric.update(torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"target holds class indices outside \[0, 2\] \(num_classes=3\)"):
        metric.update(torch.zeros(1, 4, 4, 4), torch.full((1, 4, 4, 4), 3))
    with pytest.raises(ValueError, match="spacing has 2 values"):
        metric.update(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4))


# -- wiring into the tasks' StageMetrics --------------------------------------------------------------
def test_stage_metrics_log_them_per_class():
    factories = {"hd95": HausdorffDistance95, "surface_dice": partial(SurfaceDice, class_thresholds=1.0)}
    metrics = StageMetrics(factories, {"num_classes": 3}, NAMES, "surface_dice")
    pred, target = _case(seed=1)
    metrics.update(keys.VAL, pred, target)
    logged = metrics.compute(keys.VAL, track_best=True)
    assert {"val/hd95", "val/hd95/organ", "val/hd95/lesion", "val/surface_dice/lesion"} <= logged.keys()
    assert logged["val/hd95"] == pytest.approx((logged["val/hd95/organ"] + logged["val/hd95/lesion"]) / 2)
    assert logged["val/surface_dice_best"] == logged["val/surface_dice"]


def test_full_metrics_task_config_builds_working_metrics(tmp_path):
    from hydra.utils import instantiate

    from conftest import compose

    cfg = compose(
        ["task=segmentation_full_metrics", "dataset.num_classes=3", "dataset.label_names=[a,b,c]"], tmp_path
    )
    factories = {name: instantiate(node) for name, node in cfg.task.metrics.items()}
    assert set(factories) == {"dice", "hd95", "surface_dice"}
    metrics = StageMetrics(factories, {"num_classes": 3}, ["a", "b", "c"], cfg.task.best_metric)
    assert metrics.stages[keys.VAL]["hd95"].spacing == list(cfg.data.spacing)
    metrics.update(keys.TEST, *_case(seed=2))
    logged = metrics.compute(keys.TEST, track_best=False)
    assert {"test/dice/b", "test/hd95/c", "test/surface_dice"} <= logged.keys()


# -- DDP ------------------------------------------------------------------------------------------------
def test_compute_is_synced_across_processes(tmp_path):
    cases = [_case(seed) for seed in range(4)]
    torch.multiprocessing.spawn(
        surface_ddp_worker.run, args=(2, str(tmp_path / "init"), cases, str(tmp_path)), nprocs=2, join=True
    )
    hd, nsd = HausdorffDistance95(3), SurfaceDice(3)
    for pred, target in cases:
        hd.update(pred, target)
        nsd.update(pred, target)
    local = HausdorffDistance95(3)
    local.update(*cases[3])
    assert not torch.allclose(local.compute(), hd.compute(), equal_nan=True), "rank 1 alone differs"
    for rank in (0, 1):
        synced = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.allclose(synced["hd"], hd.compute(), equal_nan=True)
        assert torch.allclose(synced["nsd"], nsd.compute(), equal_nan=True)
