"""bf16-mixed on CPU: the net runs in bfloat16, the loss and the Dice reductions in float32."""

import math

import torch
from scale_helpers import loader, small_unet, task, trainer

from conftest import QUIET, compose
from eisen_lightning import run


class RecordingLoss(torch.nn.Module):
    def __init__(self, loss):
        super().__init__()
        self.loss, self.seen = loss, []

    def forward(self, output, target):
        value = self.loss(output, target)
        self.seen.append((output.dtype, value.dtype, torch.is_autocast_enabled("cpu")))
        return value


def _spy_on_compute(metric):
    """Record the dtype of every state tensor and of the result each time ``metric`` computes."""
    seen, compute = [], metric.compute

    def spy():
        for name in metric._defaults:
            value = getattr(metric, name)
            seen.extend((name, v.dtype) for v in (value if isinstance(value, list) else [value]))
        result = compute()
        seen.append(("result", result.dtype))
        return result

    metric.compute = spy
    return seen


def test_bf16_mixed_computes_the_loss_and_dice_in_float32():
    from monai.losses import DiceCELoss

    loss = RecordingLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    model = task(small_unet(), loss=loss)
    outputs = []
    model.net.register_forward_hook(lambda module, args, out: outputs.append(out.dtype))
    computed = _spy_on_compute(model.metrics.stages["val"]["dice"])
    fit = trainer(max_steps=2, limit_val_batches=2, precision="bf16-mixed")
    fit.fit(model, train_dataloaders=loader(2), val_dataloaders=loader(2))
    assert set(outputs) == {torch.bfloat16}, "the net ran under bfloat16 autocast"
    assert set(loss.seen) == {(torch.float32, torch.float32, False)}, (
        "loss on float32 copies, outside autocast"
    )
    # Dice counts voxels exactly (int64) and divides in float32; nothing in bfloat16
    assert {dtype for name, dtype in computed} == {torch.int64, torch.float32}, computed
    assert {dtype for name, dtype in computed if name == "result"} == {torch.float32}
    assert 0.0 <= fit.callback_metrics["val/dice"] <= 1.0


def test_demo_trains_in_bf16_mixed(tmp_path):
    cfg = compose(["trainer.precision=bf16-mixed", "debug=fast_dev_run", *QUIET], tmp_path)
    metrics = run.train(cfg)
    assert math.isfinite(metrics["train/loss"]) and 0.0 <= metrics["val/dice"] <= 1.0
