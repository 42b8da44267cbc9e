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
from eisen_lightning.predict_inputs import collect_cases, output_path
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
    from hydra.utils import instantiate

    from eisen_lightning.run import checked_ckpt_path

    ckpt_path = checked_ckpt_path(cfg.get("ckpt_path"), required=True)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    datamodule = instantiate(cfg.data)
    saved = checkpoint.get(type(datamodule).__qualname__)
    if saved is not None and hasattr(datamodule, "load_state_dict"):
        datamodule.load_state_dict(saved)
    cases = collect_cases(str(cfg.input), datamodule)
    with open_dict(cfg):
        cfg.dataset = datamodule.info.as_dict()
    task = instantiate(cfg.task, _convert_="all")
    task.load_state_dict(checkpoint["state_dict"])
    device = _device(cfg.get("device", "auto"))
    task.to(device).eval()
    predictor = CasePredictor(task, datamodule.predict_transforms(), device, bool(cfg.save_probabilities))
    report = PredictReport()
    for case in cases:
        source = case[keys.IMAGE]
        try:
            destination = output_path(case, Path(cfg.output), cfg.get("output_format"))
            predictor.write(case, destination)
            report.written.append((source, str(destination)))
        except Exception as err:  # one bad case must not stop a batch; every failure is reported
            log.error("%s: %s", source, err)
            report.failures.append((source, f"{type(err).__name__}: {err}"))
    return report


class CasePredictor:
    """Preprocess, infer, invert and write one case at a time.

    Args:
        task: A trained task with ``infer`` and ``postprocess``.
        transforms: The deterministic preprocessing (MONAI dictionary transforms on ``image``).
        device: Where the net runs.
        save_probabilities: Also write the class probabilities beside the label map.
    """

    def __init__(self, task: Any, transforms: list, device: torch.device, save_probabilities: bool) -> None:
        from monai.transforms import Compose

        self.task, self.device, self.save_probabilities = task, device, save_probabilities
        self.preprocess = Compose(transforms)

    @torch.no_grad()
    def write(self, case: dict[str, Any], destination: Path) -> None:
        """Predict ``case`` and write its label map to ``destination``, then check the geometry."""
        from eisen_lightning.geometry import compare_files
        from eisen_lightning.io import save

        data = self.preprocess({keys.IMAGE: case[keys.IMAGE]})
        image = data[keys.IMAGE]
        logits = self.task.infer(image.as_tensor()[None].to(self.device))[0].float().cpu()
        label = logits.argmax(dim=0, keepdim=True).to(torch.uint8)
        outputs = {keys.PRED: self._invert(data, label, nearest=True)}
        if self.save_probabilities:
            outputs[keys.PROB] = self._invert(data, logits.softmax(dim=0), nearest=False)
        destination.parent.mkdir(parents=True, exist_ok=True)
        save(outputs[keys.PRED], destination)
        differences = compare_files(case[keys.IMAGE], str(destination))
        if differences:
            raise RuntimeError(
                f"{destination} does not match the geometry of its input: {'; '.join(differences)}"
            )
        if keys.PROB in outputs:
            save(outputs[keys.PROB], _probability_path(destination))

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
