"""PipelineParallel computes what the unsplit net computes: outputs, gradients, state, modes, devices."""

import copy

import pytest
import torch
from hydra.utils import instantiate
from monai.networks.nets import UNet
from torch import nn

from conftest import compose
from eisen_lightning.parallel import PipelineParallel
from eisen_lightning.parallel.placement import state_to_param_devices

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def assert_close_grads(actual: dict, expected: dict) -> None:
    """Equal within float32 summation-order error: 1e-4 of each gradient's largest magnitude.

    A gradient that is zero in exact arithmetic (a convolution bias before instance norm) is
    rounding noise in both nets; its scale is floored at 1e-3 of the net's largest gradient.
    """
    assert actual.keys() == expected.keys()
    floor = 1e-3 * max(float(g.abs().max()) for g in expected.values())
    for name, value in expected.items():
        scale = max(float(value.abs().max()), floor)
        error = float((actual[name] - value).abs().max())
        assert error <= 1e-4 * scale, f"{name}: largest difference {error:.3g} for values up to {scale:.3g}"


def _conf_net(tmp_path, name: str, dims: int, *overrides: str) -> nn.Module:
    dataset = ["dataset.in_channels=1", "dataset.num_classes=3", "dataset.label_names=[a,b,c]"]
    cfg = compose([f"net={name}", *dataset, f"dataset.spatial_dims={dims}", *overrides], tmp_path)
    return instantiate(cfg.net)


# (conf/net option, spatial dims, input size, balance); the 45M-parameter 3D VNet is balanced by
# memory, which is not timed node by node
NETS = {
    "unet3d_small": ("unet3d_small", 3, (16, 16, 16), "time"),
    "unet2d": ("unet2d", 2, (32, 32), "time"),
    "vnet2d": ("vnet", 2, (32, 32), "time"),
    "vnet3d": ("vnet", 3, (16, 16, 16), "memory"),
}


def _forward_backward(module: nn.Module, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, dict]:
    torch.manual_seed(seed)  # the same dropout masks for both nets
    module.zero_grad(set_to_none=True)
    out = module(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


CASES = [(name, stages) for name in sorted(NETS) for stages in (2, 3) if (name, stages) != ("vnet3d", 3)]


@pytest.mark.parametrize(("name", "stages"), CASES)
def test_outputs_and_gradients_equal_the_unsplit_net(name, stages, tmp_path):
    option, dims, size, balance = NETS[name]
    torch.manual_seed(0)
    net = _conf_net(tmp_path, option, dims)
    x = torch.randn(2, 1, *size)
    expected, expected_grads = _forward_backward(net, x)
    # batch norm: one micro-batch keeps the batch statistics (and so the result) of the unsplit net
    pipe = PipelineParallel(net, devices=["cpu"] * stages, chunks=1, example_input=x[:1], balance=balance)
    assert len(pipe.stage_costs) == stages and all(c > 0 for c in pipe.stage_costs)
    output, grads = _forward_backward(pipe, x)
    torch.testing.assert_close(output, expected, **TOLERANCE)
    assert_close_grads(grads, expected_grads)


@pytest.mark.parametrize("chunks", [2, 4])
def test_micro_batches_equal_the_unsplit_net_without_batch_statistics(chunks, tmp_path):
    torch.manual_seed(1)
    net = _conf_net(tmp_path, "unet3d_small", 3, "net.norm=instance", "net.num_res_units=2")
    x = torch.randn(4, 1, 16, 16, 16)
    expected, expected_grads = _forward_backward(net, x)
    pipe = PipelineParallel(net, devices=["cpu"] * 3, chunks=chunks, example_input=x[:1], balance="memory")
    output, grads = _forward_backward(pipe, x)
    torch.testing.assert_close(output, expected, **TOLERANCE)
    assert_close_grads(grads, expected_grads)


def _small_unet(norm: str = "batch") -> nn.Module:
    return UNet(2, 1, 3, channels=(4, 8, 16), strides=(2, 2), num_res_units=1, norm=norm)


def test_micro_batches_stream_through_the_stages_in_gpipe_order():
    pipe = PipelineParallel(
        _small_unet(), devices=["cpu"] * 3, chunks=4, example_input=torch.rand(1, 1, 16, 16)
    )
    calls = []
    for index, stage in enumerate(pipe.stages):
        stage.register_forward_pre_hook(lambda module, args, index=index: calls.append((index, len(args[0]))))
    pipe(torch.rand(8, 1, 16, 16))
    # tick t runs stage s on micro-batch t - s: stage 1 works on micro-batch 0 before stage 0
    # takes micro-batch 1, instead of one micro-batch going through every stage at a time
    assert [stage for stage, _ in calls] == [0, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 2]
    assert {size for _, size in calls} == {2}


def test_state_dict_and_parameters_are_those_of_the_unsplit_net():
    torch.manual_seed(0)
    net = _small_unet()
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    pipe = PipelineParallel(net, devices=["cpu", "cpu"], example_input=torch.rand(1, 1, 16, 16))
    assert list(pipe.state_dict()) == list(reference)
    assert [n for n, _ in pipe.named_parameters()] == [n for n, _ in net.named_parameters()]
    assert all(a is b for a, b in zip(pipe.parameters(), net.parameters(), strict=True))
    # an unsplit checkpoint loads into the pipeline, and the pipeline's into an unsplit net
    other = _small_unet()
    pipe.load_state_dict(other.state_dict())
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(pipe.eval()(x), other.eval()(x))
    fresh = _small_unet()
    fresh.load_state_dict(pipe.state_dict())
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, other.state_dict()[key], msg=key)


def test_eval_and_train_propagate_to_every_layer():
    torch.manual_seed(0)
    net = _small_unet()
    x = torch.rand(4, 1, 16, 16)
    pipe = PipelineParallel(net, devices=["cpu"] * 3, chunks=1, example_input=x[:1])
    pipe(x)  # a training step updates the running statistics
    unsplit = copy.deepcopy(net).eval()
    assert pipe.eval() is pipe
    assert not any(m.training for m in net.modules()) and not pipe.training
    with torch.no_grad():
        torch.testing.assert_close(pipe(x), unsplit(x))
    pipe.train()
    assert all(m.training for m in net.modules())


def test_the_modes_of_single_layers_are_kept():
    net = _small_unet()
    frozen = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in frozen:  # frozen batch statistics while the rest trains
        module.eval()
    pipe = PipelineParallel(net, devices=["cpu", "cpu"], example_input=torch.rand(1, 1, 16, 16))
    assert pipe.training and not any(m.training for m in frozen)
    assert not PipelineParallel(_small_unet().eval(), devices=["cpu", "cpu"]).training


def test_copies_and_pickles_keep_the_split(tmp_path):
    torch.manual_seed(0)
    net = _small_unet().eval()
    x = torch.rand(2, 1, 16, 16)
    pipe = PipelineParallel(net, devices=["cpu"] * 3, chunks=2, example_input=x[:1])
    torch.save(pipe, tmp_path / "pipe.pt")
    for other in (copy.deepcopy(pipe), torch.load(tmp_path / "pipe.pt", weights_only=False)):
        assert other.cut == pipe.cut and other.is_split
        assert not any(a is b for a, b in zip(other.parameters(), pipe.parameters(), strict=True))
        with torch.no_grad():
            torch.testing.assert_close(other(x), net(x), **TOLERANCE)


def test_an_optimizer_over_the_pipeline_steps_as_over_the_unsplit_net():
    torch.manual_seed(0)
    net = _small_unet()
    twin = copy.deepcopy(net)
    pipe = PipelineParallel(net, devices=["cpu"] * 3, chunks=1, example_input=torch.rand(1, 1, 16, 16))
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (pipe, twin)]
    for step in range(3):
        x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(step))
        for module, optimizer in zip((pipe, twin), optimizers, strict=True):
            optimizer.zero_grad()
            module(x).square().mean().backward()
            optimizer.step()
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(pipe.state_dict()[key], value, **TOLERANCE, msg=key)
    # the optimizer states are interchangeable too: same parameter order, same shapes
    state, twin_state = optimizers[0].state_dict()["state"], optimizers[1].state_dict()["state"]
    assert state.keys() == twin_state.keys()
    for index in state:
        torch.testing.assert_close(state[index]["exp_avg"], twin_state[index]["exp_avg"], **TOLERANCE)


def test_device_moves_keep_every_stage_on_its_device():
    net = _small_unet()
    pipe = PipelineParallel(net, devices=["cpu", "meta"], example_input=torch.rand(1, 1, 16, 16))
    devices = {p.device.type for p in pipe.parameters()}
    assert devices == {"cpu", "meta"}
    placement = {name: p.device.type for name, p in pipe.named_parameters()}
    parent = nn.ModuleDict({"net": pipe})  # as Lightning moves the LightningModule holding it
    parent.to("cpu")
    assert {name: p.device.type for name, p in pipe.named_parameters()} == placement
    parent.double()  # dtype casts still apply
    assert {p.dtype for p in pipe.parameters()} == {torch.float64}
    assert {name: p.device.type for name, p in pipe.named_parameters()} == placement
    assert {name: p.device.type for name, p in net.named_parameters()} == placement


def test_optimizer_state_follows_its_parameter_device():
    pipe = PipelineParallel(_small_unet(), devices=["cpu", "meta"], example_input=torch.rand(1, 1, 16, 16))
    optimizer = torch.optim.Adam(pipe.parameters())
    for param in pipe.parameters():  # as Lightning leaves restored state: all on its root device
        optimizer.state[param] = {"step": torch.tensor(1.0), "exp_avg": torch.zeros(param.shape)}
    state_to_param_devices(optimizer)
    for param, state in optimizer.state.items():
        assert state["exp_avg"].device == param.device
        assert state["step"].device.type == "cpu"
    assert any(p.device.type == "meta" for p in optimizer.state)


def test_split_happens_on_the_first_batch_without_example_input():
    torch.manual_seed(0)
    net = _small_unet(norm="instance")
    x = torch.rand(3, 1, 16, 16)
    expected = net(x)
    pipe = PipelineParallel(net, devices=["cpu", "cpu"], chunks=2)
    assert not pipe.is_split
    torch.testing.assert_close(pipe(x), expected, **TOLERANCE)
    assert pipe.is_split and len(pipe.stage_costs) == 2


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: not traceable
            return self.conv(x)
        return x


class _ModeDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 2 if self.training else self.conv(x)


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.relu(self.linear(x)) + 1)


def test_untraceable_and_mode_dependent_nets_fail_with_the_reason():
    with pytest.raises(TypeError, match="cannot split _Branchy: torch.fx cannot trace it"):
        PipelineParallel(_Branchy(), devices=["cpu", "cpu"])
    with pytest.raises(TypeError, match="_ModeDependent: its forward branches on self.training"):
        PipelineParallel(_ModeDependent(), devices=["cpu", "cpu"])


def test_shared_weights_on_two_devices_fail():
    with pytest.raises(ValueError, match="module 'linear' is used by stage 0 on cpu and stage 1 on meta"):
        PipelineParallel(_Tied(), devices=["cpu", "meta"], balance="memory", example_input=torch.rand(2, 4))
    pipe = PipelineParallel(_Tied(), devices=["cpu", "cpu"], balance="memory", example_input=torch.rand(2, 4))
    x = torch.rand(2, 4)
    torch.testing.assert_close(pipe(x), pipe.net(x))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"devices": "gpus"}, ValueError, "devices must be 'auto' or a list"),
        ({"devices": ["cpu", "cpu"], "num_stages": 3}, ValueError, "num_stages=3 but 2 devices"),
        ({"devices": ["cuda:7"]}, ValueError, "device 'cuda:7' is not available"),
        ({"devices": ["warp"]}, ValueError, "'warp' is not a device"),
        ({"chunks": 0}, ValueError, "chunks must be an integer >= 1, got 0"),
        ({"balance": "flops"}, ValueError, r"balance must be one of \('time', 'memory'\), got 'flops'"),
        ({"devices": ["cpu"] * 500}, ValueError, "too few for 500 stages"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        PipelineParallel(_small_unet(), example_input=torch.rand(1, 1, 16, 16), **kwargs)


def test_keyword_inputs_and_clashing_names_are_refused():
    pipe = PipelineParallel(_small_unet(), devices=["cpu", "cpu"])
    with pytest.raises(TypeError, match="positional arguments, got keywords"):
        pipe(x=torch.rand(1, 1, 16, 16))
    clash = nn.Sequential()
    clash.chunks = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"attribute\(s\) \['chunks'\] clash"):
        PipelineParallel(clash, devices=["cpu"])


def test_auto_devices_without_gpu_are_cpu_stages(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert PipelineParallel(_small_unet()).stage_devices == [torch.device("cpu")] * 2
    assert PipelineParallel(_small_unet(), num_stages=3).stage_devices == [torch.device("cpu")] * 3
