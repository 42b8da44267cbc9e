"""Whole-pipeline inference with onnxruntime: an exported model and its spec, no training config.

``eisen predict model=path/to/model.onnx input=PATH`` rebuilds the preprocessing from the spec,
runs MONAI's sliding window over the onnxruntime session, and inverts and writes the label maps
through the same :class:`~eisen_lightning.predict.CasePredictor` as the torch path.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eisen_lightning.export.exporter import META_SPEC
from eisen_lightning.export.parity import import_onnx, ort_session
from eisen_lightning.export.spec import PipelineSpec, SpecError, build_transforms, spec_path
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


class OnnxModel:
    """An exported model ready for whole images: ``infer(image)`` returns the logits.

    Args:
        model_path: The ``.onnx`` file; its spec is ``<name>.pipeline.json`` beside it (the copy
            embedded in the model's metadata stands in when that file is missing).
        threads: onnxruntime intra-op threads; 0 lets onnxruntime choose.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when onnxruntime has it).

    >>> OnnxModel("missing.onnx")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model=missing.onnx: no such file; give the path of an exported model.onnx
    """

    def __init__(self, model_path: str | Path, threads: int = 0, device: str = "auto") -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"model={model_path}: no such file; give the path of an exported model.onnx"
            )
        self.spec = load_spec(self.path)
        self.session = ort_session(str(self.path), threads=threads, providers=_providers(device))
        self.input_name = self.session.get_inputs()[0].name
        self.transforms = build_transforms(self.spec)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The logits of a batch of patches (or whole images) through onnxruntime."""
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(logits)

    @torch.no_grad()
    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of whole images ``(B, C, *spatial)``: sliding window as in training, or one pass.

        Raises:
            ValueError: If the image's channels are not the model's.
        """
        if image.ndim != self.spec.spatial_dims + 2 or image.shape[1] != self.spec.in_channels:
            raise ValueError(
                f"the model takes images with {self.spec.in_channels} channel(s) and "
                f"{self.spec.spatial_dims} spatial axes, got an image of shape {tuple(image.shape[1:])}"
            )
        window = self.spec.inference
        if window.get("patch_size") is None:
            return self.run(image)
        from monai.inferers import sliding_window_inference

        settings = {k: window[k] for k in ("sigma_scale", "padding_mode", "cval") if k in window}
        return sliding_window_inference(
            image.float(),
            roi_size=list(window["patch_size"]),
            sw_batch_size=int(window.get("sw_batch_size", 1)),
            predictor=self.run,
            overlap=window.get("overlap", 0.25),
            mode=window.get("blend_mode", "constant"),
            **settings,
        )

    def describe(self) -> dict[str, Any]:
        """Inputs, outputs and labels, as the model server reports them."""
        spec = self.spec
        return {
            "model": self.path.name,
            "input": {
                "key": spec.input_keys[0],
                "channels": spec.in_channels,
                "spatial_dims": spec.spatial_dims,
                "orientation": spec.orientation,
                "spacing": spec.spacing,
                "intensity": spec.intensity,
            },
            "inference": spec.inference,
            "output": {
                "activation": spec.activation,
                "labels": dict(enumerate(spec.label_names)),
                "geometry": "the input's own shape, spacing, origin and direction",
            },
            "export": {k: spec.export.get(k) for k in ("opset", "created", "parity") if k in spec.export},
        }


def load_spec(model_path: Path) -> PipelineSpec:
    """The spec of ``model_path``: the JSON beside it, else the copy in the model's metadata.

    Raises:
        SpecError: If neither exists, or the JSON beside it belongs to another model file.
    """
    beside = spec_path(model_path)
    if beside.is_file():
        spec = PipelineSpec.load(beside)
        expected = spec.export.get("model_sha256")
        if expected and hashlib.sha256(model_path.read_bytes()).hexdigest() != expected:
            raise SpecError(
                f"{beside} belongs to another export than {model_path} (model_sha256 differs); "
                "export again so the two are written together"
            )
        return spec
    onnx, _ = import_onnx()
    props = {p.key: p.value for p in onnx.load(str(model_path), load_external_data=False).metadata_props}
    if META_SPEC not in props:
        raise SpecError(
            f"{model_path}: no {beside.name} beside it and no pipeline spec in its metadata; "
            "export the model with eisen export ckpt_path=CKPT"
        )
    log.info("%s not found: using the spec embedded in %s", beside.name, model_path.name)
    return PipelineSpec.from_dict(json.loads(props[META_SPEC]), source=f"{model_path} metadata")


def predict_onnx(cfg: Any) -> Any:
    """``eisen predict model=MODEL.onnx input=PATH``: label maps with onnxruntime alone.

    Args:
        cfg: A config composed from ``conf/predict.yaml`` with ``model`` set.

    Returns:
        The :class:`~eisen_lightning.predict.PredictReport`.
    """
    from eisen_lightning.predict import CasePredictor, predict_cases
    from eisen_lightning.predict_inputs import SPLIT_PREFIX, collect_cases

    source = str(cfg.input)
    if source.startswith(SPLIT_PREFIX):
        raise ValueError(
            f"input={source}: splits need the training data set and its config; "
            "with model=... give an image file, a DICOM folder or a folder of cases"
        )
    model = OnnxModel(cfg.model, threads=int(cfg.get("threads") or 0), device=str(cfg.get("device", "auto")))
    cases = collect_cases(source, None)
    predictor = CasePredictor(model, model.transforms, torch.device("cpu"), bool(cfg.save_probabilities))
    return predict_cases(predictor, cases, Path(cfg.output), cfg.get("output_format"))


def _providers(device: str) -> list[str]:
    _, ort = import_onnx()
    available = ort.get_available_providers()
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ValueError(
            f"device=cuda but onnxruntime has no CUDA provider (available: {available}); "
            "install onnxruntime-gpu or use device=cpu"
        )
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
