"""The pipeline spec: a versioned JSON beside ``model.onnx`` with everything inference needs.

It names the input keys and channels, the preprocessing (orientation, spacing, intensity steps),
the sliding window (patch size, overlap, blend mode), the output activation and the label names,
so that an exported model predicts with onnxruntime and MONAI alone. :func:`build_transforms`
turns it back into the MONAI transforms the training run used.

>>> spec = PipelineSpec.from_dict(example_spec())
>>> spec.label_names
['background', 'organ']
>>> PipelineSpec.from_dict(spec.to_dict()) == spec
True
"""

import json
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

from eisen_lightning.utils.files import atomic_write_text

SPEC_FORMAT = "eisen-lightning/pipeline"
SPEC_VERSION = 1
SPEC_SUFFIX = ".pipeline.json"
ACTIVATIONS = ("softmax",)
INTENSITY_KINDS = ("scale_range", "zscore")
BLEND_MODES = ("constant", "gaussian")


class SpecError(ValueError):
    """A pipeline spec that is missing, malformed or of another version."""


@dataclass
class PipelineSpec:
    """What inference needs, read from and written to ``<model>.pipeline.json``.

    Attributes:
        input_keys: Sample keys the model reads (one image key).
        in_channels: Channels of the image after loading.
        spatial_dims: 2 or 3.
        orientation: Axis codes the image is reoriented to (``RAS``), or ``None``.
        spacing: Target voxel spacing in mm, or ``None`` to keep the native grid.
        interpolation: Resampling mode of the image (``bilinear``).
        intensity: Intensity steps in order, each ``{"kind": "zscore"|"scale_range", ...}``.
        pad_to: Minimum spatial size the image is padded to, or ``None``.
        inference: Sliding window: ``patch_size`` (``None``: whole image), ``overlap``, ``blend_mode``,
            ``sigma_scale``, ``padding_mode``, ``cval``, ``sw_batch_size``.
        label_names: One name per output class, background first.
        activation: Output activation over the class channel (``softmax``); labels are its argmax.
        onnx_input: Name of the ONNX graph input.
        onnx_output: Name of the ONNX graph output (logits).
        export: Provenance: opset, dynamic axes, versions, source, parity result.

    >>> spec = PipelineSpec.from_dict(example_spec())
    >>> spec.num_classes, spec.spacing, spec.inference["patch_size"]
    (2, [2.0, 2.0, 2.0], [32, 32, 32])
    >>> PipelineSpec.from_dict({**spec.to_dict(), "version": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eisen_lightning.export.spec.SpecError: pipeline spec: format ... version 0 is not supported; ...
    """

    input_keys: list[str]
    in_channels: int
    spatial_dims: int
    orientation: str | None
    spacing: list[float] | None
    interpolation: str
    intensity: list[dict[str, Any]]
    pad_to: list[int] | None
    inference: dict[str, Any]
    label_names: list[str]
    activation: str = "softmax"
    onnx_input: str = "image"
    onnx_output: str = "logits"
    export: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.label_names)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, with its format and version."""
        return {"format": SPEC_FORMAT, "version": SPEC_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "pipeline spec") -> "PipelineSpec":
        """Check and read a spec document.

        Args:
            data: The parsed JSON.
            source: Where it came from, for error messages.

        Raises:
            SpecError: Naming the key that is missing or wrong, and what is allowed.
        """
        if data.get("format") != SPEC_FORMAT or data.get("version") != SPEC_VERSION:
            raise SpecError(
                f"{source}: format {data.get('format')!r} version {data.get('version')!r} is not supported; "
                f"this eisen-lightning reads format {SPEC_FORMAT!r} version {SPEC_VERSION}. "
                "Export the model again with this version (eisen export ckpt_path=CKPT)."
            )
        fields = cls.__dataclass_fields__
        required = [n for n, f in fields.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise SpecError(f"{source}: missing key(s) {missing}; a pipeline spec has {list(fields)}")
        spec = cls(**{n: data[n] for n in fields if n in data})
        _validate(spec, source)
        return spec

    def save(self, path: str | Path) -> Path:
        """Write the spec atomically to ``path``."""
        written = atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        written.chmod(0o644)
        return written

    @classmethod
    def load(cls, path: str | Path) -> "PipelineSpec":
        """Read ``path``.

        Raises:
            SpecError: If the file is missing, not JSON, or not a valid spec.
        """
        path = Path(path)
        if not path.is_file():
            raise SpecError(
                f"{path}: no pipeline spec; an exported model.onnx comes with its "
                f"model{SPEC_SUFFIX} in the same folder (eisen export writes both)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SpecError(f"{path}: not valid JSON ({err}); export the model again") from err
        return cls.from_dict(data, source=str(path))


def spec_path(model_path: str | Path) -> Path:
    """The spec file of a model: ``model.onnx`` -> ``model.pipeline.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".onnx") + SPEC_SUFFIX)


def build_transforms(spec: PipelineSpec) -> list:
    """The MONAI dictionary transforms that prepare an image for the model, as in training.

    Args:
        spec: The pipeline spec.
    """
    from monai import transforms as mt

    from eisen_lightning.io import readers

    key = spec.input_keys[0]
    steps: list = [mt.LoadImaged(key, reader=readers(), image_only=True, ensure_channel_first=True)]
    if spec.orientation:
        steps.append(mt.Orientationd(key, axcodes=spec.orientation, labels=None))
    if spec.spacing:
        steps.append(mt.Spacingd(key, pixdim=list(spec.spacing), mode=spec.interpolation))
    for step in spec.intensity:
        settings = {k: v for k, v in step.items() if k != "kind"}
        if step["kind"] == "zscore":
            steps.append(mt.NormalizeIntensityd(key, **settings))
        else:
            steps.append(mt.ScaleIntensityRanged(key, **settings))
    if spec.pad_to:
        steps.append(mt.SpatialPadd(key, spatial_size=list(spec.pad_to)))
    steps.append(mt.EnsureTyped(key, track_meta=True))
    return steps


def _validate(spec: PipelineSpec, source: str) -> None:
    problems = []
    if len(spec.input_keys) != 1:
        problems.append(f"input_keys must name one image key, got {spec.input_keys}")
    if spec.spatial_dims not in (2, 3):
        problems.append(f"spatial_dims must be 2 or 3, got {spec.spatial_dims}")
    if not isinstance(spec.in_channels, int) or spec.in_channels < 1:
        problems.append(f"in_channels must be a positive integer, got {spec.in_channels!r}")
    if spec.activation not in ACTIVATIONS:
        problems.append(f"activation must be one of {ACTIVATIONS}, got {spec.activation!r}")
    if len(spec.label_names) < 2:
        problems.append(f"label_names must name at least 2 classes, got {spec.label_names}")
    bad = [s for s in spec.intensity if s.get("kind") not in INTENSITY_KINDS]
    if bad:
        problems.append(f"intensity steps must have kind in {INTENSITY_KINDS}, got {bad}")
    patch = spec.inference.get("patch_size")
    if patch is not None and len(patch) != spec.spatial_dims:
        problems.append(f"inference.patch_size {patch} must have spatial_dims={spec.spatial_dims} sizes")
    if spec.inference.get("blend_mode", "constant") not in BLEND_MODES:
        problems.append(f"inference.blend_mode must be one of {BLEND_MODES}")
    if problems:
        raise SpecError(f"{source}: " + "; ".join(problems))


def example_spec() -> dict[str, Any]:
    """A small valid spec document (for examples and tests)."""
    return PipelineSpec(
        input_keys=["image"],
        in_channels=1,
        spatial_dims=3,
        orientation="RAS",
        spacing=[2.0, 2.0, 2.0],
        interpolation="bilinear",
        intensity=[{"kind": "zscore", "nonzero": True, "channel_wise": True}],
        pad_to=None,
        inference={"patch_size": [32, 32, 32], "overlap": 0.5, "blend_mode": "gaussian"},
        label_names=["background", "organ"],
    ).to_dict()
