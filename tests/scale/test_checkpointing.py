"""Activation checkpointing: the plain net's gradients and running statistics, less activation memory."""

import pytest
import torch
from monai.networks.nets import UNet
from scale_helpers import loader, task, trainer

from eisen_lightning.callbacks import ActivationCheckpointing
from eisen_lightning.models.checkpointing import checkpoint_blocks


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return UNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2), num_res_units=2, norm="batch", dropout=0.1)


def _step(net: torch.nn.Module, x: torch.Tensor) -> None:
    torch.manual_seed(1)  # the same dropout masks for both nets
    net(x).square().mean().backward()


def test_gradients_and_running_statistics_equal_the_plain_nets():
    x = torch.randn(2, 1, 32, 32, 32)
    plain, wrapped = _unet(), _unet()
    assert checkpoint_blocks(wrapped) == 5
    _step(plain, x)
    _step(wrapped, x)
    for (name, p), q in zip(plain.named_parameters(), wrapped.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
    plain_state, wrapped_state = plain.state_dict(), wrapped.state_dict()
    assert list(plain_state) == list(wrapped_state), "state-dict keys are those of the plain net"
    for key, value in plain_state.items():
        assert torch.equal(value, wrapped_state[key]), f"{key} (recomputation must not update it twice)"


def test_activation_memory_drops():
    """Bytes of activations alive after the forward pass, counted by PyTorch's memory tracker on CPU."""
    from torch.distributed._tools.mem_tracker import MemTracker

    def activations_after_forward(net: torch.nn.Module) -> int:
        tracker = MemTracker()
        tracker.track_external(net)
        with tracker:
            out = net(torch.randn(2, 1, 32, 32, 32))
            snapshot = tracker.get_tracker_snapshot("current")
            out.sum().backward()
        device = next(iter(snapshot))
        return next(v for k, v in snapshot[device].items() if getattr(k, "name", "") == "ACT")

    plain = activations_after_forward(_unet())
    wrapped_net = _unet()
    checkpoint_blocks(wrapped_net)
    wrapped = activations_after_forward(wrapped_net)
    assert wrapped < 0.8 * plain, (plain, wrapped)


def test_net_without_the_blocks_names_its_classes():
    net = UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    with pytest.raises(ValueError, match=r"no block of \['ResidualUnit'\].*Convolution"):
        checkpoint_blocks(net, ["monai.networks.blocks.ResidualUnit"])


def test_callback_wraps_before_training_and_checkpoints_load_into_the_plain_net(tmp_path):
    callback = ActivationCheckpointing(blocks=["monai.networks.blocks.ResidualUnit"])
    model = task(UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=2))
    fit = trainer(max_steps=2, limit_val_batches=1, callbacks=[callback], default_root_dir=tmp_path)
    fit.fit(model, train_dataloaders=loader(2), val_dataloaders=loader(1))
    assert callback.wrapped == 3
    fit.save_checkpoint(tmp_path / "wrapped.ckpt")
    plain = task(UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=2))
    state = torch.load(tmp_path / "wrapped.ckpt", weights_only=False)["state_dict"]
    plain.load_state_dict(state)
    loaded = {k: v for k, v in plain.state_dict().items() if isinstance(v, torch.Tensor)}
    assert loaded and all(torch.equal(v, state[k]) for k, v in loaded.items())
