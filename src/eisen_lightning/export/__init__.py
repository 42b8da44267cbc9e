"""ONNX export with a parity check and a pipeline spec, and whole-pipeline onnxruntime inference.

``onnx`` and ``onnxruntime`` are imported on first use (``pip install eisen-lightning[onnx]``).
"""

from eisen_lightning.export.exporter import DEFAULT_OPSET, ExportResult, export_onnx
from eisen_lightning.export.parity import ParityError, check_parity
from eisen_lightning.export.runtime import OnnxModel, predict_onnx
from eisen_lightning.export.spec import PipelineSpec, SpecError, build_transforms, spec_path
from eisen_lightning.export.task_export import export_checkpoint, export_task

__all__ = [
    "DEFAULT_OPSET",
    "ExportResult",
    "OnnxModel",
    "ParityError",
    "PipelineSpec",
    "SpecError",
    "build_transforms",
    "check_parity",
    "export_checkpoint",
    "export_onnx",
    "export_task",
    "predict_onnx",
    "spec_path",
]
