"""OnnxExport: export the net to ONNX, with its pipeline spec, whenever the monitored metric improves."""

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from eisen_lightning import keys
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

MODES = ("min", "max")


class OnnxExport(pl.Callback):
    """Export ``<dirpath>/<filename>`` and its ``.pipeline.json`` each time ``monitor`` improves.

    Every export is checked (``onnx.checker``, onnxruntime against torch on a real validation
    image, ``tolerance`` on the logits) before it replaces the previous one atomically; a broken
    export raises and stops the run. Like ``ModelCheckpoint``, nothing is exported during the
    sanity check or under ``fast_dev_run``.

    Args:
        monitor: Logged metric to watch, such as ``val/dice``.
        mode: ``max`` or ``min``: which direction is an improvement.
        dirpath: Folder of the export (``<run dir>/exports`` in the config).
        filename: Name of the model file.
        keep_history: Also keep every export as ``history/<stem>-epoch=NNN-<UTC time>.onnx`` with its spec.
        opset: ONNX opset.
        tolerance: Largest accepted absolute difference between onnxruntime's and torch's logits.

    >>> OnnxExport(monitor="val/dice", mode="max", dirpath="exports").filename
    'model.onnx'
    """

    def __init__(
        self,
        monitor: str = "val/dice",
        mode: str = "max",
        dirpath: str = "exports",
        filename: str = "model.onnx",
        keep_history: bool = False,
        opset: int = 20,
        tolerance: float = 1e-4,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"callbacks.onnx_export.mode must be one of {MODES}, got {mode!r}")
        if not filename.endswith(".onnx") or "/" in filename:
            raise ValueError(
                f"callbacks.onnx_export.filename must be a file name ending in .onnx, got {filename!r}"
            )
        if not tolerance > 0:
            raise ValueError(f"callbacks.onnx_export.tolerance must be > 0, got {tolerance}")
        self.monitor, self.mode, self.dirpath, self.filename = monitor, mode, Path(dirpath), filename
        self.keep_history, self.opset, self.tolerance = keep_history, int(opset), float(tolerance)
        self.best_score = math.inf if mode == "min" else -math.inf
        self.exports: list[str] = []
        self._sample: str | None = None

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best score so far (NaN never does)."""
        if math.isnan(value):
            return False
        return value < self.best_score if self.mode == "min" else value > self.best_score

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Export when the monitored metric improved in this validation."""
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise KeyError(
                f"callbacks.onnx_export.monitor={self.monitor!r} was not logged; "
                f"logged metrics: {sorted(metrics)}. Set monitor to one of them."
            )
        value = float(metrics[self.monitor])
        if not self.improves(value):
            return
        self.best_score = value
        if trainer.is_global_zero:
            self._export(trainer, pl_module, value)

    def _export(self, trainer: pl.Trainer, pl_module: pl.LightningModule, value: float) -> None:
        from eisen_lightning.export import export_task

        path = self.dirpath / self.filename
        provenance = {
            "source": {"epoch": trainer.current_epoch, "global_step": trainer.global_step},
            "monitor": {"key": self.monitor, "mode": self.mode, "value": value},
        }
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "predict_transforms"):
            raise TypeError(
                "OnnxExport describes the preprocessing of the run's DataModule: train with "
                "trainer.fit(task, datamodule=...) and a MedicalDataModule"
            )
        result = export_task(
            pl_module,
            datamodule,
            self._sample_image(datamodule),
            path,
            self.opset,
            self.tolerance,
            provenance,
        )
        self.exports.append(str(path))
        if self.keep_history:
            self._keep(result, trainer.current_epoch)
        log.info("%s improved to %.4f: exported %s", self.monitor, value, path)

    def _keep(self, result: Any, epoch: int) -> None:
        from eisen_lightning.export.exporter import atomic_write_bytes
        from eisen_lightning.export.spec import spec_path

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        stem = self.filename.removesuffix(".onnx")
        target = self.dirpath / "history" / f"{stem}-epoch={epoch:03d}-{stamp}.onnx"
        atomic_write_bytes(target, result.model_path.read_bytes())
        atomic_write_bytes(spec_path(target), result.spec_path.read_bytes())
        self.exports.append(str(target))

    def _sample_image(self, datamodule: Any) -> str:
        """The first validation image (the first image of the data set without splits)."""
        if self._sample is None:
            from eisen_lightning.export.task_export import first_image

            wanted = list(getattr(datamodule, "splits", {}).get(keys.VAL, []))[:1]
            cases = [c for c in datamodule.labelled_cases() if c[keys.CASE_ID] in wanted]
            self._sample = str(cases[0][keys.IMAGE]) if cases else first_image(datamodule)
        return self._sample

    def state_dict(self) -> dict[str, Any]:
        """The best score, so that a resumed run exports only on a real improvement."""
        return {"monitor": self.monitor, "mode": self.mode, "best_score": self.best_score}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the best score of the same monitor and mode."""
        if state_dict.get("monitor") == self.monitor and state_dict.get("mode") == self.mode:
            self.best_score = float(state_dict["best_score"])
