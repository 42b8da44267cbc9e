"""Surface metrics of segmentation (HD95, surface Dice) as epoch-level, DDP-synced torchmetrics metrics.

The distances are MONAI's (:func:`monai.metrics.compute_hausdorff_distance`,
:func:`monai.metrics.compute_surface_dice`). What we add is the torchmetrics shape MONAI's own
metric classes lack: ``update``/``compute``/``reset`` on label maps, per-case values kept as a
``cat`` state so ``compute`` is synced across processes, a per-class result (``average = "none"``)
that :class:`~eisen_lightning.tasks.metrics.StageMetrics` logs per class, and a fixed rule for
classes missing from a case.

Per case and class:

* class in neither the prediction nor the reference: NaN, left out of the mean over cases;
* class in only one of them: the worst value. Surface Dice is 0 (MONAI's own value). MONAI's
  HD95 is NaN here (older versions gave inf), which would hide a missed structure from a
  NaN-ignoring mean, so we use the diagonal of the image extent (in ``spacing`` units), a
  distance no two voxels of the image can exceed;
* otherwise MONAI's value.
"""

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

SpacingArg = float | Sequence[float] | None


class _SurfaceMetric(Metric):
    """Shared state and input handling: label maps in, a per-class vector (nanmean over cases) out."""

    full_state_update = False
    is_differentiable = False
    #: Read by StageMetrics: the result is one value per class, logged as ``stage/name/<class>``.
    average = "none"

    def __init__(
        self,
        num_classes: int,
        include_background: bool = False,
        spacing: SpacingArg = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"num_classes must be an integer >= 2 (background included), got {num_classes!r}"
            )
        self.num_classes, self.include_background = num_classes, bool(include_background)
        self.spacing = _check_spacing(spacing)
        _require_scipy(type(self).__name__)
        # Flattened (case, class) values: a 1-D `cat` state gathers across processes even when a
        # process saw no case (torchmetrics pads it with an empty 1-D tensor).
        self.add_state("values", default=[], dist_reduce_fx="cat")

    @property
    def num_scored(self) -> int:
        """Number of classes in the result (foreground only unless ``include_background``)."""
        return self.num_classes - (0 if self.include_background else 1)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of cases.

        Args:
            preds: Predicted label map ``(B, *spatial)`` (2-D or 3-D), integer class indices.
            target: Reference label map of the same shape.
        """
        preds, target = self._check_inputs(preds, target)
        spatial = preds.shape[1:]
        spacing = self._spacing_for(len(spatial))
        pred_hot, target_hot = _one_hot(preds, self.num_classes), _one_hot(target, self.num_classes)
        with warnings.catch_warnings():
            # MONAI warns about empty classes and about its own deprecated internal argument;
            # empty classes are handled below, so both are noise here.
            warnings.filterwarnings("ignore", message=r".*(is all 0|always_return_as_numpy).*")
            values = self._per_case(pred_hot, target_hot, spacing).to(torch.float32)
        start = 0 if self.include_background else 1
        in_pred = pred_hot[:, start:].flatten(2).amax(-1) > 0
        in_target = target_hot[:, start:].flatten(2).amax(-1) > 0
        values = torch.where(in_pred ^ in_target, self._worst(spatial, spacing), values)
        values = torch.where(~in_pred & ~in_target, torch.nan, values)
        self.values.append(values.flatten().to(self.device))

    def compute(self) -> torch.Tensor:
        """Per-class mean over every case seen (NaN where no case has the class)."""
        values = dim_zero_cat(self.values) if len(self.values) else torch.empty(0, device=self.device)
        if values.numel() == 0:
            return torch.full((self.num_scored,), torch.nan, device=self.device)
        return torch.nanmean(values.reshape(-1, self.num_scored), dim=0)

    # -- what each metric defines ----------------------------------------------------------------
    def _per_case(
        self, pred_hot: torch.Tensor, target_hot: torch.Tensor, spacing: list[float]
    ) -> torch.Tensor:
        raise NotImplementedError

    def _worst(self, spatial: Sequence[int], spacing: list[float]) -> float:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------------
    def _check_inputs(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if preds.shape != target.shape:
            raise ValueError(
                f"{type(self).__name__}.update needs preds and target of the same shape (B, *spatial), "
                f"got {tuple(preds.shape)} and {tuple(target.shape)}"
            )
        if preds.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}.update needs label maps (B, H, W) or (B, H, W, D) without a channel "
                f"axis, got shape {tuple(preds.shape)}"
            )
        # MONAI's distance computations run on the CPU (scipy) unless cuCIM is installed; the
        # label maps are small next to the distance work, so they are moved there once.
        preds, target = preds.detach().cpu().long(), target.detach().cpu().long()
        for name, value in (("preds", preds), ("target", target)):
            if value.numel() and (value.min() < 0 or value.max() >= self.num_classes):
                raise ValueError(
                    f"{type(self).__name__}: {name} holds class indices outside [0, {self.num_classes - 1}] "
                    f"(num_classes={self.num_classes}): min {int(value.min())}, max {int(value.max())}"
                )
        return preds, target

    def _spacing_for(self, spatial_dims: int) -> list[float]:
        if self.spacing is None:
            return [1.0] * spatial_dims
        if len(self.spacing) == 1:
            return self.spacing * spatial_dims
        if len(self.spacing) != spatial_dims:
            raise ValueError(
                f"spacing has {len(self.spacing)} values {self.spacing} for {spatial_dims}-D label maps; "
                "give one value, one per spatial axis, or null"
            )
        return list(self.spacing)


class HausdorffDistance95(_SurfaceMetric):
    """95th-percentile symmetric Hausdorff distance per class, averaged over the cases of an epoch.

    MONAI's HD95: the larger of the two directed 95th percentiles of the distances between the
    surface voxels of prediction and reference. Lower is better.

    Args:
        num_classes: Number of classes, background included.
        include_background: Also score class 0.
        spacing: Voxel size (one value, or one per spatial axis) so distances are in mm; ``None``
            for voxel units.
        **kwargs: torchmetrics ``Metric`` options (``sync_on_compute``, ``process_group``, ...).

    >>> metric = HausdorffDistance95(num_classes=2)
    >>> target = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    >>> target[0, 2:5, 2:5, 2:5] = 1
    >>> metric.update(torch.roll(target, 2, dims=1), target)
    >>> metric.compute()  # torchmetrics returns a 0-d tensor for a single class
    tensor(2.)
    """

    higher_is_better = False

    def _per_case(
        self, pred_hot: torch.Tensor, target_hot: torch.Tensor, spacing: list[float]
    ) -> torch.Tensor:
        from monai.metrics import compute_hausdorff_distance

        return compute_hausdorff_distance(
            pred_hot, target_hot, include_background=self.include_background, percentile=95, spacing=spacing
        )

    def _worst(self, spatial: Sequence[int], spacing: list[float]) -> float:
        return math.sqrt(sum((n * s) ** 2 for n, s in zip(spatial, spacing, strict=True)))


class SurfaceDice(_SurfaceMetric):
    """Normalised surface Dice (NSD) per class at a tolerance, averaged over the cases of an epoch.

    MONAI's surface Dice: the share of surface voxels of prediction and reference lying within
    ``class_thresholds`` of the other surface. 1 is perfect, 0 is worst.

    Args:
        num_classes: Number of classes, background included.
        class_thresholds: Tolerance per scored class (one value for all), in the units of
            ``spacing`` (mm when given, voxels when ``None``).
        include_background: Also score class 0.
        spacing: Voxel size (one value, or one per spatial axis); ``None`` for voxel units.
        **kwargs: torchmetrics ``Metric`` options.

    >>> metric = SurfaceDice(num_classes=2, class_thresholds=1.0)
    >>> target = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    >>> target[0, 2:6, 2:6, 2:6] = 1
    >>> metric.update(target, target)
    >>> metric.compute()
    tensor(1.)
    """

    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        class_thresholds: float | Sequence[float] = 1.0,
        include_background: bool = False,
        spacing: SpacingArg = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes, include_background, spacing, **kwargs)
        values = [class_thresholds] if isinstance(class_thresholds, int | float) else list(class_thresholds)
        if len(values) == 1:
            values = values * self.num_scored
        if len(values) != self.num_scored or not all(_positive(v) for v in values):
            raise ValueError(
                f"class_thresholds must be one positive number or {self.num_scored} (one per scored class, "
                f"include_background={self.include_background}), got {class_thresholds!r}"
            )
        self.class_thresholds = [float(v) for v in values]

    def _per_case(
        self, pred_hot: torch.Tensor, target_hot: torch.Tensor, spacing: list[float]
    ) -> torch.Tensor:
        from monai.metrics import compute_surface_dice

        return compute_surface_dice(
            pred_hot,
            target_hot,
            class_thresholds=self.class_thresholds,
            include_background=self.include_background,
            spacing=spacing,
        )

    def _worst(self, spatial: Sequence[int], spacing: list[float]) -> float:
        return 0.0


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(B, *spatial)`` indices to ``(B, C, *spatial)`` 0/1, the layout MONAI's metrics take."""
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1).to(torch.uint8)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_spacing(spacing: SpacingArg) -> list[float] | None:
    if spacing is None:
        return None
    values = [spacing] if isinstance(spacing, int | float) else list(spacing)
    if not values or not all(_positive(v) for v in values):
        raise ValueError(
            "spacing must be null, one positive number or one positive number per spatial axis, "
            f"got {spacing!r}"
        )
    return [float(v) for v in values]


def _require_scipy(name: str) -> None:
    try:
        import scipy  # noqa: F401  (MONAI's surface distances use scipy.ndimage on the CPU)
    except ImportError as error:
        raise ImportError(f"{name} needs scipy for MONAI's surface distances: pip install scipy") from error
