"""Export a trained task: the net, the pipeline spec of its run, and parity on a real sample.

Shared by ``eisen export ckpt_path=CKPT`` (:func:`export_checkpoint`) and the training callback.
"""

from pathlib import Path
from typing import Any

import torch

from eisen_lightning import keys
from eisen_lightning.export.describe import describe_pipeline
from eisen_lightning.export.exporter import DEFAULT_OPSET, ExportResult, export_onnx
from eisen_lightning.export.parity import DEFAULT_TOLERANCE
from eisen_lightning.export.spec import PipelineSpec
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


def task_spec(task: Any, datamodule: Any) -> PipelineSpec:
    """The pipeline spec of a segmentation ``task`` trained on ``datamodule``.

    Raises:
        TypeError: If the task has no ``infer``/``label_names`` (not a segmentation task).
    """
    if not hasattr(task, "infer") or not hasattr(task, "label_names") or not hasattr(task, "net"):
        raise TypeError(
            f"ONNX pipeline export needs a segmentation task (net, infer, label_names); "
            f"got {type(task).__name__}"
        )
    if getattr(task, "multilabel", False):
        raise ValueError(
            "ONNX pipeline export describes softmax label maps; task.multilabel=true (sigmoid regions) "
            "is not supported by the pipeline spec"
        )
    info = datamodule.info
    spec = describe_pipeline(
        datamodule.predict_transforms(),
        getattr(task, "inferer", None),
        task.label_names,
        info.in_channels,
        info.spatial_dims,
    )
    if len(task.input_keys) != 1:
        raise ValueError(f"ONNX pipeline export takes one input key, task.input_keys is {task.input_keys}")
    return spec


def sample_patch(image_path: str, transforms: list, spec: PipelineSpec) -> torch.Tensor:
    """A real input for the export: the image preprocessed as in prediction, cut to one patch.

    Args:
        image_path: An image file or DICOM folder.
        transforms: The prediction transforms.
        spec: The pipeline spec (patch size).

    Returns:
        A ``(1, C, *spatial)`` float tensor: the central patch, padded where the image is smaller.
    """
    from monai.transforms import Compose, ResizeWithPadOrCrop

    image = Compose(transforms)({keys.IMAGE: image_path})[keys.IMAGE]
    patch = spec.inference.get("patch_size")
    if patch is not None:
        image = ResizeWithPadOrCrop(list(patch))(image)
    tensor = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    return tensor.float()[None]


def export_task(
    task: Any,
    datamodule: Any,
    sample: str,
    path: str | Path,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    provenance: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``task.net`` with the pipeline spec of ``datamodule``, checked on the image ``sample``.

    Args:
        task: A trained segmentation task.
        datamodule: Its DataModule (prediction transforms, channels, dimensions).
        sample: Path of a real image used as the export example and for the parity check.
        path: Destination ``.onnx`` file.
        opset: ONNX opset.
        tolerance: Largest accepted absolute difference of the logits.
        provenance: Extra facts recorded in the spec's ``export`` section.
    """
    spec = task_spec(task, datamodule)
    example = sample_patch(sample, datamodule.predict_transforms(), spec)
    facts = {"sample": str(sample), **(provenance or {})}
    return export_onnx(task.net, example, path, spec, opset=opset, tolerance=tolerance, provenance=facts)


def export_checkpoint(cfg: Any) -> ExportResult:
    """``eisen export ckpt_path=CKPT``: export a checkpoint's net with its pipeline spec.

    Args:
        cfg: A config composed from ``conf/export.yaml`` (``ckpt_path``, ``output``, ``filename``,
            ``sample``, ``opset``, ``tolerance`` and the training run's data, net and task settings).
            By default the model is written to ``<run of the checkpoint>/exports/<checkpoint name>.onnx``.
    """
    from eisen_lightning.checkpoint import load_checkpoint
    from eisen_lightning.predict import restore_datamodule, restore_task
    from eisen_lightning.run import checked_ckpt_path

    ckpt_path = checked_ckpt_path(cfg.get("ckpt_path"), required=True)
    if ckpt_path in ("last", "best"):
        raise ValueError(f"ckpt_path={ckpt_path}: eisen export needs the path of a .ckpt file")
    if cfg.get("sample") and not Path(cfg.sample).exists():
        raise FileNotFoundError(f"sample={cfg.sample}: no such image; give an image file or DICOM folder")
    checkpoint = load_checkpoint(ckpt_path)
    datamodule = restore_datamodule(cfg, checkpoint)
    sample = cfg.get("sample") or first_image(datamodule)
    task = restore_task(cfg, datamodule, checkpoint).eval()
    output = Path(cfg.output) if cfg.get("output") else Path(ckpt_path).resolve().parent.parent / "exports"
    filename = str(cfg.get("filename") or Path(ckpt_path).stem + ".onnx")
    source = {"checkpoint": str(Path(ckpt_path).resolve()), "epoch": checkpoint.get("epoch")}
    return export_task(
        task,
        datamodule,
        str(sample),
        output / filename,
        opset=int(cfg.opset),
        tolerance=float(cfg.tolerance),
        provenance={"source": source},
    )


def first_image(datamodule: Any) -> str:
    """The first image of the data set that exists on disk.

    Raises:
        FileNotFoundError: If the data set has none here (prediction-only checkpoints).
    """
    cases: list[dict[str, Any]] = []
    for listing in (datamodule.labelled_cases, datamodule.unlabelled_cases):
        try:
            cases += listing()
        except (OSError, ValueError) as err:
            log.info("no cases from %s: %s", listing.__name__, err)
    for case in cases:
        if Path(str(case[keys.IMAGE])).exists():
            return str(case[keys.IMAGE])
    raise FileNotFoundError(
        "the export needs a real image for its parity check and the data set has none here; "
        "give one with sample=path/to/image.nii.gz"
    )
