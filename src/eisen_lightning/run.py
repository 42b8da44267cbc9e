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
    ckpt_path = _resumed_ckpt_path(cfg) or checked_ckpt_path(cfg.get("ckpt_path"), required=False)
    datamodule, task, trainer = build(cfg)
    _check_fits(ckpt_path, task, cfg)
    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
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
    _check_fits(ckpt_path, task, cfg)
    metrics: dict[str, float] = {}
    trainer.validate(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics.update(_scalars(trainer.callback_metrics))
    if datamodule.splits.get("test"):
        trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
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
    volumes = cfg.data.get("slice_axis") is not None  # a 2D net on slices of 3D files
    spatial_dims = 3 if volumes else datamodule.info.spatial_dims
    return verify_cases(cases, datamodule.verify_spec(), spatial_dims=spatial_dims)


def build(cfg: DictConfig) -> tuple[Any, Any, Any]:
    """Instantiate the DataModule (checking its data first), the task and the trainer of ``cfg``.

    The data set's channels, classes and label names are merged into ``cfg.dataset`` before the
    net and task are built, so their configs can read ``${dataset.num_classes}``. With
    ``data.slice_axis`` set, the task's sliding window runs slice by slice (MONAI's ``SliceInferer``).
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from eisen_lightning.data.slicing import use_slice_inferer

    pl.seed_everything(cfg.get("seed", 0), workers=True)
    if cfg.trainer.get("deterministic"):
        _seed_transforms(cfg.get("seed", 0))
    datamodule = instantiate(cfg.data, **_augmentations(cfg))
    datamodule.prepare_data()
    with open_dict(cfg):
        cfg.dataset = datamodule.info.as_dict()
    use_slice_inferer(cfg)
    task = instantiate(cfg.task, _convert_="all")
    _check_patch_size(cfg, task)
    if cfg.get("parallel") is not None:  # parallel=pipeline: the net split across devices
        from eisen_lightning.parallel import parallel_net

        task.net = parallel_net(cfg, task.net)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if any(type(c).__name__ == "ActivationCheckpointing" for c in callbacks):
        from eisen_lightning.models.checkpointing import check_not_pipelined

        check_not_pipelined(task.net)  # before the trainer fills any cache
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    if not loggers:
        callbacks = _without_logger_callbacks(callbacks)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **_checkpoint_io(cfg))
    return datamodule, task, trainer


def _augmentations(cfg: DictConfig) -> dict[str, Any]:
    """``{"augmentations": ...}``: the ``transforms`` group (``transforms=[a,b]``) instantiated in order.

    Empty without the group, so the data config's own ``augmentations`` (if any) is kept.
    """
    from hydra.utils import instantiate

    from eisen_lightning.data.datamodule import check_augmentations

    chosen = cfg.get("transforms")
    if not chosen:
        return {}
    built = {str(k): instantiate(v) for k, v in chosen.items() if v is not None}
    return {"augmentations": check_augmentations(built)}


def _checkpoint_io(cfg: DictConfig) -> dict[str, Any]:
    """Atomic checkpoint writes (``eisen_lightning.checkpoint``) unless the trainer config sets plugins."""
    from eisen_lightning.checkpoint import AtomicCheckpointIO

    return {} if cfg.trainer.get("plugins") is not None else {"plugins": [AtomicCheckpointIO()]}


def _resumed_ckpt_path(cfg: DictConfig) -> str | None:
    """With ``resume`` set, the run directory is the resumed run's (see ``cli``): its last checkpoint.

    Its ``splits.json`` is reused, so the resumed run trains and validates on the same cases.
    """
    from eisen_lightning.checkpoint import CHECKPOINT_DIR, LAST

    if cfg.get("resume") in (None, False, "false", ""):
        return None
    run_dir = Path(cfg.paths.output_dir)
    last = run_dir / CHECKPOINT_DIR / LAST
    if not last.is_file():
        raise FileNotFoundError(f"resume={cfg.resume}: {last} does not exist; start a new run without resume")
    if (run_dir / "splits.json").is_file() and cfg.data.get("splits_file") is None:
        with open_dict(cfg):
            cfg.data.splits_file = str(run_dir / "splits.json")
    log.info("resuming %s from %s", run_dir, last)
    return str(last)


def _check_fits(ckpt_path: str | None, task: Any, cfg: DictConfig) -> None:
    """Explain a checkpoint made for another net or data set before Lightning loads it."""
    from eisen_lightning.checkpoint import check_checkpoint_fits

    if ckpt_path not in (None, "last", "best"):
        check_checkpoint_fits(ckpt_path, task, cfg.dataset)


def _seed_transforms(seed: int) -> None:
    """Seed MONAI's random transforms too (they keep random states of their own, apart from numpy's).

    ``set_determinism`` makes every transform pipeline built afterwards draw from ``seed``.
    """
    from monai.utils import set_determinism

    set_determinism(seed=seed)


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
    output_dir = Path(cfg.paths.output_dir)
    if not metrics and (output_dir / METRICS_FILE).is_file():  # e.g. resuming a run that had finished
        log.warning("nothing new was computed: %s is kept as it was", output_dir / METRICS_FILE)
        return json.loads((output_dir / METRICS_FILE).read_text())
    if trainer.is_global_zero:
        atomic_write_text(
            output_dir / METRICS_FILE, json.dumps(dict(sorted(metrics.items())), indent=2) + "\n"
        )
        log.info("metrics written to %s", output_dir / METRICS_FILE)
    return metrics
