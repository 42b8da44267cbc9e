"""NaNGuard: skip optimizer steps whose loss or gradients are not finite; stop when they keep coming."""

from typing import Any

import pytorch_lightning as pl
import torch

from eisen_lightning import keys
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

#: the counter logged every training epoch: steps skipped since training started
SKIPPED_STEPS = keys.metric_key(keys.TRAIN, "skipped_steps")


class NonFiniteTrainingError(RuntimeError):
    """Raised by :class:`NaNGuard` when ``patience`` optimizer steps in a row were not finite."""


class NaNGuard(pl.Callback):
    """Skip every optimizer step with a non-finite loss or gradient; stop after ``patience`` in a row.

    The check runs after backward and before the optimizer step: when the loss or any gradient is
    NaN or infinite, every gradient is dropped (set to ``None``), so the optimizer changes no
    weight and no moment of its state for that step. The decision is shared by all processes under
    DDP, so the replicas stay identical. ``train/skipped_steps`` (the steps skipped so far) is
    logged every epoch. After ``patience`` consecutive skipped steps training stops with
    :class:`NonFiniteTrainingError`, which says what to change.

    Under ``trainer.precision=16-mixed`` the gradient scaler already skips steps whose scaled
    gradients overflow (and lowers its scale), which is expected at the start of training; the
    guard then watches the loss only.

    Args:
        patience: Consecutive non-finite steps tolerated before training stops.
        check_gradients: Also check every gradient (one reduction per step), not only the loss.

    >>> NaNGuard(patience=3).patience
    3
    """

    def __init__(self, patience: int = 10, check_gradients: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"nan_guard.patience must be an integer >= 1, got {patience!r}")
        self.patience = patience
        self.check_gradients = bool(check_gradients)
        self.skipped = 0
        self.consecutive = 0
        self._loss_finite = True

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        """Remember whether the loss is finite (of every accumulated batch of this step)."""
        self._loss_finite = self._loss_finite and bool(torch.isfinite(loss.detach()).all())

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Drop the gradients of a non-finite step (so the optimizer skips it), or count a good step."""
        problem = self._problem(trainer, pl_module)
        self._loss_finite = True
        bad = trainer.strategy.reduce_boolean_decision(problem is not None, all=False)
        if not bad:
            self.consecutive = 0
            return
        optimizer.zero_grad(set_to_none=True)
        self.skipped += 1
        self.consecutive += 1
        log.warning(
            "step %d (epoch %d) skipped: %s (%d in a row, patience %d)",
            trainer.global_step,
            trainer.current_epoch,
            problem or "not finite on another process",
            self.consecutive,
            self.patience,
        )
        if self.consecutive >= self.patience:
            raise NonFiniteTrainingError(
                f"{self.consecutive} optimizer steps in a row had a non-finite loss or gradient "
                f"(last: {problem or 'on another process'}, step {trainer.global_step}, epoch "
                f"{trainer.current_epoch}); training stopped. Fix: lower optimizer.lr, set "
                "trainer.gradient_clip_val=1.0, train with trainer.precision=32 or bf16-mixed instead "
                "of 16-mixed, run `eisen verify` for NaN voxels in the data, or raise "
                "callbacks.nan_guard.patience"
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log ``train/skipped_steps``: the steps skipped since training started."""
        pl_module.log(SKIPPED_STEPS, float(self.skipped), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        """The counters, saved in checkpoints so that a resumed run keeps counting."""
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters of a checkpoint."""
        self.skipped = int(state_dict.get("skipped", 0))
        self.consecutive = int(state_dict.get("consecutive", 0))

    def _problem(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str | None:
        """What is not finite in this step on this process, or ``None``."""
        if not self._loss_finite:
            return "the loss is not finite"
        if not self.check_gradients or getattr(trainer.precision_plugin, "scaler", None) is not None:
            return None
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            names = [n for n, p in pl_module.named_parameters() if p.grad is not None]
            first = next(n for n, g in zip(names, grads, strict=True) if not torch.isfinite(g).all())
            return f"the gradient of {first} is not finite"
        return None
