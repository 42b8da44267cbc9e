"""train(cfg) and evaluate(cfg): build every object of a composed config, run it, return the metrics."""

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from eisen_lightning.utils.files import atomic_write_text
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the task of ``cfg``; test it too when ``test_after_fit`` is set.

    Writes ``metrics.json`` in the run directory.

    Args:
        cfg: A config composed from ``conf/train.yaml``.

    Returns:
        The final metrics, such as ``{"val/dice": 0.91, "val/dice/spleen": 0.91, ...}``.
    """
    ckpt_path = checked_ckpt_path(cfg.get("ckpt_path"), required=False)
    datamodule, task, trainer = build(cfg)
    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = _scalars(trainer.callback_metrics)
    if cfg.get("test_after_fit"):
        best = "best" if _has_checkpoint(trainer) and not trainer.fast_dev_run else None
        trainer.test(task, datamodule=datamodule, ckpt_path=best)
        metrics.update(_scalars(trainer.callback_metrics))
    return _finish(cfg, trainer, metrics)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Run the validation and test stages of ``cfg.ckpt_path`` and write their metrics.

    The splits of the training run are reused when its ``splits.json`` sits beside the
    checkpoint folder, so validation and test cases are exactly those of training.

    Args:
        cfg: A config composed from ``conf/eval.yaml``.
    """
    ckpt_path = checked_ckpt_path(cfg.get("ckpt_path"), required=True)
    splits_file = Path(ckpt_path).resolve().parent.parent / "splits.json"
    if splits_file.is_file() and cfg.data.get("splits_file") is None:
        log.info("using the training run's splits from %s", splits_file)
        with open_dict(cfg):
            cfg.data.splits_file = str(splits_file)
    datamodule, task, trainer = build(cfg)
    metrics: dict[str, float] = {}
    trainer.validate(task, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics.update(_scalars(trainer.callback_metrics))
    if datamodule.splits.get("test"):
        trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(_scalars(trainer.callback_metrics))
    else:
        log.warning(
            "no held-out test cases (data.test_fraction=%s): test stage skipped", datamodule.test_fraction
        )
    return _finish(cfg, trainer, metrics)


def verify(cfg: DictConfig) -> Any:
    """Read every file of the configured data set once and return the report of all problems.

    Args:
        cfg: A config composed from ``conf/train.yaml`` (the same data overrides as training).
    """
    from hydra.utils import instantiate

    from eisen_lightning.data.verify import verify_cases

    datamodule = instantiate(cfg.data)
    datamodule.check_files = False
    datamodule.prepare_data()
    cases = datamodule.labelled_cases() + datamodule.unlabelled_cases()
    return verify_cases(cases, range(datamodule.info.num_classes))


def build(cfg: DictConfig) -> tuple[Any, Any, Any]:
    """Instantiate the DataModule (checking its data first), the task and the trainer of ``cfg``.

    The data set's channels, classes and label names are merged into ``cfg.dataset`` before the
    net and task are built, so their configs can read ``${dataset.num_classes}``.
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    pl.seed_everything(cfg.get("seed", 0), workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    with open_dict(cfg):
        cfg.dataset = datamodule.info.as_dict()
    task = instantiate(cfg.task, _convert_="all")
    _check_patch_size(cfg, task)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    if not loggers:
        callbacks = _without_logger_callbacks(callbacks)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, task, trainer


def _without_logger_callbacks(callbacks: list[Any]) -> list[Any]:
    """Drop Lightning's LearningRateMonitor, which refuses to run without a logger (``~logger``)."""
    from pytorch_lightning.callbacks import LearningRateMonitor

    kept = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if len(kept) < len(callbacks):
        log.info("no logger: the learning-rate monitor is left out")
    return kept


def _check_patch_size(cfg: DictConfig, task: Any) -> None:
    """Fail before training when the net cannot take ``data.patch_size`` (e.g. not divisible by 16)."""
    from hydra.core.hydra_config import HydraConfig

    from eisen_lightning.models import check_input_size

    if cfg.data.get("patch_size") is None or not hasattr(task, "net"):
        return
    choice = HydraConfig.get().runtime.choices.get("net") if HydraConfig.initialized() else None
    name = f"net={choice}" if choice else "net"
    check_input_size(task.net, list(cfg.data.patch_size), net_name=name, size_name="data.patch_size")


def checked_ckpt_path(ckpt_path: str | None, required: bool) -> str | None:
    """Return ``ckpt_path`` if it names an existing file (or ``last``/``best``), before any work starts.

    Raises:
        ValueError: If it is required and missing.
        FileNotFoundError: If the file does not exist.
    """
    if ckpt_path in (None, "", "null"):
        if required:
            raise ValueError("ckpt_path is required: eisen eval ckpt_path=outputs/.../checkpoints/best.ckpt")
        return None
    if ckpt_path in ("last", "best"):
        return ckpt_path
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a .ckpt file"
        )
    return str(ckpt_path)


def _has_checkpoint(trainer: Any) -> bool:
    return trainer.checkpoint_callback is not None and bool(trainer.checkpoint_callback.best_model_path)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value) for name, value in metrics.items() if getattr(value, "numel", lambda: 1)() == 1
    }


def _finish(cfg: DictConfig, trainer: Any, metrics: dict[str, float]) -> dict[str, float]:
    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        atomic_write_text(
            output_dir / METRICS_FILE, json.dumps(dict(sorted(metrics.items())), indent=2) + "\n"
        )
        log.info("metrics written to %s", output_dir / METRICS_FILE)
    return metrics
