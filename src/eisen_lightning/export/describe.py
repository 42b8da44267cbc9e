"""Describe a trained run's preprocessing and inferer as a :class:`PipelineSpec`.

The spec is read off the MONAI transforms a DataModule's ``predict_transforms()`` returns and off
the task's inferer, so it says exactly what the torch path does; a transform the spec cannot
express is refused at export time rather than silently dropped.
"""

from collections.abc import Sequence
from typing import Any

from eisen_lightning.export.spec import PipelineSpec, SpecError

#: Transforms that only change types, not values; they need no entry in the spec.
TYPE_ONLY = ("EnsureTyped", "EnsureChannelFirstd", "CastToTyped")


def describe_pipeline(
    transforms: Sequence[Any],
    inferer: Any,
    label_names: Sequence[str],
    in_channels: int,
    spatial_dims: int,
) -> PipelineSpec:
    """Build the spec of a model's inference pipeline.

    Args:
        transforms: The DataModule's ``predict_transforms()`` (MONAI dictionary transforms).
        inferer: The task's inferer (a MONAI ``SlidingWindowInferer``) or ``None`` (whole image).
        label_names: One name per class, background first.
        in_channels: Input channels of the net.
        spatial_dims: 2 or 3.

    Raises:
        SpecError: If a transform or the inferer cannot be described.
    """
    fields: dict[str, Any] = {"orientation": None, "spacing": None, "interpolation": "bilinear"}
    fields.update(intensity=[], pad_to=None, input_keys=None)
    for step in transforms:
        _describe_step(step, fields)
    if not fields["input_keys"]:
        raise SpecError("the prediction transforms do not start with LoadImaged; cannot describe them")
    return PipelineSpec(
        in_channels=int(in_channels),
        spatial_dims=int(spatial_dims),
        inference=describe_inferer(inferer),
        label_names=list(label_names),
        **fields,
    )


def describe_inferer(inferer: Any) -> dict[str, Any]:
    """The sliding-window settings of ``inferer`` (``patch_size: None`` for a plain forward pass).

    Raises:
        SpecError: If the inferer is not a MONAI ``SlidingWindowInferer``.
    """
    if inferer is None:
        return {"patch_size": None}
    from monai.inferers import SlidingWindowInferer

    if not isinstance(inferer, SlidingWindowInferer):
        raise SpecError(
            f"task.inferer is a {type(inferer).__name__}; the pipeline spec describes "
            "monai.inferers.SlidingWindowInferer or no inferer"
        )
    return {
        "patch_size": [int(s) for s in inferer.roi_size],
        "overlap": _plain(inferer.overlap),
        "blend_mode": str(getattr(inferer.mode, "value", inferer.mode)),
        "sigma_scale": _plain(inferer.sigma_scale),
        "padding_mode": str(getattr(inferer.padding_mode, "value", inferer.padding_mode)),
        "cval": float(inferer.cval),
        "sw_batch_size": int(inferer.sw_batch_size),
    }


def _describe_step(step: Any, fields: dict[str, Any]) -> None:
    from monai import transforms as mt

    name = type(step).__name__
    if isinstance(step, mt.LoadImaged):
        fields["input_keys"] = list(step.keys)[:1]
    elif isinstance(step, mt.Orientationd):
        fields["orientation"] = step.ornt_transform.axcodes
    elif isinstance(step, mt.Spacingd):
        fields["spacing"] = [float(v) for v in step.spacing_transform.pixdim]
        fields["interpolation"] = str(getattr(step.mode[0], "value", step.mode[0]))
    elif isinstance(step, mt.NormalizeIntensityd):
        norm = step.normalizer
        fields["intensity"].append(
            {"kind": "zscore", "nonzero": bool(norm.nonzero), "channel_wise": bool(norm.channel_wise)}
            | {k: _plain(getattr(norm, k)) for k in ("subtrahend", "divisor") if getattr(norm, k) is not None}
        )
    elif isinstance(step, mt.ScaleIntensityRanged):
        scaler = step.scaler
        values = {k: _plain(getattr(scaler, k)) for k in ("a_min", "a_max", "b_min", "b_max")}
        fields["intensity"].append({"kind": "scale_range", **values, "clip": bool(scaler.clip)})
    elif isinstance(step, mt.SpatialPadd):
        fields["pad_to"] = [int(s) for s in step.padder.spatial_size]
    elif name not in TYPE_ONLY:
        raise SpecError(
            f"cannot describe the prediction transform {name} in a pipeline spec; it describes "
            "LoadImaged, Orientationd, Spacingd, NormalizeIntensityd, ScaleIntensityRanged, SpatialPadd"
        )


def _plain(value: Any) -> Any:
    """Numbers and sequences of numbers as JSON-ready Python values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
