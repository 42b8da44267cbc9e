"""``eisen predict``: label maps of new images, written back with exactly the input's geometry.

Each case is loaded and preprocessed as in validation, segmented with the task's inferer (sliding
window), every spatial transform is inverted (MONAI's ``Invertd``), the label map is written, then
read back and compared with the input: a geometry that differs fails loudly.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from eisen_lightning import keys
from eisen_lightning.predict_inputs import (
    collect_cases,
    first_path,
    output_path,
    reference_image,
    source_name,
)
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


@dataclass
class PredictReport:
    """What ``eisen predict`` wrote and what failed.

    Attributes:
        written: ``(input, output)`` pairs.
        failures: ``(input, reason)`` pairs; the run goes on past them.
    """

    written: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        """A human-readable summary."""
        lines = [f"{len(self.written)} prediction(s) written, {len(self.failures)} failure(s)"]
        lines += [f"  {src} -> {dst}" for src, dst in self.written]
        lines += [f"  FAILED {src}: {reason}" for src, reason in self.failures]
        return "\n".join(lines)


def predict(cfg: DictConfig) -> PredictReport:
    """Predict every case named by ``cfg.input`` and write the label maps under ``cfg.output``.

    Args:
        cfg: A config composed from ``conf/predict.yaml`` (``ckpt_path``, ``input``, ``output``,
            ``output_format``, ``save_probabilities``, plus the training run's data and task settings).
    """
    from eisen_lightning.checkpoint import load_checkpoint
    from eisen_lightning.run import checked_ckpt_path

    ckpt_path = checked_ckpt_path(cfg.get("ckpt_path"), required=True)
    checkpoint = load_checkpoint(ckpt_path)  # weights_only: tensors and plain values only
    datamodule = restore_datamodule(cfg, checkpoint)
    cases = collect_cases(str(cfg.input), datamodule)
    task = restore_task(cfg, datamodule, checkpoint)
    device = _device(cfg.get("device", "auto"))
    task.to(device).eval()
    stacks = bool(getattr(datamodule, "slice_stacks", False))
    predictor = CasePredictor(
        task, datamodule.predict_transforms(), device, bool(cfg.save_probabilities), stacks
    )
    return predict_cases(predictor, cases, Path(cfg.output), cfg.get("output_format"))


def predict_cases(
    predictor: "CasePredictor", cases: list[dict[str, Any]], output_dir: Path, output_format: str | None
) -> PredictReport:
    """Write the label map of every case; a failing case is reported and the batch goes on.

    Args:
        predictor: Preprocesses, infers, inverts and writes one case.
        cases: ``{"case_id", "image"}`` dicts.
        output_dir: Folder of the label maps.
        output_format: Suffix of the written files; ``None`` keeps the input's format.
    """
    report = PredictReport()
    for case in cases:
        source = source_name(case)
        try:
            destination = output_path(case, output_dir, output_format)
            predictor.write(case, destination)
            report.written.append((source, str(destination)))
        except Exception as err:  # one bad case must not stop a batch; every failure is reported
            log.error("%s: %s", source, err)
            report.failures.append((source, f"{type(err).__name__}: {err}"))
    return report


def restore_datamodule(cfg: DictConfig, checkpoint: dict[str, Any]) -> Any:
    """The configured DataModule with the data-set description saved in ``checkpoint``."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    saved = checkpoint.get(type(datamodule).__qualname__)
    if saved is not None and hasattr(datamodule, "load_state_dict"):
        datamodule.load_state_dict(saved)
    return datamodule


def restore_task(cfg: DictConfig, datamodule: Any, checkpoint: dict[str, Any]) -> Any:
    """The configured task with the weights of ``checkpoint`` (``cfg.dataset`` filled from the data)."""
    from hydra.utils import instantiate

    from eisen_lightning.checkpoint import check_state_dict
    from eisen_lightning.data.slicing import use_slice_inferer

    with open_dict(cfg):
        cfg.dataset = datamodule.info.as_dict()
    use_slice_inferer(cfg)  # a net trained on slices of volumes (data.slice_axis) runs slice by slice
    task = instantiate(cfg.task, _convert_="all")
    check_state_dict(checkpoint["state_dict"], task, str(cfg.get("ckpt_path")), cfg.dataset)
    task.load_state_dict(checkpoint["state_dict"])
    return task


class CasePredictor:
    """Preprocess, infer, invert and write one case at a time.

    The label map follows the task's own prediction rule (its ``postprocess``; an argmax without
    one): a multi-label task writes one 0/1 channel per region (a 4D file, regions last).

    Args:
        task: A trained task with ``infer`` (and ``postprocess``).
        transforms: The deterministic preprocessing (MONAI dictionary transforms on ``image``).
        device: Where the net runs.
        save_probabilities: Also write the class probabilities beside the label map.
        stacks: Each input file is a stack of 2D samples along its last axis (MedSeg): a case without
            a ``slice_index`` is predicted slice by slice and written as one volume on the stack's grid.
    """

    def __init__(
        self,
        task: Any,
        transforms: list,
        device: torch.device,
        save_probabilities: bool,
        stacks: bool = False,
    ) -> None:
        from monai.transforms import Compose

        self.task, self.device, self.save_probabilities = task, device, save_probabilities
        self.preprocess, self.stacks = Compose(transforms), stacks

    @torch.no_grad()
    def write(self, case: dict[str, Any], destination: Path) -> None:
        """Predict ``case`` and write its label map to ``destination``, then check the geometry."""
        from eisen_lightning.geometry import geometry_differences
        from eisen_lightning.io import load, save

        outputs = self._stack(case) if self.stacks and keys.SLICE_INDEX not in case else self._predict(case)
        destination.parent.mkdir(parents=True, exist_ok=True)
        save(outputs[keys.PRED], destination)
        differences = geometry_differences(reference_image(case), load(str(destination)))
        if differences:
            raise RuntimeError(
                f"{destination} does not match the geometry of its input: {'; '.join(differences)}"
            )
        if keys.PROB in outputs:
            save(outputs[keys.PROB], _probability_path(destination))

    def _predict(self, case: dict[str, Any]) -> dict[str, Any]:
        """The inverted label map (and probabilities) of one case, on its input's grid."""
        data = self.preprocess({k: v for k, v in case.items() if k != keys.LABEL})
        logits = self.task.infer(data[keys.IMAGE].as_tensor()[None].to(self.device)).float().cpu()
        label, prob = self._rule(logits)
        # nearest-neighbour inversion keeps the values exact, but resampling returns floats
        outputs = {keys.PRED: self._invert(data, label, nearest=True).round().to(torch.uint8)}
        if self.save_probabilities:
            outputs[keys.PROB] = self._invert(data, prob, nearest=False)
        return outputs

    def _rule(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Label map (uint8) and probabilities of one case from its ``(1, C, ...)`` logits."""
        postprocess = getattr(self.task, "postprocess", None)
        result = postprocess(logits) if callable(postprocess) else {}
        label = result[keys.PRED] if keys.PRED in result else logits.argmax(dim=1, keepdim=True)
        prob = result[keys.PROB] if keys.PROB in result else logits.softmax(dim=1)
        return label[0].to(torch.uint8), prob[0].float()

    def _stack(self, case: dict[str, Any]) -> dict[str, Any]:
        """Every slice of a stack predicted, stacked back along the last axis with the stack's geometry."""
        from monai.data import MetaTensor

        from eisen_lightning.data.medseg import load_stack

        stack = load_stack(first_path(case))
        slices = [self._predict({**case, keys.SLICE_INDEX: k}) for k in range(stack.shape[-1])]
        meta = {"original_affine": stack.affine.clone(), "spatial_shape": list(stack.shape[1:])}
        return {
            key: MetaTensor(
                torch.stack([s[key].as_tensor() for s in slices], dim=-1), affine=stack.affine, meta=meta
            )
            for key in slices[0]
        }

    def _invert(self, data: dict[str, Any], tensor: torch.Tensor, nearest: bool) -> Any:
        from monai.data import MetaTensor
        from monai.transforms import Invertd

        image = data[keys.IMAGE]
        item = MetaTensor(tensor, meta=dict(image.meta), applied_operations=list(image.applied_operations))
        inverse = Invertd(keys.PRED, self.preprocess, orig_keys=keys.IMAGE, nearest_interp=nearest)
        return inverse({**data, keys.PRED: item})[keys.PRED]


def _probability_path(destination: Path) -> Path:
    name = destination.name
    for suffix in (".nii.gz", *destination.suffixes[-1:]):
        if name.endswith(suffix):
            return destination.with_name(name[: -len(suffix)] + "_prob" + suffix)
    return destination.with_name(name + "_prob")


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)
