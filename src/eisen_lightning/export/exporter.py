"""Export a net to ONNX, check it, prove parity with torch, and write it atomically with its spec."""

import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eisen_lightning.export.parity import (
    DEFAULT_TOLERANCE,
    ParityError,
    check_parity,
    import_onnx,
    ort_session,
)
from eisen_lightning.export.spec import PipelineSpec, spec_path
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

#: Chosen explicitly: the newest opset of torch's TorchScript exporter (GridSample on 5-D input needs 20).
DEFAULT_OPSET = 20
#: Keys of the model's ONNX metadata (``metadata_props``).
META_SPEC = "eisen_lightning.pipeline"
META_PARITY = "eisen_lightning.parity_max_abs_diff"
SPATIAL_AXES = ("x", "y", "z")


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        model_path: The ``.onnx`` file.
        spec_path: The ``.pipeline.json`` beside it.
        spec: The spec written, with its ``export`` provenance and parity result.
    """

    model_path: Path
    spec_path: Path
    spec: PipelineSpec

    @property
    def max_abs_diff(self) -> float:
        """The largest parity difference over every checked input."""
        return max(self.spec.export["parity"]["max_abs_diff"].values())


def export_onnx(
    net: nn.Module,
    sample: torch.Tensor,
    path: str | os.PathLike,
    spec: PipelineSpec,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    provenance: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``net`` to ``path`` and its pipeline spec beside it, after checks and a parity test.

    Batch and spatial axes are dynamic when the exported graph runs (and agrees with torch) at
    another batch and spatial size; otherwise the spatial axes are fixed to the sample's. Nothing
    is written when ``onnx.checker`` or the parity check fails.

    Args:
        net: The network; it is put in eval mode for the export and restored after.
        sample: A real preprocessed input ``(1, C, *spatial)``; it is moved to the net's own
            device and dtype.
        path: Destination ``.onnx`` file.
        spec: The pipeline spec; its ``export`` section is filled in.
        opset: ONNX opset.
        tolerance: Largest accepted absolute difference of the logits.
        provenance: Extra facts recorded in ``spec.export`` (source checkpoint, epoch, metric).

    Raises:
        ParityError: If onnxruntime and torch disagree beyond ``tolerance``.
        ValueError: If ``sample`` is not a single-item batch with the spec's channels.
    """
    path = Path(path)
    if sample.ndim != spec.spatial_dims + 2 or sample.shape[:2] != (1, spec.in_channels):
        raise ValueError(
            f"sample must have shape (1, {spec.in_channels}, *{spec.spatial_dims} spatial sizes), "
            f"got {tuple(sample.shape)}"
        )
    was_training = net.training
    net.eval()
    try:
        example = sample.to(**_device_and_dtype(net))
        data, dynamic, parity = _export_checked(net, example, spec, opset, tolerance)
    finally:
        net.train(was_training)
    spec.export = _provenance(opset, dynamic, parity, tolerance, provenance)
    data = _with_metadata(data, spec)
    atomic_write_bytes(path, data)
    spec_file = spec.save(spec_path(path))
    log.info("exported %s (parity max abs diff %.2e)", path, max(parity.values()))
    return ExportResult(path, spec_file, spec)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an exported model is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _export_checked(
    net: nn.Module, example: torch.Tensor, spec: PipelineSpec, opset: int, tolerance: float
) -> tuple[bytes, dict[str, dict[int, str]], dict[str, float]]:
    """Try dynamic spatial axes first; fall back to fixed ones when the graph does not generalise."""
    larger = _larger_batch(net, example)
    try:
        return _attempt(net, example, larger, spec, opset, tolerance, dynamic_spatial=True)
    except Exception as err:  # onnxruntime shape errors or a parity failure at the other size
        log.info("dynamic spatial axes do not hold (%s); exporting with fixed spatial axes", err)
    same_size = torch.cat([example, example.flip(-1)])
    return _attempt(net, example, same_size, spec, opset, tolerance, dynamic_spatial=False)


def _attempt(
    net: nn.Module,
    example: torch.Tensor,
    other: torch.Tensor,
    spec: PipelineSpec,
    opset: int,
    tolerance: float,
    dynamic_spatial: bool,
) -> tuple[bytes, dict[str, dict[int, str]], dict[str, float]]:
    onnx, _ = import_onnx()
    axes = {0: "batch"}
    if dynamic_spatial:
        axes.update({2 + i: SPATIAL_AXES[i] for i in range(spec.spatial_dims)})
    dynamic = {spec.onnx_input: axes, spec.onnx_output: dict(axes)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            opset_version=opset,
            input_names=[spec.onnx_input],
            output_names=[spec.onnx_output],
            dynamic_axes=dynamic,
            dynamo=False,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    session = ort_session(data)
    samples = {f"real sample {list(example.shape)}": example, f"batch {list(other.shape)}": other}
    return data, dynamic, check_parity(session, net, samples, tolerance)


def _larger_batch(net: nn.Module, example: torch.Tensor) -> torch.Tensor:
    """Two items, each spatial axis grown by the net's size divisor (edge-padded real data)."""
    from eisen_lightning.models import size_constraint

    try:
        divisor = size_constraint(net).divisor
    except ValueError:
        divisor = (1,) * (example.ndim - 2)
    pad = [p for d in reversed(divisor) for p in (0, int(d))]
    grown = torch.nn.functional.pad(example.float(), pad, mode="replicate").to(example.dtype)
    return torch.cat([grown, grown.flip(-1)])


def _device_and_dtype(net: nn.Module) -> dict[str, Any]:
    tensor = next(net.parameters(), None)
    if tensor is None:
        tensor = next(net.buffers(), None)
    if tensor is None:
        return {"dtype": torch.float32}
    return {"device": tensor.device, "dtype": tensor.dtype if tensor.is_floating_point() else torch.float32}


def _provenance(
    opset: int,
    dynamic: dict[str, dict[int, str]],
    parity: dict[str, float],
    tolerance: float,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    import onnxruntime

    from eisen_lightning import __version__

    return {
        "model_sha256": None,  # set once the file's bytes are final
        "opset": opset,
        "dynamic_axes": {name: {str(k): v for k, v in axes.items()} for name, axes in dynamic.items()},
        "parity": {"tolerance": tolerance, "max_abs_diff": parity},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "eisen_lightning": __version__,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        **(extra or {}),
    }


def _with_metadata(data: bytes, spec: PipelineSpec) -> bytes:
    """The model with the spec and the parity result in its ``metadata_props``.

    The embedded spec cannot hold the hash of its own file: its ``model_sha256`` is ``None``; the
    spec written beside the model gets the hash of the bytes returned.
    """
    onnx, _ = import_onnx()
    model = onnx.load_from_string(data)
    parity = spec.export["parity"]["max_abs_diff"]
    props = {META_PARITY: json.dumps(parity), META_SPEC: json.dumps(spec.to_dict())}
    onnx.helper.set_model_props(model, props)
    written = model.SerializeToString()
    spec.export["model_sha256"] = hashlib.sha256(written).hexdigest()
    return written


__all__ = ["DEFAULT_OPSET", "ExportResult", "ParityError", "atomic_write_bytes", "export_onnx"]
