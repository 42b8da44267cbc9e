"""TensorBoardSummaries: losses, metrics, tensors, images, figures and worst cases, with no user code."""

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl

from eisen_lightning import keys
from eisen_lightning.callbacks.collect import EpochRecord, TaskInfo
from eisen_lightning.callbacks.write import Drawing, write_record
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


class TensorBoardSummaries(pl.Callback):
    """Write summaries of every stage epoch (train, val, test) to the run's TensorBoard logger.

    Everything is computed from tensors already at hand (the batch and the dict each task step
    returns); the net is never run again. Per epoch and stage it writes the mean and standard
    deviation of the loss, of per-case Dice (segmentation) or per-batch accuracy (classification)
    and of every input and output tensor; once every ``every_n_epochs`` epochs (and on the last
    one) it adds their histograms, images of the first ``max_images`` samples (2D: PNG grids; 3D:
    animated GIFs through ``axes``), each comparison pair side by side and over the image, the
    confusion matrix and PR curves (classification) and the ``worst_cases`` worst cases (val, test).
    Validation and test also get a per-case table as text. See the README for the tags.

    It does nothing without a ``TensorBoardLogger`` and on every process but global rank zero
    (under DDP the summaries describe rank zero's share of the data). A failure while writing is
    logged as a warning and never stops training.

    Args:
        every_n_epochs: Histograms, images and figures on the first epoch a stage runs in each
            block of this many epochs, and on the last; scalars are written every epoch.
            Validation or test outside ``fit`` always draws.
        max_images: Samples drawn per tensor and epoch.
        axes: Spatial axes (``0``, ``1``, ``2``, or negative) that the GIFs of 3D images slide
            through, one GIF each; ``[0, 1, 2]`` for all three.
        comparison_pairs: Pairs of batch or output keys drawn side by side and, when both are
            label maps, as coloured overlays on the first input image.
        worst_cases: Validation and test cases with the lowest score drawn per epoch (mean Dice;
            probability of the true class); ``0`` for none.
        max_frames: Most frames of a GIF; slices are subsampled evenly beyond it.
        fps: Frames per second of the GIFs.
        stages: Stages summarised.

    >>> callback = TensorBoardSummaries(every_n_epochs=10, axes=[0, 1, 2])
    >>> callback.axes
    [0, 1, 2]
    """

    def __init__(
        self,
        every_n_epochs: int = 10,
        max_images: int = 4,
        axes: Sequence[int] = (-1,),
        comparison_pairs: Sequence[Sequence[str]] = ((keys.LABEL, keys.PRED),),
        worst_cases: int = 3,
        max_frames: int = 24,
        fps: float = 10.0,
        stages: Sequence[str] = keys.STAGES,
    ) -> None:
        super().__init__()
        _check_int("every_n_epochs", every_n_epochs, 1)
        _check_int("max_images", max_images, 1)
        _check_int("worst_cases", worst_cases, 0)
        _check_int("max_frames", max_frames, 1)
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 100:
            raise ValueError(f"callbacks.summaries.fps must be a number in (0, 100], got {fps!r}")
        axes = list(axes) if isinstance(axes, Sequence) and not isinstance(axes, str) else [axes]
        if not axes or any(isinstance(a, bool) or a not in (-3, -2, -1, 0, 1, 2) for a in axes):
            raise ValueError(
                f"callbacks.summaries.axes must be a non-empty list of spatial axes among "
                f"[0, 1, 2, -1, -2, -3], got {axes!r}"
            )
        self.comparison_pairs = _checked_pairs(comparison_pairs)
        stages = [stages] if isinstance(stages, str) else list(stages)
        if not stages or any(s not in keys.STAGES for s in stages):
            raise ValueError(
                f"callbacks.summaries.stages must be a non-empty list of {list(keys.STAGES)}, got {stages!r}"
            )
        self.every_n_epochs, self.max_images, self.worst_cases = every_n_epochs, max_images, worst_cases
        self.axes, self.stages = list(dict.fromkeys(a % 3 for a in axes)), stages
        self.drawing = Drawing(self.axes, max_frames, float(fps))
        self._records: dict[str, EpochRecord] = {}
        self._info: TaskInfo | None = None
        self._legend_written = False
        self._drawn_blocks: dict[str, int] = {}

    # -- Lightning hooks --------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Read the task's keys and classes."""
        self._info = TaskInfo.of(pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the training record."""
        self._start(keys.TRAIN, trainer, pl_module)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the validation record (not during the sanity check)."""
        self._start(keys.VAL, trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the test record."""
        self._start(keys.TEST, trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Gather the training batch."""
        self._add(keys.TRAIN, batch, outputs)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Gather the validation batch."""
        self._add(keys.VAL, batch, outputs)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Gather the test batch."""
        self._add(keys.TEST, batch, outputs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the training summaries."""
        self._end(keys.TRAIN, trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the validation summaries."""
        self._end(keys.VAL, trainer)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the test summaries."""
        self._end(keys.TEST, trainer)

    # -- internals --------------------------------------------------------------------------------
    def _start(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._records.pop(stage, None)
        if stage not in self.stages or trainer.sanity_checking or writer_of(trainer) is None:
            return
        if self._info is None:
            self._info = TaskInfo.of(pl_module)
        worst = self.worst_cases if stage != keys.TRAIN else 0
        drawn = self._drawn(stage, trainer)
        self._records[stage] = EpochRecord(stage, drawn, self.max_images, worst, self.comparison_pairs)

    def _drawn(self, stage: str, trainer: pl.Trainer) -> bool:
        """Draw the first epoch of ``stage`` in each block of ``every_n_epochs`` epochs, and the last.

        Counting blocks rather than testing ``epoch % every_n_epochs == 0`` still draws validation
        when it runs only every few epochs (``check_val_every_n_epoch``).
        """
        from pytorch_lightning.trainer.states import TrainerFn

        if trainer.state.fn != TrainerFn.FITTING:
            return True
        epoch, last = trainer.current_epoch, trainer.max_epochs
        block = epoch // self.every_n_epochs
        if self._drawn_blocks.get(stage) != block or (last is not None and epoch == last - 1):
            self._drawn_blocks[stage] = block
            return True
        return False

    def _add(self, stage: str, batch: Any, outputs: Any) -> None:
        record = self._records.get(stage)
        if record is None or not isinstance(batch, Mapping) or self._info is None:
            return
        try:
            record.add(batch, outputs, self._info)
        except Exception:  # a summary must never stop a training run
            log.warning(
                "summaries: %s batch skipped; stage summaries stop for this epoch", stage, exc_info=True
            )
            self._records.pop(stage, None)

    def _end(self, stage: str, trainer: pl.Trainer) -> None:
        record = self._records.pop(stage, None)
        writer = writer_of(trainer)
        if record is None or writer is None or self._info is None:
            return
        try:
            tags = write_record(
                writer, record, self._info, self.drawing, trainer.global_step, not self._legend_written
            )
            # No flush: the writer's thread writes the events (the logger flushes at the end of the run).
            self._legend_written = self._legend_written or "legend" in tags
        except Exception:  # a summary must never stop a training run
            log.warning("summaries: writing the %s summaries failed", stage, exc_info=True)


def writer_of(trainer: pl.Trainer) -> Any:
    """The ``SummaryWriter`` of the trainer's TensorBoard logger on global rank zero, else ``None``."""
    from pytorch_lightning.loggers import TensorBoardLogger

    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"callbacks.summaries.{name} must be an integer >= {minimum}, got {value!r}")


def _checked_pairs(pairs: Sequence[Sequence[str]] | None) -> list[tuple[str, str]]:
    checked = []
    for pair in pairs or []:
        items = list(pair) if isinstance(pair, Sequence) and not isinstance(pair, str) else [pair]
        if len(items) != 2 or not all(isinstance(k, str) and k for k in items):
            raise ValueError(
                "callbacks.summaries.comparison_pairs must be a list of [key, key] pairs of batch or "
                f"output keys such as [[label, pred]], got {pairs!r}"
            )
        checked.append((items[0], items[1]))
    return checked
