"""ONNX export: checker, explicit opset, dynamic axes where the net allows, parity recorded, atomic files."""

import json

import numpy as np
import pytest
import torch
from export_shared import small_unet
from torch import nn

from eisen_lightning.export import ParityError, PipelineSpec, export_onnx
from eisen_lightning.export.parity import ort_session
from eisen_lightning.export.spec import example_spec

onnx = pytest.importorskip("onnx")


def _spec() -> PipelineSpec:
    spec = PipelineSpec.from_dict(example_spec())
    spec.label_names = ["background", "organ", "lesion"]
    return spec


def _sample(size=(32, 32, 32), seed=0) -> torch.Tensor:
    return torch.randn(1, 1, *size, generator=torch.Generator().manual_seed(seed))


def _run(path, x):
    session = ort_session(str(path), threads=1)
    return session.run(None, {"image": x.numpy()})[0]


def test_export_is_checked_dynamic_and_records_its_parity(tmp_path):
    net = small_unet().train()  # put in eval mode for the export, given back in train mode
    result = export_onnx(net, _sample(), tmp_path / "model.onnx", _spec())
    assert net.training
    model = onnx.load(str(result.model_path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [20]
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "x", "y", "z"]
    props = {p.key: p.value for p in model.metadata_props}
    assert max(json.loads(props["eisen_lightning.parity_max_abs_diff"]).values()) <= 1e-4
    spec = PipelineSpec.load(result.spec_path)
    assert spec.export["opset"] == 20 and 0 <= result.max_abs_diff <= 1e-4
    assert set(spec.export["parity"]["max_abs_diff"]) == {
        "real sample [1, 1, 32, 32, 32]",
        "batch [2, 1, 36, 36, 36]",
    }
    x = _sample((24, 40, 16), seed=3).repeat(3, 1, 1, 1, 1)  # another batch and spatial size
    with torch.no_grad():
        assert np.abs(_run(result.model_path, x) - net.eval()(x).numpy()).max() <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pipeline.json"]


class FixedSize(nn.Module):
    """A net whose traced graph bakes in the spatial size (a reshape to constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 3, padding=1)
        self.spatial_dims = 3

    def forward(self, x):
        y = self.conv(x)
        return y.reshape(y.shape[0], -1).reshape(y.shape[0], 3, 16, 16, 16)


def test_spatial_axes_stay_fixed_when_the_net_does_not_allow_others(tmp_path):
    result = export_onnx(FixedSize().eval(), _sample((16, 16, 16)), tmp_path / "model.onnx", _spec())
    assert result.spec.export["dynamic_axes"]["image"] == {"0": "batch"}
    model = onnx.load(str(result.model_path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 16, 16, 16]
    assert "batch [2, 1, 16, 16, 16]" in result.spec.export["parity"]["max_abs_diff"]


class Drifting(nn.Module):
    """A net with Python-side state: every call scales by a new factor, which tracing freezes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x) * self.calls


def test_a_broken_export_fails_loudly_and_leaves_the_previous_one_intact(tmp_path):
    good = export_onnx(small_unet(), _sample(), tmp_path / "model.onnx", _spec())
    before = (good.model_path.read_bytes(), good.spec_path.read_bytes())
    with pytest.raises(ParityError, match="does not reproduce torch.*exceeds 0.0001"):
        export_onnx(Drifting(), _sample(), tmp_path / "model.onnx", _spec())
    assert (good.model_path.read_bytes(), good.spec_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pipeline.json"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_example_follows_the_nets_device(tmp_path):
    net = small_unet().cuda()
    result = export_onnx(net, _sample(), tmp_path / "model.onnx", _spec())  # a CPU sample
    assert next(net.parameters()).is_cuda and result.max_abs_diff <= 1e-4


def test_a_sample_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"sample must have shape \(1, 1, \*3 spatial sizes\), got \(2, 1, 8, 8, 8\)"
    ):
        export_onnx(small_unet(), torch.zeros(2, 1, 8, 8, 8), tmp_path / "model.onnx", _spec())
    assert not tmp_path.joinpath("model.onnx").exists()
