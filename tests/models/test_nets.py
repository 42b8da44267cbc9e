"""Every preset of conf/net/, in every dimensionality it builds: shapes, gradients, seeding, ONNX, sizes.

A new YAML in conf/net/ is covered with no new test code. Presets that read ${dataset.spatial_dims}
are built in 2D and 3D. A preset's comment line ``# output: segmentation`` promises logits of shape
(B, classes, *input size); ``# output: classification`` promises (B, classes).
"""

import pytest
import torch
import torch.nn.functional as F
from net_presets import BASE_SIZE, NUM_CLASSES, build_net, one_thread, preset_cases, preset_kind, seeded_net

from eisen_lightning.models import check_input_size, nearest_valid_size, size_constraint

#: The newest opset of torch's TorchScript exporter; GridSample on 5-D input (3D Obelisk) needs 20.
OPSET = 20
BATCH = 2
CASES = preset_cases()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def _size(net, dims: int) -> list[int]:
    """A small legal size, at least twice the divisor: a 1-voxel bottleneck under instance norm
    is numerically degenerate (its variance is that of a single value)."""
    divisor = size_constraint(net).divisor
    return list(
        nearest_valid_size(net, [max(b, 2 * d) for b, d in zip(BASE_SIZE[dims], divisor, strict=True)])
    )


def _input(net, dims: int, batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    size = _size(net, dims)
    return torch.randn(batch, 1, *size, generator=torch.Generator().manual_seed(seed))


def _expected_shape(name: str, x: torch.Tensor) -> tuple[int, ...]:
    if preset_kind(name) == "classification":
        return (len(x), NUM_CLASSES)
    return (len(x), NUM_CLASSES, *x.shape[2:])


@pytest.mark.parametrize(("name", "dims"), CASES)
def test_forward_shape_and_finite_gradients_for_every_parameter(name, dims):
    net = seeded_net(name, dims).train()
    x = _input(net, dims)
    out = net(x)
    assert tuple(out.shape) == _expected_shape(name, x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    target = torch.randint(0, NUM_CLASSES, (out.shape[0], *out.shape[2:]))
    F.cross_entropy(out, target).backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without a gradient (unused in forward): {missing[:5]}"
    bad = [n for n, p in net.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"


@pytest.mark.parametrize(("name", "dims"), CASES)
def test_same_seed_builds_the_same_net(name, dims, tmp_path):
    torch.manual_seed(7)
    first = build_net(name, dims, tmp_path).eval()
    torch.manual_seed(7)
    second = build_net(name, dims, tmp_path).eval()
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    x = _input(first, dims)
    with torch.no_grad():
        assert torch.equal(first(x), second(x))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize(("name", "dims"), CASES)
def test_onnx_export_matches_onnxruntime(name, dims, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net = seeded_net(name, dims).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        net,
        (_input(net, dims, batch=1),),
        str(path),
        opset_version=OPSET,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _input(net, dims, batch=3, seed=1)  # another batch size than at export: the axis is dynamic
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = net(x)
    assert got.shape == tuple(expected.shape)
    assert float((torch.from_numpy(got) - expected).abs().max()) <= 1e-4


@pytest.mark.parametrize(("name", "dims"), CASES)
def test_input_size_constraint_is_checked_and_real(name, dims):
    net = seeded_net(name, dims).eval()
    constraint = size_constraint(net)
    legal = _size(net, dims)
    check_input_size(net, legal, net_name=f"net={name}")
    bad = list(legal)
    if constraint.divisor[0] > 1:
        bad[0] += constraint.divisor[0] // 2
    elif constraint.minimum[0] > 1:
        bad[0] = constraint.minimum[0] - 1
    else:  # any size: an odd size works and keeps its shape
        odd = [s + 1 if s % 2 == 0 else s for s in legal]
        check_input_size(net, odd)
        x = torch.randn(1, 1, *odd)
        with torch.no_grad():
            assert tuple(net(x).shape) == _expected_shape(name, x)
        return
    with pytest.raises(ValueError, match=rf"net={name} \(.*\) needs .*data.patch_size is \[.*use e.g."):
        check_input_size(net, bad, net_name=f"net={name}")
    suggested = list(nearest_valid_size(net, bad))
    with pytest.raises(
        ValueError,
        match=rf"is \[{', '.join(map(str, bad))}\]; use e.g. \[{', '.join(map(str, suggested))}\]$",
    ):
        check_input_size(net, bad, net_name=f"net={name}")
    check_input_size(net, suggested)
    with pytest.raises(RuntimeError), torch.no_grad():  # the constraint is the net's, not ours
        net(torch.randn(1, 1, *bad))
