"""NaNGuard: non-finite steps are detected and skipped, counted, and stop training after `patience`."""

import copy

import pytest
import pytorch_lightning as pl
import torch
from scale_helpers import FailingNet, loader, small_unet, task, trainer

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.callbacks import NaNGuard
from eisen_lightning.callbacks.nan_guard import NonFiniteTrainingError


class Snapshots(pl.Callback):
    """The weights after every training step."""

    def __init__(self):
        self.weights = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.weights.append(copy.deepcopy(pl_module.net.net.state_dict()))


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_non_finite_steps_change_no_weight_and_no_optimizer_state(kind):
    guard, snapshots = NaNGuard(patience=3), Snapshots()
    model = task(FailingNet(small_unet(), bad_calls={1, 2}, kind=kind))
    fit = trainer(max_steps=4, limit_val_batches=0, callbacks=[guard, snapshots])
    fit.fit(model, train_dataloaders=loader(4))
    w = snapshots.weights
    assert not _same(w[0], w[3]), "good steps update the weights"
    assert _same(w[0], w[1]) and _same(w[0], w[2]), "skipped steps leave every weight as it was"
    steps = {int(s["step"]) for s in fit.optimizers[0].state.values()}
    assert steps == {2}, "AdamW counted the two good steps only (no moment or decay update otherwise)"
    assert (guard.skipped, guard.consecutive) == (2, 0)
    assert fit.callback_metrics["train/skipped_steps"] == 2


def test_patience_consecutive_failures_stop_training_with_the_fix():
    model = task(FailingNet(small_unet(), bad_calls={1, 2, 3}, kind="gradient"))
    fit = trainer(max_steps=6, limit_val_batches=0, callbacks=[NaNGuard(patience=2)])
    with pytest.raises(NonFiniteTrainingError, match=r"2 optimizer steps in a row") as error:
        fit.fit(model, train_dataloaders=loader(6))
    assert "gradient of net.probe" in str(error.value) and "optimizer.lr" in str(error.value)
    assert "step 2, epoch 0" in str(error.value), "stopped at the second failure in a row (steps 1 and 2)"
    assert fit.global_step == 2


def test_isolated_failures_never_reach_the_patience():
    guard = NaNGuard(patience=2)
    model = task(FailingNet(small_unet(), bad_calls={0, 2, 4}, kind="loss"))
    trainer(max_steps=6, limit_val_batches=0, callbacks=[guard]).fit(model, train_dataloaders=loader(6))
    assert guard.skipped == 3


def test_patience_is_checked():
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        NaNGuard(patience=0)


def test_guard_with_the_default_callbacks_in_a_real_run(tmp_path):
    cfg = compose(["callbacks=[default,nan_guard]", "debug=fast_dev_run", *QUIET], tmp_path)
    assert {"model_checkpoint", "nan_guard"} <= set(cfg.callbacks)
    metrics = run.train(cfg)
    assert metrics["train/skipped_steps"] == 0 and metrics["train/loss"] > 0
